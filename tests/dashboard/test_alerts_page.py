"""The alerts inbox at /ops/alerts/: cards by kind, the digest, the silenced."""

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
    parts = response.context["inbox"]
    return [alert.summary for part in (parts.decisions, parts.digest, parts.silenced)
            for group in part for alert in group.alerts]


def test_it_requires_a_login():
    response = Client().get("/ops/alerts/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/ops/alerts/"


def test_it_shows_open_alerts_by_default_most_severe_first(viewer, inbox):
    assert summaries(viewer.get("/ops/alerts/")) == ["alice degraded", "bob wobbles"]


@pytest.mark.parametrize("query, expected", [
    ("state=firing", ["alice degraded"]),
    ("state=resolved", ["a job was late"]),
    ("state=all&severity=info", ["a job was late"]),
    ("agent=bob", ["bob wobbles"]),
    ("severity=high&agent=bob", []),
    ("state=&severity=&agent=", ["alice degraded", "bob wobbles"]),  # the defaults; other values: 400
])
def test_it_filters_by_state_agent_and_severity(viewer, inbox, query, expected):
    assert summaries(viewer.get(f"/ops/alerts/?{query}")) == expected


def test_it_links_each_alert_to_its_agent_and_rollback_preview(viewer, inbox):
    page = viewer.get("/ops/alerts/").content.decode()
    assert 'href="/ops/agents/alice/"' in page
    assert 'href="/ops/agents/alice/?preview=known-good#versions"' in page


def test_operators_act_on_a_card_and_viewers_only_read(viewer, operator, inbox):
    high, warning, _ = inbox
    page = operator.get("/ops/alerts/").content.decode()
    assert page.count('action="/ops/alerts/bulk"') == 2  # one form per card
    assert f'name="alert" value="{high.pk}"' in page and f'name="alert" value="{warning.pk}"' in page
    assert 'name="action" value="acknowledge"' in page and 'action="/ops/alerts/silences"' in page
    viewer_page = viewer.get("/ops/alerts/").content.decode()
    assert "/ops/alerts/bulk" not in viewer_page and "/ops/alerts/silences" not in viewer_page
    assert 'name="alert"' not in viewer_page


def test_acting_returns_to_the_filtered_inbox(operator, inbox):
    high = inbox[0]
    response = operator.post("/ops/alerts/bulk", {"alert": high.pk, "action": "acknowledge", "note": "on it",
                                                  "next": "/ops/alerts/?agent=alice"})
    assert response["Location"] == "/ops/alerts/?agent=alice"
    high.refresh_from_db()
    assert (high.state, high.note) == ("acknowledged", "on it")
    page = operator.get("/ops/alerts/?agent=alice").content.decode()
    assert "acknowledged by operator" in page and "1 alert acknowledged." in page


def test_it_keeps_to_the_query_budget(operator, inbox, django_assert_max_num_queries):
    for number in range(30):
        alerts.raise_alert("safeguard:degraded", "high", f"alert {number}", {}, inbox[0].agent,
                           dedup_key=f"many:{number}")
    with django_assert_max_num_queries(25):
        response = operator.get("/ops/alerts/")
    assert len(summaries(response)) == 32
    assert Alert.objects.count() == 33
