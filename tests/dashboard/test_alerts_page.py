"""The alerts inbox at /ops/alerts/."""

import pytest
from django.test import Client

from learning import alerts
from learning.models import Alert

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(alice, bob):
    """Three alerts: alice high (firing), bob warning (acknowledged), a fleet info one (resolved)."""
    high, _ = alerts.raise_alert("safeguard:degraded", "high", "alice degraded", {}, alice)
    warning, _ = alerts.raise_alert("safeguard:warning", "warning", "bob wobbles", {}, bob)
    alerts.acknowledge(warning, "operator", "watching")
    info, _ = alerts.raise_alert("schedule:late", "info", "a job was late", {})
    alerts.resolve(info, "it ran")
    return high, warning, info


def summaries(response):
    return [alert.summary for alert in response.context["page"].object_list]


def test_it_requires_a_login():
    response = Client().get("/ops/alerts/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/ops/alerts/"


def test_it_shows_open_alerts_by_default(viewer, inbox):
    assert summaries(viewer.get("/ops/alerts/")) == ["bob wobbles", "alice degraded"]


@pytest.mark.parametrize("query, expected", [
    ("state=firing", ["alice degraded"]),
    ("state=resolved", ["a job was late"]),
    ("state=all&severity=info", ["a job was late"]),
    ("agent=bob", ["bob wobbles"]),
    ("severity=high&agent=bob", []),
    ("state=&severity=&agent=", ["bob wobbles", "alice degraded"]),  # the defaults; other values: 400
])
def test_it_filters_by_state_agent_and_severity(viewer, inbox, query, expected):
    assert summaries(viewer.get(f"/ops/alerts/?{query}")) == expected


def test_it_links_each_alert_to_its_agent_and_rollback_preview(viewer, inbox):
    page = viewer.get("/ops/alerts/").content.decode()
    assert 'href="/ops/agents/alice/"' in page
    assert 'href="/ops/agents/alice/?preview=known-good#versions"' in page


def test_operators_act_inline_and_viewers_only_read(viewer, operator, inbox):
    high, warning, _ = inbox
    page = operator.get("/ops/alerts/").content.decode()
    assert f'action="/ops/alerts/{high.pk}/acknowledge"' in page
    assert f'action="/ops/alerts/{warning.pk}/acknowledge"' not in page  # already acknowledged
    assert f'action="/ops/alerts/{warning.pk}/silence"' in page and f'action="/ops/alerts/{warning.pk}/resolve"' in page
    assert 'for="ack-note-%d"' % high.pk in page
    viewer_page = viewer.get("/ops/alerts/").content.decode()
    assert "/acknowledge" not in viewer_page and "/silence" not in viewer_page and "/resolve" not in viewer_page


def test_acting_returns_to_the_filtered_inbox(operator, inbox):
    high = inbox[0]
    response = operator.post(f"/ops/alerts/{high.pk}/acknowledge",
                             {"note": "on it", "next": "/ops/alerts/?agent=alice"})
    assert response["Location"] == "/ops/alerts/?agent=alice"
    high.refresh_from_db()
    assert (high.state, high.note) == ("acknowledged", "on it")
    page = operator.get("/ops/alerts/?agent=alice").content.decode()
    assert "acknowledged by operator" in page and "Alert %d acknowledged." % high.pk in page


def test_it_keeps_to_the_query_budget(operator, inbox, django_assert_max_num_queries):
    for number in range(30):
        alerts.raise_alert("safeguard:degraded", "high", f"alert {number}", {}, inbox[0].agent,
                           dedup_key=f"many:{number}")
    with django_assert_max_num_queries(25):
        response = operator.get("/ops/alerts/")
    assert len(response.context["page"].object_list) == 32
    assert Alert.objects.count() == 33
