"""Wait until the TCP services that REDIS_URL and DATABASE_URL name accept connections.

    python -m deploy.runtime.wait_for_dependencies    (from the project root, as entrypoint.sh does)

Run by deploy/runtime/entrypoint.sh before the server starts, so that a container started before
its Redis or database does not crash-loop. The URLs are read by mysite/settings.py, so a bad one
stops this with the settings' own message. Gives up after CHATSCALE_WAIT_SECONDS (60).
"""

import os
import socket
import sys
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from mysite import env


def endpoints(redis_url: str, database: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(variable, host, port) of every TCP service that the settings connect to."""
    found = []
    for variable, endpoint in (
        ("REDIS_URL", env.redis_endpoint("REDIS_URL", redis_url)),
        ("DATABASE_URL", env.database_endpoint(database)),
    ):
        if endpoint is not None:
            found.append((variable, *endpoint))
    return found


def wait(targets: list[tuple[str, str, int]], seconds: int) -> int:
    """Return 0 once every target accepts a connection, 1 (saying which) after ``seconds``."""
    deadline = time.monotonic() + seconds
    for variable, host, port in targets:
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


def main() -> int:
    """Wait for the services the settings name; exit 1 on a bad setting or when they stay unreachable."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    try:
        seconds = env.get_int("CHATSCALE_WAIT_SECONDS", 60, minimum=0)
        targets = endpoints(settings.REDIS_URL, settings.DATABASES["default"])
    except ImproperlyConfigured as error:
        print(error, file=sys.stderr)
        return 1
    return wait(targets, seconds)


if __name__ == "__main__":
    sys.exit(main())
