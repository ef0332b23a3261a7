import uuid


class RequestIdMiddleware:
    """Tags each request with an id that error bodies and logs can quote."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.id = uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.id
        return response
