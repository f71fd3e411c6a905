"""WebSocket origin check: only pages of this very site may open chat sockets.

channels' AllowedHostsOriginValidator compares the Origin's host name with ALLOWED_HOSTS
and ignores the port, so a page served by any other program on the same host (another
port) could open sockets on a visitor's behalf. This check requires the Origin to name
exactly the host and port the socket was opened on (the Host header), as Django's CSRF
check does for forms, or to be listed in DJANGO_CSRF_TRUSTED_ORIGINS.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from chat.asgi_types import ASGIApp, Receive, Scope, Send


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1").strip()
    return None


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """True when ``origin`` (an Origin header) may open a socket on ``host`` (a Host header)."""
    if not origin or origin == "null":
        return False
    if origin.lower() in {trusted.lower() for trusted in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or not host:
        return False
    domain, _ = split_domain_port(host)
    # Browsers omit default ports in both headers, so comparing them as written is exact.
    return parts.netloc.lower() == host.lower() and validate_host(domain, settings.ALLOWED_HOSTS)


class SameOriginValidator:
    """ASGI middleware: refuse the handshake (403) unless the Origin is this site itself."""

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not origin_allowed(_header(scope, b"origin"), _header(scope, b"host")):
            denier = WebsocketDenier()
            await denier(scope, receive, send)
            return
        await self.application(scope, receive, send)
