"""ASGI entry point for Daphne: chat WebSockets plus health checks, nothing else.

Pages are served by Gunicorn; keeping them off Daphne keeps each replica's event loop
free for sockets.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
# Load settings and apps before importing anything that touches models.
get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chat.health import asgi_http_app  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": asgi_http_app,
        # Browsers send Origin; a page on another site cannot open sockets as our visitor.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
