"""The A/B test API: system agents create and read any test; an agent reads
its own; bad input is a 4xx naming the field and changes nothing."""

import pytest

from learning.models import ABTest, ABTestState
from qefleet.memory.models import AuditEvent

pytestmark = pytest.mark.django_db

BODY = {"agent": "alice", "task_type": "unit-tests", "control": "sequential-execution",
        "treatment": "parallel-execution"}


def test_a_system_agent_creates_a_running_test(root, alice):
    response = root.client.post("abtests", {**BODY, "mde": 0.2, "hypothesis": "parallel is faster"})
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "running" and body["source"] == "api" and body["created_by"] == "root"
    assert body["horizon"] >= 100
    assert [arm["role"] for arm in body["arms"]] == ["control", "treatment"]
    assert [step["to_state"] for step in body["transitions"]] == ["draft", "running"]


def test_it_can_create_a_draft(root, alice):
    assert root.client.post("abtests", {**BODY, "start": False}).json()["state"] == "draft"


def test_other_agents_may_not_create_tests(alice):
    response = alice.client.post("abtests", BODY)
    assert response.status_code == 403
    assert not ABTest.objects.exists()
    denial = AuditEvent.objects.get(action="access_denied")
    assert (denial.actor, denial.target, denial.detail["operation"]) == ("alice", "abtests", "create")


@pytest.mark.parametrize("field,value,status", [
    ("control", "no-such-strategy", 400), ("treatment", "sequential-execution", 400), ("mde", 1.5, 422),
    ("control_weight", 0, 422), ("task_type", "bad type", 422), ("agent", "nobody", 404),
])
def test_it_validates_the_test(root, alice, field, value, status):
    response = root.client.post("abtests", {**BODY, field: value})
    assert response.status_code == status
    if status != 404:
        assert response.json()["field"] == field
    assert not ABTest.objects.exists()


@pytest.mark.parametrize("field, value", [
    ("mde", 1e-300),  # mde squared is 0: the horizon divided by it
    ("mde", 1e-7), ("power", 0.9999999999999999),  # a horizon of 5e15 tasks: the test never ends
    ("mde", 0.6),  # neither 0.5 + 0.6 nor 0.5 - 0.6 is a success rate
    ("power", 0.01), ("control_weight", 1e-300), ("control_weight", 0.999999),
])
def test_it_refuses_a_design_no_test_can_use(root, alice, field, value):
    response = root.client.post("abtests", {**BODY, field: value})
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert not ABTest.objects.exists()


def test_the_largest_design_it_accepts_ends_within_a_bounded_horizon(root, alice):
    response = root.client.post("abtests", {**BODY, "mde": 0.01, "power": 0.99})
    assert response.status_code == 201
    assert 90_000 < response.json()["horizon"] < 100_000


def test_one_open_test_per_agent_and_task_type(root, alice):
    root.client.post("abtests", BODY)
    response = root.client.post("abtests", {**BODY, "treatment": "adaptive-retry"})
    assert response.status_code == 409 and response.json()["field"] == "task_type"
    assert ABTest.objects.count() == 1


def test_an_agent_reads_its_own_tests_only(root, alice, bob):
    test_id = root.client.post("abtests", BODY).json()["id"]
    assert alice.client.get(f"abtests/{test_id}").status_code == 200
    assert bob.client.get(f"abtests/{test_id}").status_code == 404
    assert bob.client.get("abtests").json()["items"] == []
    denial = AuditEvent.objects.get(action="access_denied")
    assert (denial.actor, denial.target) == ("bob", f"abtest:{test_id}")
    assert bob.client.get(f"abtests/{test_id + 1}").status_code == 404  # no such test: nothing to deny
    assert AuditEvent.objects.filter(action="access_denied").count() == 1


def test_the_list_filters_by_agent_and_state_and_pages(root, alice, bob):
    for agent in ("alice", "bob"):
        for task_type in ("a", "b"):
            root.client.post("abtests", {**BODY, "agent": agent, "task_type": task_type})
    ABTest.objects.filter(agent__agent_id="bob", task_type="a").update(state=ABTestState.ABORTED)
    assert len(root.client.get("abtests?agent=alice").json()["items"]) == 2
    assert [item["agent"] for item in root.client.get("abtests?state=aborted").json()["items"]] == ["bob"]
    first = root.client.get("abtests?limit=3").json()
    assert len(first["items"]) == 3 and first["next_before"] is not None
    rest = root.client.get(f"abtests?limit=3&before={first['next_before']}").json()
    assert len(rest["items"]) == 1 and rest["next_before"] is None
    assert root.client.get("abtests?state=nonsense").status_code == 422


def test_tests_are_readable_as_memory_keys(root, alice):
    test_id = root.client.post("abtests", BODY).json()["id"]
    response = alice.client.get(f"memory/learning/phase2/learning/alice/abtests/{test_id}")
    assert response.status_code == 200 and response.json()["value"]["state"] == "running"
