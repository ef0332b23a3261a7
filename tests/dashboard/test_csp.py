"""Every dashboard page carries the strict CSP and needs no inline script."""

import re

import pytest
from django.test import Client

from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db

PAGES = ["/ops/", "/ops/agents/alice/", "/ops/alerts/", "/accounts/login/"]


@pytest.mark.parametrize("path", PAGES)
def test_it_sends_the_policy_and_only_external_or_data_scripts(viewer, alice, path):
    run_task(alice)
    client = Client() if path.startswith("/accounts/") else viewer
    response = client.get(path)
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self' 'unsafe-inline'"
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    for tag in re.findall(r"<script[^>]*>", response.content.decode()):
        assert 'src="/static/' in tag or 'type="application/json"' in tag, tag


def test_plotly_is_served_from_our_static_files(viewer):
    page = viewer.get("/ops/").content.decode()
    assert '<script src="/static/vendor/plotly/plotly.min.js" defer></script>' in page
    # Every script and stylesheet comes from our own origin: no address names
    # another host (a search for "cdn" matched a random CSRF token once).
    assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page)
    assert assets
    assert all(address.startswith("/") and not address.startswith("//") for address in assets), assets
