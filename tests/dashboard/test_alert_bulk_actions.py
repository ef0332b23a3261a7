"""Bulk actions on a card's alerts: one transaction, one audit row; input
the action cannot use answers 400 naming the field and changes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from learning import alerts
from learning.models import Alert
from qefleet.memory.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def card(alice, bob):
    return [
        alerts.raise_alert(
            "failure:needs_operator",
            "warning",
            f"{agent.agent_id} {task_type}",
            {},
            agent,
            dedup_key=f"failure:{agent.agent_id}:{task_type}",
            task_type=task_type,
        )[0]
        for agent in (alice, bob)
        for task_type in ("unit-tests", "e2e-tests")
    ]


def ids(alerts_):
    return [alert.pk for alert in alerts_]


def test_it_acknowledges_a_whole_card_with_one_audit_row(operator, card):
    response = operator.post("/ops/alerts/bulk", {"alert": ids(card), "action": "acknowledge", "note": "on it"})
    assert response.status_code == 302
    assert set(Alert.objects.values_list("state", "acknowledged_by", "note")) == {("acknowledged", "operator", "on it")}
    audit = AuditEvent.objects.get(action="alert_acknowledge")
    assert audit.target == "alerts:4" and audit.detail["alerts"] == sorted(ids(card))


@pytest.mark.parametrize(
    "action, field, value",
    [
        ("resolve", "state", "resolved"),
        ("silence", "silenced_until", None),
    ],
)
def test_it_resolves_or_silences_the_checked_members_only(operator, card, action, field, value):
    until = (timezone.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    operator.post(
        "/ops/alerts/bulk", {"alert": ids(card[:3]), "action": action, "until": until.strftime("%Y-%m-%dT%H:%M")}
    )
    changed = [getattr(alert, field) for alert in Alert.objects.order_by("pk")]
    expected = value if value is not None else until
    assert changed[:3] == [expected] * 3 and changed[3] != expected
    assert AuditEvent.objects.filter(action=f"alert_{action}").count() == 1


@pytest.mark.parametrize(
    "form, field",
    [
        ({"action": "acknowledge", "alert": []}, "alert"),  # none checked
        ({"action": "explode"}, "action"),
        ({"action": "acknowledge", "extra": "x"}, "alert"),
        ({"action": "acknowledge", "extra": "999999"}, "alert"),  # no such alert, beside real ones
        ({"action": "silence"}, "until"),
        ({"action": "resolve", "note": "a\x00b"}, "note"),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_changes_nothing(operator, card, form, field):
    form = dict(form)
    checked = form.pop("alert", ids(card)) + ([form.pop("extra")] if "extra" in form else [])
    response = operator.post("/ops/alerts/bulk", {**form, "alert": checked})
    assert response.status_code == 400 and field in response.content.decode()
    assert set(Alert.objects.values_list("state", "silenced_until", "note")) == {("firing", None, "")}
    assert not AuditEvent.objects.filter(action__startswith="alert_").exists()


def test_viewers_cannot_act(viewer, card):
    assert viewer.post("/ops/alerts/bulk", {"alert": ids(card), "action": "resolve"}).status_code == 403
    assert not Alert.objects.filter(state="resolved").exists()
