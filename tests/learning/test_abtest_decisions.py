"""Each slot's look at the running tests: a sample-ratio mismatch aborts, a
clear difference decides early, the horizon decides the rest, guardrails
block applying, and discoveries must survive false-discovery control across
the fleet's concurrent tests."""

import pytest

from learning import abtests, improvement
from learning.models import ABLook, ABTest, ABTestState, Alert, AppliedStrategy, LearningProfile, StateVersion
from qefleet.memory.models import Event
from tests.learning.abtest_helpers import set_arms, start_test

pytestmark = pytest.mark.django_db


def review(agent_ids=None):
    return abtests.review(improvement.slot_start(), agent_ids)


def states(test):
    return list(test.transitions.values_list("to_state", flat=True))


def test_a_clear_early_winner_is_applied_and_monitored(alice):
    test = start_test(alice, horizon=400)
    set_arms(test, (150, 75), (150, 140))
    assert review() == [{"abtest": test.pk, "agent": "alice", "outcome": ABTestState.APPLIED}]
    test.refresh_from_db()
    assert test.state == ABTestState.MONITORING
    assert states(test) == ["draft", "running", "winner", "applied", "monitoring"]
    assert test.decision.startswith("winner") and "n = 150 of 400" in test.decision
    applied = AppliedStrategy.objects.get(agent=alice, task_type="unit-tests")
    assert applied.strategy.name == "parallel-execution" and applied.source == f"abtest:{test.pk}"
    assert test.version_before == StateVersion.objects.get(agent=alice, reason="before_apply")
    assert test.monitor_until is not None and test.applied_at is not None
    types = set(Event.objects.filter(owner=alice).values_list("type", flat=True))
    assert {"learning:abtest_started", "learning:abtest_completed", "learning:strategy_changed"} <= types


def test_an_undecided_test_keeps_running_and_records_the_look(alice):
    test = start_test(alice, horizon=400)
    set_arms(test, (80, 60), (80, 64))
    assert review() == []
    test.refresh_from_db()
    assert test.state == ABTestState.RUNNING
    assert test.decision.startswith("running: n = 80 of 400")
    look = ABLook.objects.get(test=test)
    assert (look.n_control, look.n_treatment) == (80, 80) and look.low < 0 < look.high


def test_a_second_look_in_the_same_slot_records_one_look(alice):
    test = start_test(alice, horizon=400)
    set_arms(test, (80, 60), (80, 64))
    review()
    review()
    assert ABLook.objects.filter(test=test).count() == 1


def test_at_the_horizon_an_interval_across_zero_is_inconclusive(alice):
    test = start_test(alice, horizon=200)
    set_arms(test, (200, 150), (200, 156))
    assert review()[0]["outcome"] == ABTestState.INCONCLUSIVE
    test.refresh_from_db()
    assert "crosses zero at n = 200 of 200" in test.decision
    assert "sequential-execution stays" in test.decision
    assert not AppliedStrategy.objects.filter(agent=alice).exists()


def test_one_arm_at_the_horizon_keeps_the_test_running(alice):
    test = start_test(alice, horizon=200)
    set_arms(test, (200, 150), (190, 146))
    assert review() == []
    test.refresh_from_db()
    assert test.state == ABTestState.RUNNING
    assert test.decision.startswith("running: n = 190 of 200")


def test_a_worse_treatment_leaves_the_control(alice):
    test = start_test(alice, horizon=200)
    set_arms(test, (200, 180), (200, 120))
    review()
    test.refresh_from_db()
    assert test.state == ABTestState.CONTROL_WINS and test.verdict["outcome"] == "loser"
    assert states(test) == ["draft", "running", "control-wins"]
    assert test.decision.startswith("control wins: treatment -30.0 points")
    assert test.decision.endswith("sequential-execution stays")
    assert not AppliedStrategy.objects.filter(agent=alice).exists()


