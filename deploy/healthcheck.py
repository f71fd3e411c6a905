"""Container probes, standard library only (the image has no curl).

python deploy/healthcheck.py http://127.0.0.1:8000/healthz/ready   exit 0 when it answers 200
python deploy/healthcheck.py --wait-for-dependencies               wait for Redis and the database
"""

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

WAIT_SECONDS = int(os.environ.get("CHATSCALE_WAIT_SECONDS", "60"))


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (a local http:// probe)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def endpoints():
    """(name, host, port) of every TCP service named by REDIS_URL and DATABASE_URL."""
    found = []
    for variable, default_port in (("REDIS_URL", 6379), ("DATABASE_URL", 5432)):
        parts = urlsplit(os.environ.get(variable, ""))
        if parts.scheme in ("redis", "rediss", "postgres", "postgresql") and parts.hostname:
            found.append((variable, parts.hostname, parts.port or default_port))
    return found


def wait_for_dependencies():
    deadline = time.monotonic() + WAIT_SECONDS
    for variable, host, port in endpoints():
        while True:
            try:
                socket.create_connection((host, port), timeout=2).close()
                break
            except OSError as error:
                if time.monotonic() > deadline:
                    print(
                        f"gave up after {WAIT_SECONDS} s: {variable} host {host}:{port} unreachable ({error})",
                        file=sys.stderr,
                    )
                    return 1
                time.sleep(1)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--wait-for-dependencies"]:
        sys.exit(wait_for_dependencies())
    if len(sys.argv) != 2:
        sys.exit("usage: healthcheck.py URL | --wait-for-dependencies")
    sys.exit(0 if answers(sys.argv[1]) else 1)
