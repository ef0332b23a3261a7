"""The other memory tables through the API: create, read, query, update."""

import json
import math

import pytest

from qefleet.memory.models import ConsensusProposal, GoapAction, GoapGoal, GoapPlan, SwarmSession
from qefleet.memory.schemas import MAX_COST

pytestmark = pytest.mark.django_db

SHA = "a" * 64


def test_events_are_posted_and_queried_by_type_source_and_time(alice, bob, dave):
    alice.client.post("events", {"type": "qe:training", "payload": {"reward": 1.2}})
    bob.client.post("events", {"type": "qe:pattern", "payload": {}})
    dave.client.post("events", {"type": "qe:training"})  # another swarm
    body = alice.client.get("events?type=qe:training").json()
    assert [(item["source"], item["payload"]) for item in body["items"]] == [("alice", {"reward": 1.2})]
    assert [item["type"] for item in alice.client.get("events?source=bob").json()["items"]] == ["qe:pattern"]
    assert alice.client.get("events?since=2999-01-01T00:00:00Z").json()["items"] == []
    assert len(alice.client.get("events?until=2999-01-01T00:00:00Z").json()["items"]) == 2


def test_events_page_newest_first(alice):
    for index in range(5):
        alice.client.post("events", {"type": "t", "payload": {"i": index}})
    first = alice.client.get("events?limit=3").json()
    second = alice.client.get(f"events?limit=3&cursor={first['next_cursor']}").json()
    order = [item["payload"]["i"] for item in first["items"] + second["items"]]
    assert order == [4, 3, 2, 1, 0] and second["next_cursor"] is None


def test_hints_are_read_by_prefix(alice, bob):
    alice.client.post("hints", {"key": "coverage/gap/auth", "value": {"file": "auth.py"}})
    alice.client.post("hints", {"key": "flaky/login", "value": 1})
    items = bob.client.get("hints?prefix=coverage/").json()["items"]
    assert [(item["key"], item["value"]) for item in items] == [("coverage/gap/auth", {"file": "auth.py"})]