def test_a_guardrail_blocks_applying_a_winner(alice):
    test = start_test(alice, horizon=200)
    set_arms(test, (200, 120, 2000), (200, 180, 5000))
    review()
    test.refresh_from_db()
    assert test.state == ABTestState.WINNER
    assert "not applied: the time guardrail failed" in test.decision
    assert not AppliedStrategy.objects.filter(agent=alice).exists()


def test_a_sample_ratio_mismatch_aborts_and_alerts(alice):
    test = start_test(alice, horizon=400)
    set_arms(test, (300, 200), (150, 100))
    assert review()[0]["outcome"] == ABTestState.ABORTED
    test.refresh_from_db()
    assert "sample ratio mismatch" in test.decision and test.verdict["srm_p_value"] < 0.001
    assert Alert.objects.filter(kind="abtest:srm", agent=alice).exists()


@pytest.mark.parametrize("control, treatment, aborted", [
    ((17, 8), (2, 1), False),  # 19 tasks: too few for a ratio to say anything
    ((18, 9), (2, 1), True),  # SRM_MIN_SAMPLES
])
def test_a_sample_ratio_counts_only_from_twenty_tasks(alice, control, treatment, aborted):
    test = start_test(alice, horizon=400)
    set_arms(test, control, treatment)
    review()
    test.refresh_from_db()
    assert test.verdict["srm_p_value"] < 0.001
    assert (test.state == ABTestState.ABORTED) is aborted


def test_discoveries_must_survive_false_discovery_control(alice, bob, carol):
    # One test only just clears its own interval; with two null tests beside
    # it, Benjamini-Hochberg does not keep it as a discovery.
    marginal = start_test(alice, horizon=200)
    set_arms(marginal, (200, 100), (200, 122))
    alone = marginal.verdict
    for agent in (bob, carol):
        set_arms(start_test(agent, horizon=400), (100, 50), (100, 50))
    review()
    marginal.refresh_from_db()
    assert alone == {}  # nothing judged before the review
    assert marginal.verdict["outcome"] == "winner" and marginal.verdict["p_value"] < 0.05
    assert marginal.state == ABTestState.INCONCLUSIVE
    assert marginal.decision.startswith("inconclusive: treatment +11.0 points (interval")
    assert "but not significant after false-discovery control across 3 running tests" in marginal.decision


def test_a_test_held_back_by_false_discovery_control_says_it_runs_on(alice, bob, carol):
    marginal = start_test(alice, horizon=400)
    set_arms(marginal, (150, 75), (150, 103))
    for agent in (bob, carol):
        set_arms(start_test(agent, horizon=400), (100, 50), (100, 50))
    review()
    marginal.refresh_from_db()
    assert marginal.verdict["outcome"] == "winner" and marginal.state == ABTestState.RUNNING
    assert marginal.decision.startswith("running: treatment +18.7 points (always-valid interval")
    assert "n = 150 of 400" in marginal.decision
    assert "clears zero, but not after false-discovery control across 3 running tests" in marginal.decision


def test_alone_the_same_numbers_are_a_winner(alice):
    marginal = start_test(alice, horizon=200)
    set_arms(marginal, (200, 100), (200, 122))
    review()
    marginal.refresh_from_db()
    assert marginal.state == ABTestState.MONITORING


def test_tests_of_agents_with_learning_disabled_wait(alice):
    test = start_test(alice, horizon=200)
    set_arms(test, (200, 100), (200, 190))
    LearningProfile.objects.update_or_create(agent=alice, defaults={"enabled": False})
    assert review() == []
    assert ABTest.objects.get(pk=test.pk).state == ABTestState.RUNNING


def test_review_decides_only_the_named_agents(alice, bob):
    mine = start_test(alice, horizon=200)
    theirs = start_test(bob, horizon=200)
    for test in (mine, theirs):
        set_arms(test, (200, 100), (200, 190))
    assert [item["agent"] for item in review({"alice"})] == ["alice"]
    assert ABTest.objects.get(pk=theirs.pk).state == ABTestState.RUNNING
