"""Incidents prevented: each automatic rollback's and reverted winner's drop
times the tasks the degraded state would have served, summed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from learning import incidents
from learning.models import ABTest, ABTestState, Rollback
from qefleet.memory.models import Agent, AuditEvent

from .drill_helpers import logged_history


def rollback(agent, hours_ago, reference=0.8, window_score=0.7, automatic=True):
    record = Rollback.objects.create(
        agent=agent, automatic=automatic, numbers={"reference": reference, "window_score": window_score}
    )
    Rollback.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(hours=hours_ago))
    return record


def prevented():
    now = timezone.now()
    return incidents.prevented(Agent.objects.all(), now - timedelta(days=30), now + timedelta(seconds=1), now)


def test_a_rollback_prevents_its_drop_over_the_tasks_until_now(alice):
    logged_history(alice, tasks=400, tasks_per_hour=20)  # over the last 20 hours
    rollback(alice, hours_ago=10)
    found = prevented()
    (item,) = found["incidents"]
    assert item.kind == "rollback" and item.drop == pytest.approx(0.1)
    assert item.tasks == pytest.approx(200, abs=1)
    assert found["harm"] == pytest.approx(0.1 * item.tasks)


def test_exposure_ends_when_an_operator_re_enables_learning(alice):
    logged_history(alice, tasks=400, tasks_per_hour=20)
    rollback(alice, hours_ago=10)
    AuditEvent.objects.create(
        actor="admin", action="re_enable_learning", target="agent:alice", at=timezone.now() - timedelta(hours=5)
    )
    assert prevented()["incidents"][0].tasks == pytest.approx(100, abs=1)


def test_exposure_is_capped(alice):
    logged_history(alice, tasks=1500, tasks_per_hour=100)
    rollback(alice, hours_ago=14)
    (item,) = prevented()["incidents"]
    assert item.tasks == incidents.RECOVERY_CAP_TASKS and item.capped


def test_an_operators_rollback_is_not_counted(alice):
    logged_history(alice)
    rollback(alice, hours_ago=5, automatic=False)
    assert prevented()["incidents"] == []


def test_a_reverted_winner_counts_its_task_types_tasks(alice):
    logged_history(alice, tasks=400, tasks_per_hour=20)
    test = ABTest.objects.create(
        agent=alice,
        task_type="unit-tests",
        state=ABTestState.REVERTED,
        reference_score=0.8,
        finished_at=timezone.now() - timedelta(hours=4),
        verdict={"monitoring": {"change_pct": -12.5}},
    )
    found = prevented()
    (item,) = found["incidents"]
    assert item.kind == "reverted winner" and f"#{test.pk}" in item.what
    assert item.drop == pytest.approx(0.1)
    assert item.tasks == pytest.approx(80, abs=1)


def test_totals_per_agent_and_fleet(alice, bob):
    logged_history(alice, tasks=400, tasks_per_hour=20)
    logged_history(bob, tasks=400, tasks_per_hour=20, seed=1)
    rollback(alice, hours_ago=10, window_score=0.6)
    rollback(bob, hours_ago=10)
    found = prevented()
    assert [total["agent"] for total in found["per_agent"]] == ["alice", "bob"]  # the larger harm first
    assert found["harm"] == pytest.approx(sum(total["harm"] for total in found["per_agent"]))
