"""A running test assigns its task type's tasks to arms: at random with the
test's weights, the same arm for the same task id, logged with the decision;
the execution report feeds the arm."""

import pytest

from learning.models import ABArm, ABTestState, Decision, LearningProfile
from tests.learning.abtest_helpers import start_test
from tests.learning.helpers import recommend, report, task

pytestmark = pytest.mark.django_db


def test_it_answers_with_the_arm_and_its_probability(alice):
    test = start_test(alice)
    body = recommend(alice, id="task-a")
    arm = ABArm.objects.get(test=test, strategy__name=body["strategy"])
    assert body["abtest"] == {"id": test.pk, "arm": arm.role}
    assert body["explored"] is False and body["propensity"] == 0.5
    assert f"A/B test {test.pk}" in body["reasoning"]
    assert Decision.objects.get(pk=body["decision_id"]).abtest_arm == arm


def test_the_same_task_gets_the_same_arm(alice):
    start_test(alice)
    arms = {recommend(alice, id="sticky")["abtest"]["arm"] for _ in range(10)}
    assert len(arms) == 1


def test_different_tasks_follow_the_weights(alice):
    start_test(alice, control_weight=0.8)
    roles = [recommend(alice, id=f"t{number}")["abtest"]["arm"] for number in range(300)]
    assert 0.7 < roles.count("control") / len(roles) < 0.9


def test_other_task_types_and_agents_are_not_assigned(alice, bob):
    start_test(alice)
    assert "abtest" not in recommend(alice, type="api-tests")
    assert "abtest" not in recommend(bob)


def test_a_draft_test_assigns_nothing(alice):
    start_test(alice, start=False)
    assert "abtest" not in recommend(alice)


def test_the_report_feeds_the_arm(alice):
    test = start_test(alice)
    decision = recommend(alice, id="fed")
    assert report(alice, decision, task(id="fed"), success=False, execution_time_ms=3000,
                  errors=[{"type": "TimeoutError", "message": "timed out"}]).status_code == 201
    arm = ABArm.objects.get(test=test, role=decision["abtest"]["arm"])
    assert (arm.n, arm.successes, arm.total_ms, arm.error_tasks) == (1, 0, 3000, 1)
    other = ABArm.objects.exclude(pk=arm.pk).get(test=test)
    assert other.n == 0


def test_a_repeated_report_counts_once(alice):
    test = start_test(alice)
    decision = recommend(alice, id="twice")
    for _ in range(2):
        report(alice, decision, task(id="twice"))
    assert sum(ABArm.objects.filter(test=test).values_list("n", flat=True)) == 1


def test_reports_after_the_test_ended_do_not_count(alice):
    test = start_test(alice)
    decision = recommend(alice, id="late")
    test.state = ABTestState.ABORTED
    test.save()
    report(alice, decision, task(id="late"))
    assert sum(ABArm.objects.filter(test=test).values_list("n", flat=True)) == 0


def test_an_agent_with_learning_disabled_is_not_assigned(alice):
    start_test(alice)
    LearningProfile.objects.update_or_create(agent=alice, defaults={"enabled": False})
    assert "abtest" not in recommend(alice)


def test_a_policy_control_runs_the_agents_own_choice(alice):
    LearningProfile.objects.update_or_create(agent=alice, defaults={"exploration_rate": 0.0,
                                                                   "min_exploration_rate": 0.0})
    test = start_test(alice, control=None, treatment="parallel-execution")
    bodies = [recommend(alice, id=f"p{number}") for number in range(40)]
    control = [body for body in bodies if body["abtest"]["arm"] == "control"]
    treatment = [body for body in bodies if body["abtest"]["arm"] == "treatment"]
    assert control and treatment
    # Nothing learned: the control gets the catalog default, as without a test.
    assert {body["strategy"] for body in control} == {"sequential-execution"}
    assert all(body["propensity"] == 0.5 and "the learned policy" in body["reasoning"] for body in control)
    assert {body["strategy"] for body in treatment} == {"parallel-execution"}
    assert test.control.label == "the learned policy"
