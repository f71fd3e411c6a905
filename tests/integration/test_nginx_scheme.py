"""The scheme Django is told (X-Forwarded-Proto), through the real nginx and the shared nginx/ files.

nginx is the edge: a client cannot claim https. Only a proxy that a main file marks as
trusted (the Kubernetes Ingress, which ends TLS) may say which scheme its client used.
"""

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.cluster import free_port

ROOT = Path(__file__).resolve().parents[2]


def nginx_program():
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        pytest.fail("nginx is missing; run: make system-deps")
    return found


@pytest.fixture
def nginx_with(tmp_path):
    """Start nginx with the shared http.conf and a given geo block; yield its URL."""
    processes = []

    def start(trusted_proxy_geo):
        port = free_port()
        (tmp_path / "logs").mkdir(exist_ok=True)
        (tmp_path / "chatscale").symlink_to(ROOT / "nginx")
        config = tmp_path / "nginx.conf"
        config.write_text(
            f"""daemon off;
pid {tmp_path}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    access_log off;
    include chatscale/http.conf;
    {trusted_proxy_geo}
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "$chatscale_forwarded_proto"; }}
    }}
}}
"""
        )
        process = subprocess.Popen([nginx_program(), "-p", str(tmp_path), "-e", "stderr", "-c", str(config)])
        processes.append(process)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()  # noqa: S310 (a local test URL)
                return url
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("nginx did not start") from None
                time.sleep(0.05)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def scheme_seen(url, forwarded_proto=None):
    headers = {"X-Forwarded-Proto": forwarded_proto} if forwarded_proto else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:  # noqa: S310
        return response.read().decode()


def test_at_the_edge_a_client_cannot_claim_https(nginx_with):
    url = nginx_with("geo $chatscale_trusted_proxy { default 0; }")
    assert scheme_seen(url) == "http"
    assert scheme_seen(url, "https") == "http"


def test_a_trusted_proxy_names_the_scheme_its_client_used(nginx_with):
    url = nginx_with("geo $realip_remote_addr $chatscale_trusted_proxy { default 0; 127.0.0.0/8 1; }")
    assert scheme_seen(url, "https") == "https"
    assert scheme_seen(url, "http") == "http"
    # Anything else is not a scheme; nginx's own stands.
    assert scheme_seen(url, "javascript") == "http"
    assert scheme_seen(url) == "http"
