"""ASGI entry point for Daphne: chat WebSockets plus health checks, nothing else.

Pages are served by Gunicorn; keeping them off Daphne keeps each replica's event loop
free for sockets. Only with DJANGO_DEBUG on does this app serve pages too, so that
`manage.py runserver` gives a developer the whole site in one process.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
# Load settings and apps before importing anything that touches models.
django_http_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from chat.asgi_types import Receive, Scope, Send  # noqa: E402
from chat.health import HEALTH_PATHS, asgi_http_app  # noqa: E402
from chat.origin import SameOriginValidator  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402


async def http_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Health checks; in development (DEBUG) also the pages, so `manage.py runserver` is a whole site."""
    if settings.DEBUG and scope["path"] not in HEALTH_PATHS:
        return await django_http_app(scope, receive, send)
    return await asgi_http_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_app,
        # Browsers send Origin; a page on another site cannot open sockets as our visitor.
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
