import uuid

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware

# Where the agent API is mounted (qefleet/urls.py).
API_PATH_PREFIX = "/api/"


class RequestIdMiddleware:
    """Tags each request with an id that error bodies and logs can quote."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.id = uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.id
        return response


class ForBrowsersOnly:
    """Leaves the agent API's requests to the next middleware: agents
    authenticate every request with a bearer token and the API never reads
    a user or a message, so the work these middleware do for the dashboard
    and the admin would only cost each API request time, and add nothing to
    its answer. (Django's session and CSRF middleware stay as they are:
    `check --deploy` looks for them by name to check their cookies.)"""

    def __call__(self, request):
        if not self.async_mode and request.path_info.startswith(API_PATH_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class BrowserAuthenticationMiddleware(ForBrowsersOnly, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(ForBrowsersOnly, MessageMiddleware):
    pass
