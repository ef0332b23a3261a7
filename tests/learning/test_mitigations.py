"""Mitigations: a frequent failure class changes the task type's
recommendations as documented, and its failure rate is measured before and
after so the report can tell whether it helped."""

import pytest

from learning import engine, mitigations
from learning.models import (
    Alert,
    Execution,
    FailurePattern,
    LearningProfile,
    Mitigation,
    MitigationState,
    QEntry,
)
from tests.learning.abtest_helpers import strategy
from tests.learning.helpers import recommend, report, task

pytestmark = pytest.mark.django_db

# The seeded catalog as (parallelization, retry policy): parallel, sequential, adaptive, resource.
ACTIONS = [(1.0, "exponential"), (0.0, "fixed"), (0.5, "adaptive"), (0.3, "exponential")]


def test_memory_failures_move_to_lower_parallelization():
    assert engine.mitigated_choice(["less_parallel"], ACTIONS, 0, [1.0, 0.1, 0.2, 0.6]) == 3


def test_timeouts_move_to_a_retrying_strategy_with_lower_parallelization():
    assert engine.mitigated_choice(["more_retries"], ACTIONS, 2, [0.0, 0.5, 0.9, 0.4]) == 1
    assert engine.mitigated_choice(["more_retries"], ACTIONS, 1, [0.0, 0.5, 0.9, 0.4]) == 1  # nothing lower


def test_network_failures_move_to_backoff_unless_it_already_backs_off():
    assert engine.mitigated_choice(["backoff_retry"], ACTIONS, 1, [0.2, 0.9, 0.5, 0.1]) == 2
    assert engine.mitigated_choice(["backoff_retry"], ACTIONS, 3, [0.9, 0.9, 0.5, 0.1]) == 3


def fail(agent, count, error_type, message, prefix="f"):
    for number in range(count):
        decision = recommend(agent, id=f"{prefix}-{number}")
        report(agent, decision, task(id=f"{prefix}-{number}"), success=False,
               errors=[{"type": error_type, "message": message}])


def succeed(agent, count, prefix="s"):
    for number in range(count):
        decision = recommend(agent, id=f"{prefix}-{number}")
        report(agent, decision, task(id=f"{prefix}-{number}"), success=True)


def test_reports_record_their_failure_classes(alice):
    fail(alice, 1, "OutOfMemoryError", "heap exhausted")
    assert Execution.objects.get().failure_classes == "memory"


def test_a_frequent_failure_class_is_mitigated_with_its_rate_before(alice):
    succeed(alice, 10)
    fail(alice, 6, "OutOfMemoryError", "heap exhausted")
    profile = LearningProfile.objects.get(agent=alice)
    [applied] = mitigations.activate(alice, profile)
    mitigation = Mitigation.objects.get(pk=applied["mitigation"])
    assert (mitigation.adjustment, mitigation.state) == ("less_parallel", MitigationState.ACTIVE)
    assert (mitigation.tasks_before, mitigation.failures_before) == (16, 6)
    assert mitigation.activated_after_task == 16
    assert mitigations.activate(alice, profile) == []  # one at a time


def test_a_mitigation_changes_the_recommendation(alice):
    LearningProfile.objects.create(agent=alice, exploration_rate=0.0, min_exploration_rate=0.0)
    QEntry.objects.create(agent=alice, task_type="unit-tests", state_key="0.6,0.1,0.0,0.8,1.0",
                          strategy=strategy("parallel-execution"), q_value=1.5, visits=20)
    assert recommend(alice)["strategy"] == "parallel-execution"
    Mitigation.objects.create(agent=alice, task_type="unit-tests", failure_class="memory",
                              adjustment="less_parallel", tasks_before=20, failures_before=8, activated_after_task=0)
    body = recommend(alice)
    assert body["strategy"] in ("resource-optimization", "adaptive-retry", "sequential-execution")
    assert "Mitigating frequent memory failures" in body["reasoning"]
    assert recommend(alice, type="api-tests")["strategy"] == "sequential-execution"  # the default, untouched


def test_it_is_judged_effective_when_the_class_fails_less(alice):
    fail(alice, 6, "OutOfMemoryError", "heap exhausted")
    mitigations.activate(alice, LearningProfile.objects.get(agent=alice))
    succeed(alice, mitigations.EVALUATE_AFTER)
    [judged] = mitigations.evaluate(alice)
    mitigation = Mitigation.objects.get()
    assert judged["state"] == mitigation.state == MitigationState.EFFECTIVE
    assert (mitigation.tasks_after, mitigation.failures_after) == (50, 0)
    assert mitigation.rate_before == 1.0 and mitigation.rate_after == 0.0


def test_it_is_judged_ineffective_and_not_retried_soon(alice):
    fail(alice, 6, "OutOfMemoryError", "heap exhausted")
    profile = LearningProfile.objects.get(agent=alice)
    mitigations.activate(alice, profile)
    fail(alice, mitigations.EVALUATE_AFTER, "OutOfMemoryError", "heap exhausted", prefix="again")
    mitigations.evaluate(alice)
    assert Mitigation.objects.get().state == MitigationState.INEFFECTIVE
    assert mitigations.active_adjustments(alice, "unit-tests") == []
    assert mitigations.activate(alice, profile) == []


def test_classes_no_strategy_fixes_alert_an_operator(alice):
    fail(alice, 6, "ValidationError", "schema mismatch")
    [applied] = mitigations.activate(alice, LearningProfile.objects.get(agent=alice))
    assert applied["adjustment"] == "none"
    assert Alert.objects.filter(kind="failure:needs_operator", agent=alice).exists()
    assert mitigations.active_adjustments(alice, "unit-tests") == []


def test_rare_failures_are_left_alone(alice):
    succeed(alice, 60)
    fail(alice, 5, "OutOfMemoryError", "heap exhausted")
    assert FailurePattern.objects.get().confidence < mitigations.FREQUENT
    assert mitigations.activate(alice, LearningProfile.objects.get(agent=alice)) == []
