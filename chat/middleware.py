"""HTTP middleware shared by every Django response."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from chat import replica, views

GetResponse = Callable[[HttpRequest], HttpResponse]

HEALTH_VIEWS: dict[str, GetResponse] = {"/healthz/live": views.live, "/healthz/ready": views.ready}


class HealthCheckMiddleware:
    """Answer /healthz/* before anything checks the Host header.

    Probes from Docker and the kubelet address the container directly (Host: its IP or
    127.0.0.1), which ALLOWED_HOSTS rightly refuses everywhere else.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = HEALTH_VIEWS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)


class ResponseHeadersMiddleware:
    """Add X-Replica (unless CHATSCALE_SHOW_REPLICA is off) so clients can tell which process served them."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name, value in replica.response_headers():
            response.headers.setdefault(name, value)
        return response
