"""Which replica served a request or a socket, and whether clients may know it.

The one place that reads CHATSCALE_REPLICA_NAME and CHATSCALE_SHOW_REPLICA: X-Replica
headers, replica names in chat frames and Daphne's Server header all ask here.
"""

from django.conf import settings

# nginx copies the name after this prefix from Daphne's Server header into X-Replica on
# WebSocket handshakes (nginx/http.conf), since Daphne sends no headers of the application's.
SERVER_NAME_PREFIX = "chatscale-replica/"
HIDDEN_SERVER_NAME = "daphne"


def shown_name() -> str | None:
    """This replica's name when clients may see it, else None."""
    return settings.CHATSCALE_REPLICA_NAME if settings.CHATSCALE_SHOW_REPLICA else None


def response_headers() -> list[tuple[str, str]]:
    """The X-Replica header of a response, or nothing when the name is hidden."""
    name = shown_name()
    return [] if name is None else [("X-Replica", name)]


def server_name() -> str:
    """Daphne's Server header: it names the replica for nginx when shown, and is Daphne's default otherwise."""
    name = shown_name()
    return HIDDEN_SERVER_NAME if name is None else SERVER_NAME_PREFIX + name
