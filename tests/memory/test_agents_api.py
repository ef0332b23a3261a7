import pytest

from qefleet.memory.models import Agent

pytestmark = pytest.mark.django_db


def test_it_returns_the_registry_record(alice):
    body = alice.client.get("agents/alice").json()
    assert body["agent_id"] == "alice"
    assert body["team"] == "core" and body["swarm"] == "qe"
    assert body["status"] == "active"
    assert body["is_system"] is False


def test_it_hides_other_agents(alice, bob):
    assert alice.client.get("agents/bob").status_code == 404
    assert alice.client.post("agents/bob/heartbeat").status_code == 404
    assert Agent.objects.get(agent_id="bob").last_heartbeat_at is None


def test_a_system_agent_may_act_for_others(root, bob):
    assert root.client.get("agents/bob").json()["agent_id"] == "bob"
    assert root.client.post("agents/bob/heartbeat").status_code == 200
    assert Agent.objects.get(agent_id="bob").last_heartbeat_at is not None


def test_it_answers_404_for_unknown_agents_even_to_system_agents(root):
    assert root.client.get("agents/nobody").status_code == 404


def test_heartbeat_records_time_and_status(alice):
    response = alice.client.post("agents/alice/heartbeat", {"status": "idle"})
    assert response.status_code == 200
    assert response.json()["status"] == "idle"
    alice.refresh_from_db()
    assert alice.status == "idle" and alice.last_heartbeat_at is not None


def test_heartbeat_without_a_body_keeps_the_status(alice):
    assert alice.client.post("agents/alice/heartbeat").json()["status"] == "active"


def test_heartbeat_rejects_an_unknown_status(alice):
    response = alice.client.post("agents/alice/heartbeat", {"status": "terminated"})
    assert response.status_code == 422
    assert response.json()["field"] == "status"
    alice.refresh_from_db()
    assert alice.status == "active"
