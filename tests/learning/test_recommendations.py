import pytest

from learning.models import AppliedStrategy, Decision, LearningProfile, QEntry, Strategy
from tests.learning.helpers import no_exploration, recommend

pytestmark = pytest.mark.django_db


def learn(agent, state_key, strategy_name, q, visits=10, task_type="unit-tests"):
    QEntry.objects.create(agent=agent, task_type=task_type, state_key=state_key,
                          strategy=Strategy.objects.get(name=strategy_name), q_value=q, visits=visits)


def test_it_returns_a_strategy_with_its_parameters(alice):
    body = recommend(alice)
    strategy = Strategy.objects.get(name=body["strategy"])
    assert (body["parallelization"], body["retry_policy"]) == (strategy.parallelization, strategy.retry_policy)
    assert body["action_key"] == strategy.action_key
    assert body["state_key"] == "0.6,0.1,0.0,0.8,1.0"
    assert len(body["alternatives"]) == 3
    assert body["strategy"] not in [alt["strategy"] for alt in body["alternatives"]]


def test_it_exploits_the_best_known_action(alice):
    no_exploration(alice)
    learn(alice, "0.6,0.1,0.0,0.8,1.0", "adaptive-retry", 1.2, visits=20)
    learn(alice, "0.6,0.1,0.0,0.8,1.0", "parallel-execution", 0.3, visits=20)
    body = recommend(alice)
    assert body["strategy"] == "adaptive-retry" and body["explored"] is False
    assert body["propensity"] == 1.0
    assert "Exploiting" in body["reasoning"] and "1.200" in body["reasoning"] and "20 visits" in body["reasoning"]
    assert body["confidence"] == pytest.approx(0.5 + (3.2 / 4 - 0.5) * 20 / 25, abs=1e-4)
    assert body["alternatives"][0]["strategy"] == "parallel-execution"


def test_it_stores_the_decision_with_its_propensity(alice):
    body = recommend(alice)
    decision = Decision.objects.get(pk=body["decision_id"])
    assert decision.strategy.name == body["strategy"]
    assert decision.propensity == pytest.approx(body["propensity"])
    assert decision.epsilon == pytest.approx(0.3)
    assert decision.state_key == body["state_key"]


def test_it_really_explores(alice):
    LearningProfile.objects.update_or_create(agent=alice, defaults={"exploration_rate": 1.0})
    learn(alice, "0.6,0.1,0.0,0.8,1.0", "adaptive-retry", 1.5)
    picks = [recommend(alice) for _ in range(40)]
    assert all(pick["explored"] for pick in picks)
    assert len({pick["strategy"] for pick in picks}) > 1
    assert all(pick["propensity"] == pytest.approx(0.25) for pick in picks)


def test_an_unseen_state_uses_the_nearest_visited_state(alice):
    no_exploration(alice)
    learn(alice, "0.6,0.2,0.0,0.8,1.0", "resource-optimization", 0.9)  # one step away
    learn(alice, "0.6,0.1,0.0,0.8,1.0", "adaptive-retry", 1.9, task_type="other-type")
    body = recommend(alice)
    assert body["strategy"] == "resource-optimization"
    assert "nearest visited state (0.6,0.2,0.0,0.8,1.0)" in body["reasoning"]
    assert Decision.objects.get(pk=body["decision_id"]).fallback == "nearest"


def test_then_the_applied_strategy_for_the_task_type(alice):
    no_exploration(alice)
    learn(alice, "0.1,0.9,0.9,0.1,0.1", "parallel-execution", 1.0)  # far away
    AppliedStrategy.objects.create(agent=alice, task_type="unit-tests",
                                   strategy=Strategy.objects.get(name="adaptive-retry"))
    body = recommend(alice)
    assert body["strategy"] == "adaptive-retry"
    assert "applied for this task type" in body["reasoning"]


def test_then_the_catalog_default(alice):
    no_exploration(alice)
    body = recommend(alice)
    assert body["strategy"] == Strategy.default().name == "sequential-execution"
    assert "catalog default" in body["reasoning"]
    assert body["confidence"] == 0.5 and body["expected_improvement"] == 0.0


def test_inactive_strategies_are_never_recommended(alice):
    LearningProfile.objects.update_or_create(agent=alice, defaults={"exploration_rate": 1.0})
    for strategy in Strategy.objects.exclude(name="adaptive-retry"):
        strategy.active = strategy.is_default = False
        strategy.save()
    assert {recommend(alice)["strategy"] for _ in range(10)} == {"adaptive-retry"}


def test_it_refuses_other_agents_paths(alice, bob):
    response = alice.client.post("agents/bob/recommendations", {"task": {"id": "x", "type": "t", "complexity": 0.1,
                                                                         "available_resources": 0.5}})
    assert response.status_code == 404
    assert not Decision.objects.exists()


@pytest.mark.parametrize("field,value", [("complexity", 1.5), ("complexity", None), ("available_resources", -0.1),
                                         ("previous_attempts", -1), ("type", "bad type"), ("id", "")])
def test_it_validates_the_task(alice, field, value):
    body = {"id": "t", "type": "unit", "complexity": 0.5, "available_resources": 0.5, field: value}
    response = alice.client.post("agents/alice/recommendations", {"task": body})
    assert response.status_code == 422
    assert response.json()["field"] == f"task.{field}"
    assert not Decision.objects.exists()
