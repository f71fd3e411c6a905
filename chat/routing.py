"""WebSocket URL routes. The room part may contain slashes: Daphne decodes %2F in paths."""

from django.urls import re_path

from chat.consumers import ChatConsumer, UnknownPathConsumer

websocket_urlpatterns = [
    # ".*" rather than ".+": an empty name reaches the consumer and gets a clear refusal.
    re_path(r"^ws/chat/(?P<room_name>.*)/$", ChatConsumer.as_asgi()),
    # Anything else would make the router raise (a 500 and a traceback per attempt).
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
