"""HTTP middleware shared by every Django response."""

from chat import replica, views

HEALTH_VIEWS = {"/healthz/live": views.live, "/healthz/ready": views.ready}


class HealthCheckMiddleware:
    """Answer /healthz/* before anything checks the Host header.

    Probes from Docker and the kubelet address the container directly (Host: its IP or
    127.0.0.1), which ALLOWED_HOSTS rightly refuses everywhere else.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = HEALTH_VIEWS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)


class ResponseHeadersMiddleware:
    """Add X-Replica (unless CHATSCALE_SHOW_REPLICA is off) so clients can tell which process served them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in replica.response_headers():
            response.headers.setdefault(name, value)
        return response
