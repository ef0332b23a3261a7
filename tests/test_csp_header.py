"""The CSP middleware builds the configured policy's header once and sends
what django-csp would; what changes a response's policy still changes it."""

from csp.constants import NONCE, SELF
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from qefleet.middleware import CSPMiddleware


def header(middleware_class, prepare=lambda request, response: None, path="/api/v1/agents/alice"):
    def view(request):
        response = HttpResponse("{}")
        prepare(request, response)
        return response

    return middleware_class(view)(RequestFactory().get(path)).get("Content-Security-Policy")


def test_it_sends_the_header_django_csp_builds():
    built = header(CSPMiddleware)
    assert built == header(DjangoCSPMiddleware) and "script-src 'self'" in built


def test_it_follows_a_view_that_updates_its_policy():
    def update(request, response):
        response._csp_update = {"img-src": ["https://example.org"]}

    assert "https://example.org" in header(CSPMiddleware, update)


def test_it_puts_a_nonce_in_use_in_the_header():
    nonces = []

    def use_nonce(request, response):
        nonces.append(str(request.csp_nonce))

    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"script-src": [SELF, NONCE]}}):
        built = header(CSPMiddleware, use_nonce)
    assert f"'nonce-{nonces[0]}'" in built


def test_it_builds_the_header_again_when_the_settings_change():
    middleware = CSPMiddleware(lambda request: HttpResponse("{}"))
    before = middleware(RequestFactory().get("/")).get("Content-Security-Policy")
    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'none'"]}}):
        during = middleware(RequestFactory().get("/")).get("Content-Security-Policy")
    assert "script-src 'self'" in before and during == "default-src 'none'"
