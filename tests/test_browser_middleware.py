"""The agent API's requests skip the browser-only middleware (users,
messages); the dashboard's keep them, and CSRF checks still guard its forms."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory

from django.contrib.sessions.middleware import SessionMiddleware

from qefleet.middleware import BrowserAuthenticationMiddleware, BrowserMessageMiddleware

pytestmark = pytest.mark.django_db


def seen_by_the_view(path):
    """The request as the view gets it after sessions, users and messages."""
    seen = []

    def view(request):
        seen.append(request)
        return None

    chain = view
    for middleware in (BrowserMessageMiddleware, BrowserAuthenticationMiddleware, SessionMiddleware):
        chain = middleware(chain)
    chain(RequestFactory().get(path))
    return seen[0]


def test_it_skips_them_for_api_requests():
    request = seen_by_the_view("/api/v1/agents/alice")
    assert not any(hasattr(request, name) for name in ("user", "_messages"))


def test_it_runs_them_for_dashboard_requests():
    request = seen_by_the_view("/ops/")
    assert all(hasattr(request, name) for name in ("session", "user", "_messages"))


def test_it_keeps_csrf_checks_on_dashboard_forms_and_tokens_on_the_api(alice):
    user = User.objects.create_user("op", password="a long demo password")
    user.groups.add(Group.objects.get(name="operator"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    refused = client.post(f"/ops/agents/{alice.agent_id}/run-cycle")
    assert refused.status_code == 403 and b"CSRF verification failed" in refused.content
    # The control: the same POST with the token the dashboard hands out goes through, so
    # the 403 above is the missing token and not the operator's permission.
    client.get(f"/ops/agents/{alice.agent_id}/")
    allowed = client.post(f"/ops/agents/{alice.agent_id}/run-cycle",
                          {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert allowed.status_code == 302
    answer = client.post(f"/api/v1/agents/{alice.agent_id}/heartbeat", "{}", content_type="application/json",
                         headers={"Authorization": f"Bearer {alice.token}"})
    assert answer.status_code == 200 and not answer.cookies
