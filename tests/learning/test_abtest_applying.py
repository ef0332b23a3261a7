"""Applying a winner changes what the agent is recommended; the applied
strategy is monitored with the safeguard's rule, reverted on sustained
degradation, kept after the monitoring period; a rollback ends tests."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from learning import abtests, improvement, safeguard, versions
from learning.models import (
    ABTest,
    ABTestState,
    Alert,
    AppliedStrategy,
    LearningProfile,
    VersionReason,
)
from qefleet.memory.models import Event
from tests.learning.abtest_helpers import set_arms, start_test
from tests.learning.helpers import no_exploration, recommend, report, strategy, task

pytestmark = pytest.mark.django_db


def run(agent, count, success, prefix):
    for number in range(count):
        decision = recommend(agent, id=f"{prefix}-{number}")
        assert report(agent, decision, task(id=f"{prefix}-{number}"), success=success).status_code == 201


def applied_test(agent):
    """A test whose treatment won on real, successful tasks, now monitored."""
    test = start_test(agent, horizon=200)
    run(agent, 30, True, "arm")
    set_arms(test, (200, 100), (200, 190))
    abtests.review(improvement.slot_start())
    test.refresh_from_db()
    assert test.state == ABTestState.MONITORING
    return test


def test_the_applied_winner_is_what_the_agent_is_recommended(alice):
    no_exploration(alice)
    test = applied_test(alice)
    body = recommend(alice, id="after")
    assert body["strategy"] == "parallel-execution" and "abtest" not in body
    assert f"applied for this task type (by A/B test {test.pk})" in body["reasoning"]
    # The monitoring reference is the winning arm's score on its real tasks.
    assert test.reference_score > 0.8


def test_sustained_degradation_reverts_it(alice):
    test = applied_test(alice)
    run(alice, 20, False, "bad")
    for _ in range(3):
        abtests.monitor(alice)
    test.refresh_from_db()
    assert test.state == ABTestState.REVERTED and test.degraded_checks == 3
    assert not AppliedStrategy.objects.filter(agent=alice, task_type="unit-tests").exists()
    assert Alert.objects.filter(kind="abtest:reverted", agent=alice).exists()
    assert Event.objects.filter(owner=alice, type="learning:strategy_changed").count() == 2


def test_a_revert_restores_the_strategy_it_replaced(alice):
    AppliedStrategy.objects.create(agent=alice, task_type="unit-tests", strategy=strategy("adaptive-retry"))
    test = applied_test(alice)
    assert test.previous_strategy.name == "adaptive-retry"
    abtests.revert(test, "by hand in a test")
    applied = AppliedStrategy.objects.get(agent=alice, task_type="unit-tests")
    assert applied.strategy.name == "adaptive-retry" and applied.source == f"revert:abtest:{test.pk}"


def test_two_degraded_checks_are_not_enough(alice):
    test = applied_test(alice)
    run(alice, 20, False, "bad")
    abtests.monitor(alice)
    abtests.monitor(alice)
    test.refresh_from_db()
    assert test.state == ABTestState.MONITORING and test.degraded_checks == 2
    assert test.verdict["monitoring"]["state"] == "degraded"


def test_a_healthy_winner_is_kept_after_the_monitoring_period(alice):
    test = applied_test(alice)
    run(alice, 20, True, "good")
    with time_machine.travel(timezone.now() + timedelta(days=ABTest.MONITOR_DAYS, minutes=1)):
        assert abtests.monitor(alice) == [{"abtest": test.pk, "outcome": ABTestState.KEPT}]
    test.refresh_from_db()
    assert test.state == ABTestState.KEPT
    assert AppliedStrategy.objects.get(agent=alice, task_type="unit-tests").strategy.name == "parallel-execution"


def test_a_rollback_aborts_running_tests_and_reverts_later_winners(alice):
    run(alice, 5, True, "warm")
    profile = LearningProfile.objects.get(agent=alice)
    target = versions.capture(alice, VersionReason.ON_DEMAND, profile)
    monitored = applied_test(alice)
    running = start_test(alice, task_type="api-tests")
    profile.refresh_from_db()
    safeguard.roll_back(alice, profile, target, automatic=False, actor="op")
    monitored.refresh_from_db()
    running.refresh_from_db()
    assert running.state == ABTestState.ABORTED and "rolled back to" in running.decision
    assert monitored.state == ABTestState.REVERTED
    # The restore put back the version's strategies: none was applied then.
    assert not AppliedStrategy.objects.filter(agent=alice).exists()


def test_undoing_the_rollback_monitors_the_winner_again(alice):
    run(alice, 5, True, "warm")
    profile = LearningProfile.objects.get(agent=alice)
    target = versions.capture(alice, VersionReason.ON_DEMAND, profile)
    monitored = applied_test(alice)
    profile.refresh_from_db()
    rollback = safeguard.roll_back(alice, profile, target, automatic=False, actor="op")
    profile.refresh_from_db()
    safeguard.roll_forward(alice, profile, rollback, actor="op")
    monitored.refresh_from_db()
    applied = AppliedStrategy.objects.get(agent=alice)
    assert applied.source == f"abtest:{monitored.pk}"
    assert monitored.state == ABTestState.MONITORING and monitored.finished_at is None
    assert [item.to_state for item in monitored.transitions.order_by("pk")][-2:] == [ABTestState.REVERTED,
                                                                                      ABTestState.MONITORING]
