"""Daphne's command line, built from the settings (deploy/runtime/run_daphne.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from daphne.cli import CommandLineInterface

from deploy.runtime import run_daphne
from deploy.runtime.run_daphne import daphne_argv

PROJECT = Path(__file__).resolve().parents[2]
STRONG_SECRET_KEY = "q8ZrT1vN4bXk7LmP0sWd3FhJ6gYc9AeRu2oIy5tEw8NzKx1VbM4nQ7pL"


def parsed_by_daphne(argv):
    """What Daphne's own argument parser makes of ``argv``: proves every flag is spelled as Daphne expects."""
    return CommandLineInterface().parser.parse_args(argv)


def test_the_defaults_are_the_documented_ones():
    assert daphne_argv() == [
        "--bind",
        "0.0.0.0",  # noqa: S104 (the container's default; nginx is the edge)
        "--port",
        "8000",
        "--proxy-headers",
        "--ping-interval",
        "20",
        "--ping-timeout",
        "30",
        "--websocket_timeout",
        "43200",
        "--application-close-timeout",
        "10",
        "--server-name",
        "chatscale-replica/unit-test-replica",
        "mysite.asgi:application",
    ]


def test_daphne_reads_every_setting_into_the_right_option(settings):
    settings.DAPHNE_BIND = "127.0.0.1"
    settings.DAPHNE_PORT = 9001
    settings.DAPHNE_PING_INTERVAL = 7
    settings.DAPHNE_PING_TIMEOUT = 11
    settings.DAPHNE_WEBSOCKET_TIMEOUT = 3600
    settings.DAPHNE_APPLICATION_CLOSE_TIMEOUT = 4
    settings.CHATSCALE_REPLICA_NAME = "daphne-2"
    options = parsed_by_daphne(daphne_argv())
    assert options.host == "127.0.0.1"
    assert options.port == 9001
    assert options.ping_interval == 7
    assert options.ping_timeout == 11
    assert options.websocket_timeout == 3600
    assert options.application_close_timeout == 4
    assert options.server_name == "chatscale-replica/daphne-2"
    assert options.proxy_headers is True
    assert options.application == "mysite.asgi:application"


def test_a_hidden_replica_leaves_daphnes_own_server_name(settings):
    settings.CHATSCALE_SHOW_REPLICA = False
    argv = daphne_argv()
    assert parsed_by_daphne(argv).server_name == "daphne"
    assert not any("unit-test-replica" in argument for argument in argv)


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("DAPHNE_PORT", "eighty", "DAPHNE_PORT='eighty' is not a whole number"),
        ("DAPHNE_PORT", "70000", "DAPHNE_PORT=70000 is too large; the maximum is 65535"),
        ("DAPHNE_PING_INTERVAL", "0", "DAPHNE_PING_INTERVAL=0 is too small"),
        ("DAPHNE_PING_INTERVAL", "300", "DAPHNE_PING_INTERVAL=300 is too large; the maximum is 299"),
        ("CHATSCALE_SHOW_REPLICA", "perhaps", "CHATSCALE_SHOW_REPLICA='perhaps' is not a boolean"),
    ],
)
def test_a_bad_setting_stops_daphne_with_the_settings_message(name, value, complaint):
    result = subprocess.run(
        [sys.executable, "-m", "deploy.runtime.run_daphne"],
        cwd=PROJECT,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DJANGO_SECRET_KEY": STRONG_SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "chat.example.com",
            name: value,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("cannot start Daphne: "), result.stderr
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr


class FakeTransport:
    """What Twisted's TCP transport keeps for writing: a buffer, how far it got, and a pending list."""

    def __init__(self, buffered=b"", offset=0, pending=0):
        self.dataBuffer, self.offset, self._tempDataLen = buffered, offset, pending


def test_the_unsent_backlog_counts_the_buffer_past_its_offset_and_the_pending_writes():
    assert run_daphne.unsent_bytes(FakeTransport(b"x" * 100, offset=40, pending=7)) == 67
    assert run_daphne.unsent_bytes(FakeTransport()) == 0
    assert run_daphne.unsent_bytes(object()) == 0, "an unknown transport is never taken for a slow reader"
