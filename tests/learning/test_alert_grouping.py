"""Open alerts group by kind across agents and task types, one card each,
the most severe card first, then the most recent; inside a card likewise."""

from datetime import timedelta

import pytest
from django.utils import timezone

from learning import alerts
from learning.models import Alert

pytestmark = pytest.mark.django_db


def raised(kind, severity, agent, minutes_ago, task_type=""):
    alert, _ = alerts.raise_alert(
        kind,
        severity,
        f"{kind} {agent.agent_id} {task_type}",
        {},
        agent,
        dedup_key=f"{kind}:{agent.agent_id}:{task_type}",
        task_type=task_type,
    )
    Alert.objects.filter(pk=alert.pk).update(last_seen_at=timezone.now() - timedelta(minutes=minutes_ago))
    return Alert.objects.get(pk=alert.pk)


def test_alerts_of_one_kind_share_a_group_across_agents_and_task_types(alice, bob):
    members = [
        raised("failure:needs_operator", "warning", alice, 5, "unit-tests"),
        raised("failure:needs_operator", "warning", alice, 3, "e2e-tests"),
        raised("failure:needs_operator", "warning", bob, 9, "unit-tests"),
    ]
    [group] = alerts.grouped(members)
    assert (group.kind, group.count, group.agents, group.task_types) == (
        "failure:needs_operator",
        3,
        ["alice", "bob"],
        ["e2e-tests", "unit-tests"],
    )
    assert group.alerts == [members[1], members[0], members[2]]  # most recent first
    assert group.last_seen_at == members[1].last_seen_at and group.firing == 3


def test_groups_sort_by_severity_then_recency(alice, bob):
    old_high = raised("safeguard:rollback", "high", alice, 50)
    new_warning = raised("abtest:reverted", "warning", bob, 1)
    new_info = raised("failure:needs_operator", "info", bob, 0)
    older_warning = raised("schedule:stale", "warning", alice, 20)
    groups = alerts.grouped([new_info, older_warning, new_warning, old_high])
    assert [group.kind for group in groups] == [
        "safeguard:rollback",
        "abtest:reverted",
        "schedule:stale",
        "failure:needs_operator",
    ]


def test_a_group_is_as_severe_as_its_most_severe_member(alice, bob):
    members = [raised("safeguard:degraded", "warning", alice, 1), raised("safeguard:degraded", "high", bob, 9)]
    [group] = alerts.grouped(members)
    assert group.severity == "high" and group.alerts[0].severity == "high"