def test_patterns_are_stored_per_owner_and_queried_by_confidence(alice, bob):
    first = alice.client.post("patterns", {"pattern": "retry-on-timeout", "confidence": 0.9, "access_level": "swarm"})
    assert first.status_code == 201
    again = alice.client.post("patterns", {"pattern": "retry-on-timeout", "confidence": 0.95, "access_level": "swarm"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert bob.client.post("patterns", {"pattern": "retry-on-timeout", "confidence": 0.4}).status_code == 201
    high = bob.client.get("patterns?min_confidence=0.8").json()["items"]
    assert [(item["owner"], item["confidence"]) for item in high] == [("alice", 0.95)]
    assert bob.client.get(f"patterns/{first.json()['id']}").json()["pattern"] == "retry-on-timeout"


def test_pattern_confidence_must_be_a_probability(alice):
    assert alice.client.post("patterns", {"pattern": "p", "confidence": 1.5}).status_code == 422


def test_workflows_checkpoint_and_resume(alice, bob):
    created = alice.client.post("workflows", {"name": "regression", "step": "collect", "checkpoint": {"done": 3}})
    workflow_id = created.json()["id"]
    updated = alice.client.patch(f"workflows/{workflow_id}", {"step": "run", "status": "running"})
    assert updated.json()["step"] == "run" and updated.json()["checkpoint"] == {"done": 3}
    assert [item["id"] for item in alice.client.get("workflows?status=running").json()["items"]] == [workflow_id]
    assert bob.client.get(f"workflows/{workflow_id}").status_code == 404
    assert bob.client.patch(f"workflows/{workflow_id}", {"step": "x"}).status_code == 404


def test_consensus_reaches_quorum_and_refuses_double_votes(alice, bob, carol):
    proposal_id = alice.client.post("consensus", {"decision": {"apply": "parallel"}, "quorum": 2}).json()["id"]
    assert bob.client.post(f"consensus/{proposal_id}/votes", {"vote": "approve"}).json()["status"] == "pending"
    double = bob.client.post(f"consensus/{proposal_id}/votes", {"vote": "approve"})
    assert double.status_code == 409
    decided = carol.client.post(f"consensus/{proposal_id}/votes", {"vote": "approve"}).json()
    assert (decided["status"], decided["approvals"]) == ("approved", 2)
    late = alice.client.post(f"consensus/{proposal_id}/votes", {"vote": "reject"})
    assert late.status_code == 409
    assert ConsensusProposal.objects.get().votes == {"bob": "approve", "carol": "approve"}


def test_consensus_can_be_rejected(alice, bob):
    proposal_id = alice.client.post("consensus", {"decision": {}, "quorum": 1}).json()["id"]
    body = bob.client.post(f"consensus/{proposal_id}/votes", {"vote": "reject"}).json()
    assert body["status"] == "rejected" and body["decided_at"] is not None
    assert [item["id"] for item in alice.client.get("consensus?status=rejected").json()["items"]] == [proposal_id]


def test_consensus_votes_need_read_access(alice, dave):
    proposal_id = alice.client.post("consensus", {"decision": {}, "quorum": 1}).json()["id"]
    assert dave.client.post(f"consensus/{proposal_id}/votes", {"vote": "approve"}).status_code == 404


def test_artifacts_are_queried_by_kind_and_tag(alice):
    alice.client.post("artifacts", {"kind": "code", "path": "tests/test_a.py", "sha256": SHA, "tags": ["unit"]})
    alice.client.post("artifacts", {"kind": "code", "path": "tests/test_b.py", "sha256": SHA, "tags": ["e2e"]})
    alice.client.post("artifacts", {"kind": "doc", "path": "README.md", "sha256": SHA, "tags": ["unit"]})
    items = alice.client.get("artifacts?kind=code&tag=unit").json()["items"]
    assert [item["path"] for item in items] == ["tests/test_a.py"]


def test_artifacts_need_a_sha256(alice):
    response = alice.client.post("artifacts", {"kind": "code", "path": "x", "sha256": "nope"})
    assert response.status_code == 422 and response.json()["field"] == "sha256"


def test_sessions_keep_checkpoints_and_resume(alice):
    session_id = alice.client.post("sessions", {"mode": "hive-mind", "state": {"step": 1}}).json()["id"]
    alice.client.post(f"sessions/{session_id}/checkpoints", {"checkpoint": {"step": 2}})
    body = alice.client.post(f"sessions/{session_id}/resume").json()
    assert [item["data"] for item in body["checkpoints"]] == [{"step": 2}]
    assert body["last_resumed"] is not None


def test_sessions_keep_only_the_newest_checkpoints(alice):
    session_id = alice.client.post("sessions", {}).json()["id"]
    for index in range(105):
        alice.client.post(f"sessions/{session_id}/checkpoints", {"checkpoint": {"i": index}})
    checkpoints = SwarmSession.objects.get().checkpoints
    assert len(checkpoints) == 100 and checkpoints[-1]["data"] == {"i": 104}


def test_goap_plans_sum_their_action_costs(alice, bob):
    goal_id = alice.client.post("goap/goals", {"name": "coverage 90%", "conditions": {"coverage": 0.9}}).json()["id"]
    first = alice.client.post("goap/actions", {"name": "generate", "cost": 2, "agent_type": "test-generator"})
    second = alice.client.post("goap/actions", {"name": "run", "cost": 1.5})
    sequence = [first.json()["id"], second.json()["id"]]
    plan = alice.client.post("goap/plans", {"goal_id": goal_id, "sequence": sequence}).json()
    assert plan["total_cost"] == 3.5
    assert alice.client.get(f"goap/plans/{plan['id']}").json()["sequence"] == sequence
    assert [a["name"] for a in alice.client.get("goap/actions?agent_type=test-generator").json()["items"]] == [
        "generate"
    ]
    # Bob cannot plan with alice's private goal or actions.
    assert bob.client.post("goap/plans", {"goal_id": goal_id, "sequence": sequence}).status_code == 404
    bob_goal = bob.client.post("goap/goals", {"name": "mine"}).json()["id"]
    response = bob.client.post("goap/plans", {"goal_id": bob_goal, "sequence": sequence})
    assert response.status_code == 400 and response.json()["field"] == "sequence"
    assert GoapPlan.objects.count() == 1


@pytest.mark.parametrize("path, body", [
    ("goap/actions", {"name": "huge", "cost": 1e308}),
    ("goap/goals", {"name": "huge", "cost": 1e308}),
])
def test_goap_costs_are_bounded(alice, path, body):
    response = alice.client.post(path, body)
    assert response.status_code == 422 and response.json()["field"] == "cost"
    assert not GoapAction.objects.exists() and not GoapGoal.objects.exists()


def test_a_plan_of_the_most_costly_actions_has_a_finite_total_cost(alice):
    """Two actions of cost 1e308 summed to Infinity, which JSON cannot carry."""
    goal_id = alice.client.post("goap/goals", {"name": "expensive"}).json()["id"]
    action = alice.client.post("goap/actions", {"name": "dear", "cost": MAX_COST}).json()["id"]
    response = alice.client.post("goap/plans", {"goal_id": goal_id, "sequence": [action] * 100})
    assert response.status_code == 201
    total = json.loads(alice.client.get(f"goap/plans/{response.json()['id']}").content)["total_cost"]
    assert math.isfinite(total) and total == pytest.approx(100 * MAX_COST)


def test_ooda_cycles_move_through_phases(alice):
    cycle_id = alice.client.post("ooda", {"observations": ["3 flaky tests"]}).json()["id"]
    alice.client.patch(f"ooda/{cycle_id}", {"phase": "decide", "decision": {"quarantine": 3}})
    body = alice.client.patch(f"ooda/{cycle_id}", {"phase": "act", "completed": True, "result": "ok"}).json()
    assert (body["phase"], body["completed"], body["result"]) == ("act", True, "ok")
    assert [c["id"] for c in alice.client.get("ooda?phase=act").json()["items"]] == [cycle_id]


def test_records_default_to_their_table_level(alice, bob):
    event = alice.client.post("events", {"type": "t"}).json()
    workflow = alice.client.post("workflows", {"name": "w"}).json()
    assert (event["access_level"], workflow["access_level"]) == ("swarm", "private")
    assert bob.client.get("events").json()["items"][0]["id"] == event["id"]


def test_system_level_records_are_for_system_agents(alice, root):
    assert alice.client.post("events", {"type": "t", "access_level": "system"}).status_code == 403
    assert root.client.post("events", {"type": "t", "access_level": "system"}).status_code == 201
    assert alice.client.get("events").json()["items"] == []
