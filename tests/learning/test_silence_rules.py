"""Silence rules: matched by kind, agent, task type and severity (empty
matches anything), applied to alerts as they are raised and to the open
ones, and ending on their own."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from learning import alerts, operations
from learning.models import Alert, SilenceRule
from qefleet.memory.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_user(db):
    return User.objects.create_user("on-call")


def failure_alert(agent, task_type="unit-tests", severity="warning"):
    return alerts.raise_alert(
        "failure:needs_operator",
        severity,
        f"{agent.agent_id} {task_type}",
        {},
        agent,
        dedup_key=f"failure:{agent.agent_id}:{task_type}",
        task_type=task_type,
    )[0]


@pytest.mark.parametrize(
    "fields, matches",
    [
        ({"kind": "failure:needs_operator"}, True),
        ({"kind": "safeguard:rollback"}, False),
        ({"task_type": "unit-tests", "severity": "warning"}, True),
        ({"task_type": "e2e-tests"}, False),
        ({"severity": "high"}, False),
    ],
)
def test_a_rule_matches_what_each_of_its_fields_names(alice, fields, matches):
    alert = failure_alert(alice)
    rule = SilenceRule(until=timezone.now() + timedelta(hours=1), **fields)
    assert rule.matches(alert) is matches
    assert rule.matching(Alert.objects.all()).exists() is matches


def test_a_rule_names_its_agent_and_no_other(alice, bob):
    rule = SilenceRule(agent=alice, until=timezone.now() + timedelta(hours=1))
    assert rule.matches(failure_alert(alice)) and not rule.matches(failure_alert(bob))


def test_a_new_rule_quiets_the_open_alerts_it_matches_audited(alice, bob, operator_user):
    quieted, heard = failure_alert(alice), failure_alert(bob, "e2e-tests")
    until = timezone.now() + timedelta(hours=2)
    rule, count = operations.create_silence(operator_user, until, task_type="unit-tests", comment="fixtures rebuilt")
    assert count == 1
    quieted.refresh_from_db()
    heard.refresh_from_db()
    assert (quieted.silenced_until, quieted.silenced_by) == (until, rule) and heard.silenced_until is None
    audit = AuditEvent.objects.get(action="create_silence")
    assert audit.target == f"silence:{rule.pk}" and audit.detail["quieted"] == 1


def test_an_alert_raised_under_a_rule_is_silenced_and_notifies_nobody(
    alice, operator_user, django_capture_on_commit_callbacks
):
    until = timezone.now() + timedelta(hours=1)
    operations.create_silence(operator_user, until, kind="failure:needs_operator", agent=alice)
    with mock.patch("learning.alerts._queue_notification") as queue, django_capture_on_commit_callbacks(execute=True):
        alert = failure_alert(alice)
    assert alert.silenced_until == until and queue.call_count == 0


def test_a_rule_ends_on_its_own_and_its_alerts_are_heard_again(alice, operator_user):
    alert = failure_alert(alice)
    operations.create_silence(operator_user, timezone.now() + timedelta(hours=1), agent=alice)
    later = timezone.now() + timedelta(hours=2)
    assert not Alert.objects.open().audible(timezone.now()).exists()
    assert list(Alert.objects.open().audible(later)) == [alert]  # past its end, no job needed
    assert not SilenceRule.objects.active(later).exists()
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert failure_alert(alice, "e2e-tests").silenced_until is None  # raised after it ended


def test_ending_a_rule_now_releases_its_alerts(alice, operator_user):
    alert = failure_alert(alice)
    rule, _ = operations.create_silence(operator_user, timezone.now() + timedelta(hours=1), agent=alice)
    operations.end_silence(rule.pk, operator_user)
    alert.refresh_from_db()
    assert alert.silenced_until is None and operations.end_silence(rule.pk, operator_user) is None
    assert AuditEvent.objects.filter(action="end_silence").count() == 1


def test_a_rule_that_would_match_everything_is_refused(operator_user):
    with pytest.raises(operations.InvalidAction, match="narrow"):
        operations.create_silence(operator_user, timezone.now() + timedelta(hours=1))
    assert not SilenceRule.objects.exists()
