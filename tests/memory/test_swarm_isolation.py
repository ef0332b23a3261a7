"""A team is a team of one swarm, and a system agent administers its own swarm.

Two fleets built by `register_demo_fleet` share team names (`core-testing`,
...) but not a swarm: nothing one fleet's agents write at the team level, and
nothing a system agent may do, reaches the other fleet. Agents without a team
are never each other's team.
"""

import pytest

from qefleet.memory.fleet import issue_token, register_demo_fleet
from qefleet.memory.models import AuditEvent, MemoryEntry
from tests.conftest import AgentClient, make_agent
from tests.learning.helpers import task

pytestmark = pytest.mark.django_db

SHA = "a" * 64

# table -> (create path, body, the PATCH body where the table has one)
TABLES = {
    "events": ("events", {"type": "t"}, None),
    "hints": ("hints", {"key": "coverage/gap", "value": 1}, None),
    "patterns": ("patterns", {"pattern": "retry", "confidence": 0.9}, None),
    "workflows": ("workflows", {"name": "w"}, {"step": "overwritten"}),
    "consensus": ("consensus", {"decision": {}, "quorum": 1}, None),
    "artifacts": ("artifacts", {"kind": "code", "path": "a.py", "sha256": SHA}, None),
    "sessions": ("sessions", {}, None),
    "goap/goals": ("goap/goals", {"name": "g"}, None),
    "goap/actions": ("goap/actions", {"name": "a", "cost": 1}, None),
    "ooda": ("ooda", {}, {"phase": "act"}),
}
LISTED = {"events", "hints", "patterns", "workflows", "consensus", "artifacts", "goap/actions", "ooda"}
READ_BY_ID = set(TABLES) - {"events", "hints"}


def fleet_agent(agent_id):
    from qefleet.memory.models import Agent

    agent = Agent.objects.get(agent_id=agent_id)
    _, token = issue_token(agent)
    agent.client = AgentClient(token)
    return agent


@pytest.fixture
def fleets(db):
    """The demo fleet in swarm `qe-fleet` and a prefixed one in `other-qe-fleet`."""
    register_demo_fleet()
    register_demo_fleet("other-")
    return {name: fleet_agent(name) for name in (
        "test-generator", "test-executor", "fleet-commander", "other-test-executor", "other-fleet-commander")}


@pytest.mark.parametrize("table", TABLES)
def test_it_keeps_a_team_record_from_the_same_team_name_in_another_swarm(fleets, table):
    path, body, patch = TABLES[table]
    created = fleets["test-generator"].client.post(path, {**body, "access_level": "team"})
    assert created.status_code == 201, created.content
    record = f"{path}/{created.json()['id']}"
    mate, outsider = fleets["test-executor"].client, fleets["other-test-executor"].client

    if table in READ_BY_ID:
        assert mate.get(record).status_code == 200
        assert outsider.get(record).status_code == 404
    if table in LISTED:
        assert created.json()["id"] in [item["id"] for item in mate.get(path).json()["items"]]
        assert created.json()["id"] not in [item["id"] for item in outsider.get(path).json()["items"]]
    if patch:
        assert outsider.patch(record, patch).status_code == 404
        assert mate.patch(record, patch).status_code == 200


def test_it_keeps_a_team_entry_from_the_same_team_name_in_another_swarm(fleets):
    key = "memory/shared/core-testing/plan"
    assert fleets["test-generator"].client.put(key, {"value": 1, "access_level": "team"}).status_code == 201
    outsider = fleets["other-test-executor"].client

    assert outsider.get(key).status_code == 404
    assert outsider.get(f"{key}?swarm=qe-fleet").status_code == 404
    assert outsider.get("memory/shared?prefix=core-testing/&swarm=qe-fleet").json()["items"] == []
    outsider.put(key, {"value": "its own"})  # in its own swarm's key space
    assert MemoryEntry.objects.get(swarm="qe-fleet").value == 1
    assert fleets["test-executor"].client.get(key).json()["value"] == 1


