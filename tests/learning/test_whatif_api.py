"""POST /api/v1/whatif: system agents ask what a policy would have scored."""

import pytest

from learning import versions
from learning.models import LearningProfile, VersionReason

from .offline_helpers import log_tasks, truth


def ask(client, **body):
    return client.post("whatif", body)


def test_a_system_agent_gets_an_estimate_with_its_interval(root, alice):
    log_tasks(alice, 800)
    response = ask(root.client, policy="fixed", agent="alice", task_type="integration-tests",
                   strategy="adaptive-retry")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["rows"] == 800
    success = body["success"]["doubly_robust"]
    assert success["low"] <= success["value"] <= success["high"]
    assert body["effective_samples"] > 0
    assert body["refused"] is None


def test_the_fixed_strategys_truth_is_inside_the_interval(root, alice):
    strategies = log_tasks(alice, 1000, seed=8)
    body = ask(root.client, policy="fixed", agent="alice", task_type="integration-tests",
               strategy=strategies[0].name).json()
    assert body["success"]["doubly_robust"]["low"] <= truth(0) <= body["success"]["doubly_robust"]["high"]


def test_a_refusal_is_an_answer_naming_its_reason(root, alice):
    log_tasks(alice, 300, only=(0, 1))
    body = ask(root.client, policy="fixed", agent="alice", task_type="integration-tests",
               strategy="resource-optimization").json()
    assert body["refused"]["reason"] == "no_overlap"
    assert body["success"] is None


def test_the_swarm_is_the_default_scope(root, alice, bob, dave):
    log_tasks(alice, 100)
    log_tasks(bob, 100, seed=1)
    log_tasks(dave, 100, seed=2)  # another swarm's
    body = ask(root.client, policy="fixed", task_type="integration-tests", strategy="parallel-execution").json()
    assert body["rows"] == 200


def test_a_version_is_evaluated_for_its_agent(root, alice):
    LearningProfile.objects.get_or_create(agent=alice)
    version = versions.capture(alice, VersionReason.ON_DEMAND)
    log_tasks(alice, 500)
    response = ask(root.client, policy="version", agent="alice", version=version.number)
    assert response.status_code == 200, response.content
    assert "v1" in response.json()["policy"]


def test_an_ordinary_agent_is_forbidden(alice):
    response = ask(alice.client, policy="fixed", agent="alice", task_type="integration-tests",
                   strategy="adaptive-retry")
    assert response.status_code == 403


def test_another_swarms_agent_is_not_found(root, dave):
    response = ask(root.client, policy="current", agent="dave", exploration_rate=0.1)
    assert response.status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"policy": "fixed", "strategy": "adaptive-retry"}, "task_type"),
    ({"policy": "fixed", "task_type": "integration-tests"}, "strategy"),
    ({"policy": "fixed", "task_type": "integration-tests", "strategy": "no-such"}, "strategy"),
    ({"policy": "version", "agent": "alice"}, "version"),
    ({"policy": "version", "agent": "alice", "version": 9}, "version"),
    ({"policy": "current", "agent": "alice"}, "exploration_rate"),
    ({"policy": "current", "exploration_rate": 0.1}, "agent"),
    ({"policy": "current", "agent": "alice", "exploration_rate": 1.5}, "exploration_rate"),
    ({"policy": "fixed", "task_type": "x", "strategy": "adaptive-retry", "days": 0}, "days"),
    ({"policy": "guess"}, "policy"),
    ({"policy": "fixed", "task_type": "x", "strategy": "adaptive-retry", "colour": "red"}, "colour"),
])
def test_bad_input_is_a_400_naming_the_field(root, alice, body, field):
    response = ask(root.client, **body)
    assert response.status_code in (400, 422), response.content
    assert response.json()["field"] == field
