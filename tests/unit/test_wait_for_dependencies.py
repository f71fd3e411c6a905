"""The container entrypoint's wait for Redis and the database (deploy/runtime/wait_for_dependencies.py)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from deploy.runtime.wait_for_dependencies import endpoints, wait
from mysite import env

PROJECT = Path(__file__).resolve().parents[2]
ENTRYPOINT = PROJECT / "deploy" / "runtime" / "entrypoint.sh"
STRONG_SECRET_KEY = "q8ZrT1vN4bXk7LmP0sWd3FhJ6gYc9AeRu2oIy5tEw8NzKx1VbM4nQ7pL"
SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/db.sqlite3"}


@pytest.fixture
def listening_port():
    """A port on 127.0.0.1 that accepts connections for the length of the test."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_entrypoint(variables, *command, cwd):
    """Run the container entrypoint as the image does, with only ``variables`` and the virtualenv's python."""
    return subprocess.run(
        [str(ENTRYPOINT), *command],
        cwd=cwd,
        env={
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "DJANGO_SECRET_KEY": STRONG_SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "chat.example.com",
            **variables,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_redis_and_postgres_are_waited_for():
    database = env.parse_database_url("DATABASE_URL", "postgres://chat:secret@db.internal:5433/chat", PROJECT)
    assert endpoints("redis://:secret@redis.internal:6380/0", database) == [
        ("REDIS_URL", "redis.internal", 6380),
        ("DATABASE_URL", "db.internal", 5433),
    ]


def test_default_ports_are_those_of_redis_and_postgres():
    database = env.parse_database_url("DATABASE_URL", "postgresql://chat@db/chat", PROJECT)
    assert endpoints("rediss://redis", database) == [("REDIS_URL", "redis", 6379), ("DATABASE_URL", "db", 5432)]


def test_files_and_sockets_are_not_waited_for():
    assert endpoints("unix:///run/redis.sock", SQLITE) == []


def test_a_bad_redis_url_is_refused_as_the_settings_refuse_it():
    with pytest.raises(ImproperlyConfigured, match="has an invalid port") as caught:
        endpoints("redis://:hunter2@redis:notaport/0", SQLITE)
    assert str(caught.value).startswith("REDIS_URL='redis://:***@redis:notaport/0' has an invalid port")


def test_waiting_ends_as_soon_as_everything_answers(listening_port):
    assert wait([("REDIS_URL", "127.0.0.1", listening_port)], seconds=0) == 0


def test_waiting_gives_up_naming_what_is_unreachable(closed_port, capsys):
    assert wait([("REDIS_URL", "127.0.0.1", closed_port)], seconds=0) == 1
    assert f"gave up after 0 s: REDIS_URL names 127.0.0.1:{closed_port}, unreachable" in capsys.readouterr().err


def test_the_entrypoint_waits_then_runs_the_command_where_it_was_started(tmp_path, listening_port):
    result = run_entrypoint({"REDIS_URL": f"redis://127.0.0.1:{listening_port}/0"}, "pwd", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path)


def test_the_entrypoint_stops_when_a_service_stays_unreachable(tmp_path, closed_port):
    result = run_entrypoint(
        {"REDIS_URL": f"redis://127.0.0.1:{closed_port}/0", "CHATSCALE_WAIT_SECONDS": "0"}, "echo", "ran", cwd=tmp_path
    )
    assert result.returncode == 1
    assert f"REDIS_URL names 127.0.0.1:{closed_port}, unreachable" in result.stderr
    assert "ran" not in result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://chat:hunter2-secret@db:3306/chat"),
        ("DATABASE_URL", "postgres://chat:hunter2-secret@db:notaport/chat"),
        ("REDIS_URL", "reddis://:hunter2-secret@redis:6379/0"),
        ("CHATSCALE_WAIT_SECONDS", "soon"),
    ],
)
def test_a_bad_setting_stops_the_entrypoint_with_the_settings_message(tmp_path, name, value):
    expected = subprocess.run(
        [sys.executable, "-c", "import mysite.settings"],
        cwd=PROJECT,
        env={"DJANGO_SECRET_KEY": STRONG_SECRET_KEY, "DJANGO_ALLOWED_HOSTS": "chat.example.com", name: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = run_entrypoint({name: value}, "echo", "ran", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "hunter2-secret" not in result.stderr
    assert "ran" not in result.stdout
    if name == "CHATSCALE_WAIT_SECONDS":
        assert result.stderr.strip() == "CHATSCALE_WAIT_SECONDS='soon' is not a whole number."
    else:
        # The very message the settings give, without the traceback around it.
        assert expected.stderr.strip().endswith("ImproperlyConfigured: " + result.stderr.strip()), result.stderr