def test_agents_without_a_team_are_not_each_others_team(db):
    owner, other = make_agent("loner-a", "", "qe"), make_agent("loner-b", "", "qe")
    assert owner.client.put("memory/shared/mine", {"value": 1, "access_level": "team"}).status_code == 201
    workflow = owner.client.post("workflows", {"name": "w", "access_level": "team"}).json()["id"]

    assert other.client.get("memory/shared/mine").status_code == 404
    assert other.client.put("memory/shared/mine", {"value": 2}).status_code == 404
    assert other.client.get(f"workflows/{workflow}").status_code == 404
    assert other.client.patch(f"workflows/{workflow}", {"step": "x"}).status_code == 404


def test_agents_without_a_swarm_are_not_each_others_swarm(db):
    owner, other = make_agent("drifter-a", "core", ""), make_agent("drifter-b", "perf", "")
    assert owner.client.put("memory/shared/mine", {"value": 1, "access_level": "swarm"}).status_code == 201
    assert other.client.get("memory/shared/mine").status_code == 404


# --- system agents --------------------------------------------------------------------------------


def test_a_system_agent_administers_its_own_swarm(fleets):
    owner, commander = fleets["test-executor"], fleets["fleet-commander"]
    assert owner.client.put("memory/notes/mine", {"value": 1}).status_code == 201
    assert commander.client.get("memory/notes/mine").status_code == 200
    assert commander.client.get("agents/test-executor").status_code == 200
    assert commander.client.delete("memory/notes/mine").status_code == 204


def test_a_system_agent_cannot_touch_another_swarms_private_entries(fleets):
    owner, commander = fleets["other-test-executor"], fleets["fleet-commander"]
    key = "memory/notes/theirs"
    assert owner.client.put(key, {"value": 1}).status_code == 201

    # Reads name the other swarm; writes only ever reach the commander's own key space.
    assert commander.client.get(f"{key}?swarm=other-qe-fleet").status_code == 404
    assert commander.client.get("memory/notes?prefix=&swarm=other-qe-fleet").json()["items"] == []
    assert commander.client.delete(key).status_code == 404
    assert commander.client.put("acl/notes/theirs", {"grants": {}, "blocks": []}).status_code == 404
    assert MemoryEntry.objects.get().value == 1
    assert AuditEvent.objects.filter(actor="fleet-commander", action="access_denied").count() == 1


def test_a_system_agent_clears_only_its_own_swarms_entries(fleets):
    fleets["test-executor"].client.put("memory/scratch/ours", {"value": 1})
    fleets["other-test-executor"].client.put("memory/scratch/theirs", {"value": 1})
    assert fleets["fleet-commander"].client.delete("memory/scratch").json()["deleted"] == 1
    assert list(MemoryEntry.objects.values_list("key", flat=True)) == ["theirs"]


def test_a_system_agent_cannot_read_another_swarms_records(fleets):
    record = fleets["other-test-executor"].client.post("workflows", {"name": "w"}).json()["id"]
    commander = fleets["fleet-commander"].client
    assert commander.get(f"workflows/{record}").status_code == 404
    assert commander.patch(f"workflows/{record}", {"step": "x"}).status_code == 404
    assert commander.get("workflows").json()["items"] == []
    system_event = fleets["other-fleet-commander"].client.post("events", {"type": "t", "access_level": "system"})
    assert commander.get("events").json()["items"] == []
    assert system_event.status_code == 201


def test_a_system_agent_cannot_act_for_another_swarms_agents(fleets):
    commander = fleets["fleet-commander"].client
    assert commander.get("agents/other-test-executor").status_code == 404
    assert commander.post("agents/other-test-executor/recommendations", {"task": task()}).status_code == 404
    assert commander.get("agents/other-test-executor/learning").status_code == 404
    assert commander.get("memory/learning/phase2/learning/other-test-executor/config").status_code == 404
    assert commander.get("memory/learning?prefix=phase2/learning/other-test-executor/").json()["items"] == []
    created = commander.post("abtests", {"agent": "other-test-executor", "task_type": "unit",
                                         "control": "sequential-execution", "treatment": "parallel-execution"})
    assert created.status_code == 404
