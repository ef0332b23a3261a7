"""Every page under /ops/ needs a role: a logged-in user without one gets
403 from each (405 from the POST-only actions), never a page or its JSON."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from dashboard.urls import urlpatterns
from tests.conftest import make_agent

pytestmark = pytest.mark.django_db

ARGUMENTS = {"agent_id": "alice", "test_id": 1, "rollback_id": 1, "alert_id": 1, "action": "acknowledge",
             "rule_id": 1}
POST_ONLY = {"dash-abort-test", "dash-rollback", "dash-undo-rollback", "dash-re-enable", "dash-run-cycle",
             "dash-alert-action", "dash-pause", "dash-alerts-bulk", "dash-create-silence", "dash-end-silence",
             "dash-run-drills", "dash-apply-calibration", "dash-put-in-shadow", "dash-promote"}


def url_of(pattern):
    names = pattern.pattern.converters
    return reverse(pattern.name, kwargs={name: ARGUMENTS[name] for name in names})


@pytest.mark.parametrize("pattern", urlpatterns, ids=lambda pattern: pattern.name)
def test_it_refuses_every_page_to_a_user_without_a_role(pattern):
    make_agent("alice")
    client = Client()
    client.force_login(User.objects.create_user("nobody"))
    expected = 405 if pattern.name in POST_ONLY else 403
    assert client.get(url_of(pattern)).status_code == expected
