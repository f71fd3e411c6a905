"""Wait until the TCP services named by REDIS_URL and DATABASE_URL accept connections.

Run by deploy/runtime/entrypoint.sh before the server starts, so that a container started before
its Redis or database does not crash-loop. Gives up after CHATSCALE_WAIT_SECONDS (60).
"""

import os
import socket
import sys
import time
from urllib.parse import urlsplit

DEFAULT_PORTS = {"REDIS_URL": 6379, "DATABASE_URL": 5432}


def endpoints():
    """(variable, host, port) of every TCP service named by REDIS_URL and DATABASE_URL."""
    found = []
    for variable, default_port in DEFAULT_PORTS.items():
        parts = urlsplit(os.environ.get(variable, ""))
        if parts.scheme in ("redis", "rediss", "postgres", "postgresql") and parts.hostname:
            found.append((variable, parts.hostname, parts.port or default_port))
    return found


def wait(seconds):
    """Return 0 once every endpoint accepts a connection, 1 (saying which) after ``seconds``."""
    deadline = time.monotonic() + seconds
    for variable, host, port in endpoints():
        while True:
            try:
                socket.create_connection((host, port), timeout=2).close()
                break
            except OSError as error:
                if time.monotonic() > deadline:
                    print(
                        f"gave up after {seconds} s: {variable} names {host}:{port}, unreachable ({error})",
                        file=sys.stderr,
                    )
                    return 1
                time.sleep(1)
    return 0


if __name__ == "__main__":
    raw = os.environ.get("CHATSCALE_WAIT_SECONDS", "60")
    if not raw.isdigit():
        sys.exit(f"CHATSCALE_WAIT_SECONDS={raw!r} is not a whole number of seconds")
    sys.exit(wait(int(raw)))
