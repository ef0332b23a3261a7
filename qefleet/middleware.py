import uuid

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
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


# What a view sets on its response to change or drop its policy (csp.decorators).
CSP_RESPONSE_ATTRIBUTES = tuple(f"_csp_{part}{suffix}" for part in ("config", "update", "replace", "exempt")
                                for suffix in ("", "_ro"))


class CSPMiddleware(DjangoCSPMiddleware):
    """django-csp's middleware, with the header of the configured policy
    built once: django-csp builds it from the settings on every response, a
    third of the middleware's time on an API request. Whatever can make a
    response's header differ from that (a view's own policy or exemption, a
    nonce in use, a report-only policy, excluded prefixes, a header already
    set, a debug error page) goes through django-csp as before."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self._built = (None, "")  # (the settings' policy, its header)

    def process_response(self, request, response):
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        if (not policy or policy.get("EXCLUDE_URL_PREFIXES")
                or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
                or getattr(request, "_csp_nonce", None) is not None or HEADER in response
                or any(hasattr(response, name) for name in CSP_RESPONSE_ATTRIBUTES)
                or (settings.DEBUG and response.status_code in (404, 500))):
            return super().process_response(request, response)
        if self._built[0] is not policy:
            self._built = (policy, build_policy())
        if self._built[1]:
            response[HEADER] = self._built[1]
        # As django-csp does: a nonce asked for from now on would be in no header.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
