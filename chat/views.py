"""HTTP views: the room picker, the room page and the health endpoints (served by Gunicorn)."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from chat.health import liveness_report, readiness_report
from chat.rooms import InvalidRoomName, normalize_room_name

# Everything the pages load comes from this site; the socket goes to the same host.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    context = {
        "room_name_max_length": settings.CHAT_ROOM_NAME_MAX_LENGTH,
        "message_max_length": settings.CHAT_MESSAGE_MAX_LENGTH,
        **context,
    }
    response = render(request, template, context, status=status)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """The room picker."""
    return _page(request, "chat/index.html", {})


@require_safe
def room(request: HttpRequest, room_name: str) -> HttpResponse:
    """One room's page; an unusable name gets the picker back with the reason, not an error page."""
    try:
        name = normalize_room_name(room_name)
    except InvalidRoomName as error:
        return _page(request, "chat/index.html", {"error": str(error), "typed": room_name}, status=400)
    return _page(request, "chat/room.html", {"room_name": name})


@never_cache
@require_safe
def live(request: HttpRequest) -> JsonResponse:
    """Liveness: the Gunicorn worker answers."""
    status, report = liveness_report("wsgi")
    return JsonResponse(report, status=status)


@never_cache
@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and Redis answer too."""
    status, report = readiness_report("wsgi")
    return JsonResponse(report, status=status)
