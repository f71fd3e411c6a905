"""HTTP middleware shared by every Django response."""

from chat.health import replica_headers


class ResponseHeadersMiddleware:
    """Add X-Replica (unless CHATSCALE_REPLICA_HEADER is off) so clients can tell which process served them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in replica_headers():
            response.headers.setdefault(name, value)
        return response
