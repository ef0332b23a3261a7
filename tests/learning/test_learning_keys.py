"""The design's phase2/learning/{agentId}/... keys through the memory API
(docs/ARCHITECTURE.md, "Memory keys")."""

import pytest

from learning.models import AppliedStrategy, FailurePattern, LearningProfile, Snapshot, Strategy
from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db

BASE = "memory/learning/phase2/learning/alice"


def test_config_is_served_and_validated_on_write(alice):
    assert alice.client.get(f"{BASE}/config").json()["value"]["learning_rate"] == 0.1
    config = alice.client.get(f"{BASE}/config").json()["value"]
    response = alice.client.put(f"{BASE}/config", {"value": {**config, "learning_rate": 0.2}})
    assert response.status_code == 200
    assert LearningProfile.objects.get(agent=alice).learning_rate == 0.2
    bad = alice.client.put(f"{BASE}/config", {"value": {**config, "discount_factor": 2}})
    assert bad.status_code == 400 and bad.json()["field"] == "value.discount_factor"
    missing = dict(config)
    del missing["exploration_decay"]
    bad = alice.client.put(f"{BASE}/config", {"value": missing})
    assert bad.status_code == 400 and bad.json()["field"] == "value.exploration_decay"
    assert LearningProfile.objects.get(agent=alice).discount_factor == 0.95


def test_a_new_config_is_used_from_the_next_task(alice):
    config = alice.client.get(f"{BASE}/config").json()["value"]
    alice.client.put(f"{BASE}/config", {"value": {**config, "exploration_rate": 0.0, "min_exploration_rate": 0.0}})
    _, body = run_task(alice)
    assert body["exploration_rate"] == 0.0


def test_state_holds_q_table_experiences_patterns_and_config(alice):
    decision, _ = run_task(alice)
    state = alice.client.get(f"{BASE}/state").json()["value"]
    assert state["q_table"]["unit-tests"][decision["state_key"]][decision["strategy"]]["visits"] == 1
    assert state["experiences"][0]["action"] == decision["action_key"]
    assert state["patterns"][0]["pattern"] == f"unit-tests:{decision['strategy']}"
    assert state["config"]["learning_rate"] == 0.1 and state["tasks"] == 1


def test_baseline_improvement_snapshots_and_failures(alice):
    LearningProfile.objects.create(agent=alice, baseline_window=10)
    assert alice.client.get(f"{BASE}/baseline").status_code == 404
    for index in range(10):
        run_task(alice, success=index % 3 != 0)
    assert alice.client.get(f"{BASE}/baseline").json()["value"]["window"] == 10
    assert alice.client.get(f"{BASE}/improvement").json()["value"]["target"] == 0.2
    snapshot = Snapshot.objects.get()
    assert alice.client.get(f"{BASE}/snapshots/{snapshot.pk:010d}").json()["value"]["tasks"] == 10
    failure = FailurePattern.objects.get()
    assert alice.client.get(f"{BASE}/failure-patterns/{failure.pk}").json()["value"]["failure_class"] == "other"
    keys = [item["key"] for item in alice.client.get("memory/learning?prefix=phase2/learning/alice/").json()["items"]]
    assert keys == [f"phase2/learning/alice/{name}" for name in
                    ("baseline", "config", f"failure-patterns/{failure.pk}", "improvement",
                     f"snapshots/{snapshot.pk:010d}", "state")]


def test_the_keys_are_private_to_the_agent_and_system_agents(alice, bob, root):
    assert bob.client.get(f"{BASE}/config").status_code == 404
    assert bob.client.put(f"{BASE}/config", {"value": {}}).status_code == 404
    assert root.client.get(f"{BASE}/state").status_code == 200


def test_read_only_keys_refuse_writes(alice):
    assert alice.client.put(f"{BASE}/state", {"value": {}}).status_code == 403


def test_other_keys_under_the_prefix_are_ordinary_entries(alice):
    assert alice.client.put(f"{BASE}/notes", {"value": "mine"}).status_code == 201
    assert alice.client.get(f"{BASE}/notes").json()["value"] == "mine"


def test_the_learning_status_endpoint(alice, root):
    AppliedStrategy.objects.create(agent=alice, task_type="unit-tests", strategy=Strategy.objects.get(name="adaptive-retry"))
    run_task(alice)
    body = alice.client.get("agents/alice/learning").json()
    assert body["enabled"] is True and body["tasks"] == 1 and body["q_entries"] == 1 and body["patterns"] == 1
    assert body["exploration_rate"] == pytest.approx(0.2985)
    assert body["baseline"] is None and body["improvement"] is None
    assert body["applied_strategies"] == [{"task_type": "unit-tests", "strategy": "adaptive-retry",
                                           "source": "operator"}]
    assert root.client.get("agents/alice/learning").status_code == 200


@pytest.mark.parametrize("key", ["versions/v\u00b2", "snapshots/\u00b2", "failure-patterns/\u00b2", "abtests/\u00b2",
                                 "cycles/\u00b2", "snapshots/\u0667"])
def test_a_key_whose_number_is_not_ascii_digits_is_not_found(alice, key):
    run_task(alice)
    assert alice.client.get(f"{BASE}/{key}").status_code == 404


def test_a_listing_cursor_past_a_snapshot_key_that_is_no_number_lists_the_keys_after_it(alice):
    run_task(alice)
    # base64 of "phase2/learning/alice/snapshots/²": a cursor this server never issued, still a key to list after
    cursor = "cGhhc2UyL2xlYXJuaW5nL2FsaWNlL3NuYXBzaG90cy_Csg"
    response = alice.client.get(f"memory/learning?prefix=phase2/learning/&cursor={cursor}")
    assert response.status_code == 200
    assert all(item["key"] > "phase2/learning/alice/snapshots/\u00b2" for item in response.json()["items"])
