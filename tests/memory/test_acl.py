import pytest

from qefleet.memory.models import MemoryACL, MemoryEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(alice, bob, carol, dave, root):
    alice.client.put("memory/default/doc", {"value": 1, "access_level": "team"})
    return "acl/default/doc"


def acl(entry_path, client):
    return client.get(entry_path).json()


def test_the_owner_grants_and_the_grantee_gains_access(entry, alice, carol):
    assert carol.client.get("memory/default/doc").status_code == 404
    response = alice.client.put(entry, {"grants": {"carol": ["read"]}, "blocks": []})
    assert response.status_code == 200
    assert response.json()["grants"] == {"carol": ["read"]}
    assert carol.client.get("memory/default/doc").status_code == 200
    assert carol.client.put("memory/default/doc", {"value": 2}).status_code == 403


def test_a_block_wins_over_team_membership_and_grants(entry, alice, bob):
    alice.client.put(entry, {"grants": {"bob": ["read", "write"]}, "blocks": ["bob"]})
    assert bob.client.get("memory/default/doc").status_code == 404
    assert bob.client.put("memory/default/doc", {"value": 9}).status_code == 404


def test_a_team_member_may_share_only_what_it_holds(entry, bob):
    assert bob.client.put(entry, {"grants": {"carol": ["read"]}, "blocks": []}).status_code == 200
    response = bob.client.put(entry, {"grants": {"carol": ["read", "delete"]}, "blocks": []})
    assert response.status_code == 403
    assert MemoryACL.objects.get().granted_permissions == {"carol": ["read"]}


def test_a_team_member_cannot_revoke_block_or_change_the_level(entry, alice, bob):
    alice.client.put(entry, {"grants": {"carol": ["read"]}, "blocks": []})
    for body in (
        {"grants": {}, "blocks": []},
        {"grants": {"carol": ["read"]}, "blocks": ["carol"]},
        {"grants": {"carol": ["read"]}, "blocks": [], "access_level": "public"},
        {"grants": {"carol": ["read"]}, "blocks": [], "owner": "bob"},
    ):
        assert bob.client.put(entry, body).status_code == 403
    entry_row = MemoryEntry.objects.get()
    assert (entry_row.owner_id, entry_row.access_level) == ("alice", "team")
    assert MemoryACL.objects.get().blocked_agents == []


def test_the_owner_changes_level_and_hands_over_ownership(entry, alice, bob):
    assert alice.client.put(entry, {"grants": {}, "blocks": [], "access_level": "private"}).status_code == 200
    assert bob.client.get("memory/default/doc").status_code == 404
    response = alice.client.put(entry, {"grants": {}, "blocks": [], "owner": "bob"})
    assert response.json()["owner"] == "bob"
    assert alice.client.get("memory/default/doc").status_code == 404
    assert bob.client.get("memory/default/doc").status_code == 200


def test_only_system_agents_move_entries_to_the_system_level(entry, alice, root):
    assert alice.client.put(entry, {"grants": {}, "blocks": [], "access_level": "system"}).status_code == 403
    assert root.client.put(entry, {"grants": {}, "blocks": [], "access_level": "system"}).status_code == 200
    assert alice.client.get("memory/default/doc").status_code == 404
    assert root.client.get("memory/default/doc").status_code == 200


def test_it_rejects_unknown_agents_and_permissions(entry, alice):
    response = alice.client.put(entry, {"grants": {"ghost": ["read"]}, "blocks": []})
    assert response.status_code == 400 and response.json()["field"] == "grants"
    response = alice.client.put(entry, {"grants": {"bob": ["admin"]}, "blocks": []})
    assert response.status_code == 422
    response = alice.client.put(entry, {"grants": {}, "blocks": ["ghost"]})
    assert response.status_code == 400 and response.json()["field"] == "blocks"
    assert not MemoryACL.objects.exists()


def test_reading_the_acl_needs_share(entry, alice, carol):
    assert acl(entry, alice.client)["grants"] == {}
    assert carol.client.get(entry).status_code == 404


def test_deleting_an_entry_deletes_its_acl(entry, alice):
    alice.client.put(entry, {"grants": {"dave": ["read"]}, "blocks": []})
    alice.client.delete("memory/default/doc")
    assert not MemoryACL.objects.exists()
