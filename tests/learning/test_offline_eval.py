"""The what-if service: logged decisions joined with their executions,
estimated for a fixed strategy, a stored version and the current policy."""

from datetime import timedelta

import pytest
from django.utils import timezone

from learning import offline_eval, versions
from learning.models import Execution, LearningProfile, QEntry, Strategy, VersionReason

from .offline_helpers import RATES, STATES, log_tasks, truth


def evaluate(agent, policy, **options):
    return offline_eval.evaluate(offline_eval.agents_in_scope(agent=agent), policy, replicates=300, **options)


def test_a_fixed_strategy_is_estimated_with_an_interval_that_covers_the_truth(alice):
    strategies = log_tasks(alice, 1000)
    answer = evaluate(alice, offline_eval.Fixed("integration-tests", strategies[2]))
    assert answer["rows"] == 1000
    success = answer["success"]["doubly_robust"]
    assert success["low"] <= truth(2) <= success["high"]
    assert answer["effective_samples"] > 30
    assert 0 < answer["score"]["doubly_robust"]["value"] < 1
    assert answer["policy"] == f"always {strategies[2].name} for integration-tests"


def test_only_the_named_task_types_logs_count_for_a_fixed_strategy(alice):
    strategies = log_tasks(alice, 300)
    log_tasks(alice, 200, task_type="unit-tests", seed=1)
    answer = evaluate(alice, offline_eval.Fixed("unit-tests", strategies[0]))
    assert answer["rows"] == 200


def test_it_refuses_a_strategy_the_logging_policy_never_gave_a_chance(alice):
    strategies = log_tasks(alice, 400, only=(0, 1))
    answer = evaluate(alice, offline_eval.Fixed("integration-tests", strategies[3]))
    assert answer["refused"]["reason"] == "no_overlap"
    assert "success" not in answer


def test_tasks_run_on_the_agents_own_choice_are_left_out_and_counted(alice):
    strategies = log_tasks(alice, 300)
    log_tasks(alice, 40, seed=9, decided=False)
    answer = evaluate(alice, offline_eval.Fixed("integration-tests", strategies[0]))
    assert answer["rows"] == 300
    assert answer["without_propensity"] == 40


def test_without_logs_the_answer_is_a_refusal_naming_it(alice):
    strategies = log_tasks(alice, 0)
    answer = evaluate(alice, offline_eval.Fixed("integration-tests", strategies[0]))
    assert answer["refused"]["reason"] == "no_logs"


def learn(agent, strategies, best_by_state):
    LearningProfile.objects.get_or_create(agent=agent)
    QEntry.objects.filter(agent=agent).delete()
    QEntry.objects.bulk_create([
        QEntry(agent=agent, task_type="integration-tests", state_key=state, strategy=strategy,
               q_value=1.0 if position == best else 0.1, visits=5)
        for state, best in zip(STATES, best_by_state) for position, strategy in enumerate(strategies)])


def test_a_versions_greedy_policy_is_estimated_from_its_stored_q_values(alice):
    strategies = list(Strategy.objects.order_by("pk"))[:4]
    learn(alice, strategies, (0, 1, 2))  # the best strategy of every state
    good = versions.capture(alice, VersionReason.ON_DEMAND)
    log_tasks(alice, 1500, seed=4)
    learn(alice, strategies, (3, 3, 3))  # then the live state goes wrong
    rolled_back = evaluate(alice, offline_eval.VersionPolicy(good))
    current = evaluate(alice, offline_eval.CurrentPolicy(0.0))
    epsilon = 0.3  # the default exploration rate the version stored
    expected = (1 - epsilon) * RATES.max(axis=1).mean() + epsilon * RATES.mean()
    version_estimate = rolled_back["success"]["doubly_robust"]
    assert version_estimate["low"] <= expected <= version_estimate["high"]
    assert current["success"]["doubly_robust"]["high"] < version_estimate["low"]


def test_the_current_policy_with_less_exploration_is_estimated_higher(alice):
    strategies = log_tasks(alice, 1500, seed=6)
    learn(alice, strategies, (0, 1, 2))
    greedy = evaluate(alice, offline_eval.CurrentPolicy(0.0))["success"]["doubly_robust"]["value"]
    exploring = evaluate(alice, offline_eval.CurrentPolicy(0.5))["success"]["doubly_robust"]["value"]
    assert greedy > exploring
    assert greedy == pytest.approx(RATES.max(axis=1).mean(), abs=0.05)


def test_the_abtest_outlook_gives_the_lift_and_days_to_the_horizon(alice):
    strategies = log_tasks(alice, 600)
    Execution.objects.filter(agent=alice).update(created_at=timezone.now() - timedelta(days=20))
    answer = evaluate(alice, offline_eval.Fixed("integration-tests", strategies[2]), days=30)
    outlook = offline_eval.abtest_outlook(answer)
    assert outlook["lift"] == answer["success"]["lift"]
    assert outlook["horizon"] >= 100
    # 600 tasks over the 20 days the logs span is 30 a day, half of them in the smaller arm.
    assert outlook["days_to_horizon"] == pytest.approx(outlook["horizon"] / 15, rel=1e-2)


def test_a_team_scope_pools_its_agents_logs(alice, bob, carol):
    strategies = log_tasks(alice, 200)
    log_tasks(bob, 200, seed=2)
    log_tasks(carol, 200, seed=3)
    answer = offline_eval.evaluate(offline_eval.agents_in_scope(team="core"),
                                   offline_eval.Fixed("integration-tests", strategies[1]), replicates=200)
    assert answer["rows"] == 400


def test_a_version_is_judged_on_the_tasks_after_its_capture_only(alice):
    strategies = log_tasks(alice, 300)
    learn(alice, strategies, (0, 1, 2))
    version = versions.capture(alice, VersionReason.ON_DEMAND)
    assert evaluate(alice, offline_eval.VersionPolicy(version))["refused"]["reason"] == "no_logs"
    log_tasks(alice, 400, seed=5)
    assert evaluate(alice, offline_eval.VersionPolicy(version))["rows"] == 400


def test_the_current_policy_is_flagged_as_judged_on_its_own_training_tasks(alice):
    strategies = log_tasks(alice, 300)
    learn(alice, strategies, (0, 1, 2))
    assert evaluate(alice, offline_eval.CurrentPolicy(0.1))["in_sample"] is True
    assert evaluate(alice, offline_eval.Fixed("integration-tests", strategies[0]))["in_sample"] is False
