"""WebSocket URL routes. The room part may contain slashes: Daphne decodes %2F in paths."""

from django.urls import re_path

from chat.consumers import ChatConsumer

websocket_urlpatterns = [
    re_path(r"^ws/chat/(?P<room_name>.+)/$", ChatConsumer.as_asgi()),
]
