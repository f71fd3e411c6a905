"""Run one Daphne replica with the flags that mysite/settings.py reads from the environment.

    python -m deploy.runtime.run_daphne     (from the project root, as start-daphne.sh does)

Every DAPHNE_* variable is parsed and checked once, by the settings module; this only turns
the settings into Daphne's command line, so a bad value stops it with the settings' message.
"""

import os
import sys

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from chat import replica

ASGI_APPLICATION = "mysite.asgi:application"


def daphne_argv() -> list[str]:
    """Daphne's command-line arguments, from the settings and chat/replica.py's server name."""
    return [
        "--bind",
        settings.DAPHNE_BIND,
        "--port",
        str(settings.DAPHNE_PORT),
        # Only nginx reaches Daphne, and nginx sets X-Forwarded-* itself (nginx/proxy-headers.conf).
        "--proxy-headers",
        "--ping-interval",
        str(settings.DAPHNE_PING_INTERVAL),
        "--ping-timeout",
        str(settings.DAPHNE_PING_TIMEOUT),
        "--websocket_timeout",
        str(settings.DAPHNE_WEBSOCKET_TIMEOUT),
        "--application-close-timeout",
        str(settings.DAPHNE_APPLICATION_CLOSE_TIMEOUT),
        "--server-name",
        replica.server_name(),
        ASGI_APPLICATION,
    ]


def main() -> None:
    """Start Daphne in the foreground, or exit with the settings' error."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    try:
        argv = daphne_argv()
    except ImproperlyConfigured as error:
        sys.exit(f"cannot start Daphne: {error}")
    CommandLineInterface().run(argv)


if __name__ == "__main__":
    main()
