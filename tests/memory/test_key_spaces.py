"""Each swarm has a key space of its own, and agent ids cannot be probed
across swarms: an outsider can neither squat a key another swarm uses nor
learn that it exists, nor learn which agent ids exist in another swarm."""

import pytest

from qefleet.memory.models import MemoryEntry

pytestmark = pytest.mark.django_db

KEY = "memory/coordination/shared/leader"


def test_an_outsider_cannot_squat_a_key_another_swarm_uses(alice, bob, dave):
    assert dave.client.put(KEY, {"value": "dave"}).status_code == 201  # dave is of swarm `far`

    assert alice.client.get(KEY).status_code == 404
    assert alice.client.put(KEY, {"value": "alice", "access_level": "swarm"}).status_code == 201
    assert bob.client.get(KEY).json()["value"] == "alice"
    assert dave.client.get(KEY).json()["value"] == "dave"
    assert sorted(MemoryEntry.objects.values_list("swarm", "value")) == [("far", "dave"), ("qe", "alice")]


def test_a_put_does_not_tell_an_outsider_that_a_key_exists(alice, dave):
    alice.client.put(KEY, {"value": 1})
    assert dave.client.put(KEY, {"value": 2}).status_code == 201
    assert dave.client.delete(KEY).status_code == 204
    assert dave.client.delete(KEY).status_code == 404
    assert MemoryEntry.objects.get().value == 1


def test_public_entries_are_read_by_naming_their_swarm(alice, dave):
    alice.client.put(KEY, {"value": 1, "access_level": "public"})
    assert dave.client.get(KEY).status_code == 404
    assert dave.client.get(f"{KEY}?swarm=qe").json()["value"] == 1
    assert [item["key"] for item in dave.client.get("memory/coordination?swarm=qe").json()["items"]] == [
        "shared/leader"]
    assert dave.client.get(f"{KEY}?swarm=bad%00swarm").status_code == 400


def test_acl_grants_answer_alike_for_missing_agents_and_other_swarms(alice, bob, dave):
    alice.client.put(KEY, {"value": 1})
    acl = "acl/coordination/shared/leader"
    missing = alice.client.put(acl, {"grants": {"nobody": ["read"]}, "blocks": []})
    elsewhere = alice.client.put(acl, {"grants": {"dave": ["read"]}, "blocks": []})
    assert missing.status_code == elsewhere.status_code == 400
    assert missing.json()["message"].replace("nobody", "X") == elsewhere.json()["message"].replace("dave", "X")
    assert alice.client.put(acl, {"grants": {}, "blocks": [], "owner": "dave"}).status_code == 400
    assert alice.client.put(acl, {"grants": {"bob": ["read"]}, "blocks": []}).status_code == 200


def test_acl_grants_on_a_missing_key_answer_404_whatever_agents_they_name(dave):
    for agent_id in ("alice", "nobody"):
        response = dave.client.put("acl/coordination/no/such/key", {"grants": {agent_id: ["read"]}, "blocks": []})
        assert response.status_code == 404
