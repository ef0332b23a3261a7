import pytest

from qefleet.memory.models import MemoryEntry

pytestmark = pytest.mark.django_db


def test_it_round_trips_put_get_delete(alice):
    created = alice.client.put("memory/default/notes/today", {"value": {"a": [1, 2]}, "metadata": {"tag": "x"}})
    assert created.status_code == 201
    body = alice.client.get("memory/default/notes/today").json()
    assert body["value"] == {"a": [1, 2]}
    assert body["metadata"] == {"tag": "x"}
    assert (body["owner"], body["access_level"], body["team"], body["swarm"]) == ("alice", "private", "core", "qe")
    assert body["expires_at"] is None
    assert alice.client.delete("memory/default/notes/today").status_code == 204
    assert alice.client.get("memory/default/notes/today").status_code == 404
    assert not MemoryEntry.with_expired.exists()


def test_an_update_keeps_owner_level_team_and_swarm(alice, bob):
    alice.client.put("memory/default/k", {"value": 1, "access_level": "team"})
    response = bob.client.put("memory/default/k", {"value": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["value"] == 2
    assert (body["owner"], body["access_level"], body["version"]) == ("alice", "team", 2)


def test_a_writer_cannot_change_the_level_through_put(alice, bob):
    alice.client.put("memory/default/k", {"value": 1, "access_level": "team"})
    response = bob.client.put("memory/default/k", {"value": 2, "access_level": "public"})
    assert response.status_code == 403
    assert response.json()["field"] == "access_level"
    entry = MemoryEntry.objects.get(key="k")
    assert (entry.value, entry.access_level) == (1, "team")


def test_only_system_agents_create_system_level_entries(alice, root):
    response = alice.client.put("memory/default/k", {"value": 1, "access_level": "system"})
    assert response.status_code == 403
    assert not MemoryEntry.objects.exists()
    assert root.client.put("memory/default/k", {"value": 1, "access_level": "system"}).status_code == 201


@pytest.mark.parametrize("key", ["café/crème", "日本語/キー", "emoji/😀🚀", "family/👨‍👩‍👧", "a b/c", "x" * 512])
def test_it_round_trips_unicode_keys_exactly(alice, key):
    assert alice.client.put(f"memory/default/{key}", {"value": key}).status_code == 201
    body = alice.client.get(f"memory/default/{key}").json()
    assert body["key"] == key and body["value"] == key
    assert MemoryEntry.objects.get().key == key


def test_it_pages_a_prefix_query_with_a_cursor(alice):
    for index in range(7):
        alice.client.put(f"memory/default/runs/{index:02}", {"value": index})
    alice.client.put("memory/default/other", {"value": 0})
    seen, cursor = [], None
    while True:
        url = "memory/default?prefix=runs/&limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = alice.client.get(url).json()
        seen += [item["key"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"runs/{index:02}" for index in range(7)]


def test_a_query_skips_unreadable_entries_without_short_pages(alice, bob):
    for index in range(5):
        bob.client.put(f"memory/default/a{index}", {"value": index})  # private to bob
    for index in range(3):
        bob.client.put(f"memory/default/b{index}", {"value": index, "access_level": "team"})
    body = alice.client.get("memory/default?limit=2").json()
    assert [item["key"] for item in body["items"]] == ["b0", "b1"]
    assert body["next_cursor"] is not None


def test_partitions_are_separate(alice):
    alice.client.put("memory/one/k", {"value": 1})
    alice.client.put("memory/two/k", {"value": 2})
    assert alice.client.get("memory/one/k").json()["value"] == 1
    assert alice.client.get("memory/two/k").json()["value"] == 2


def test_clear_deletes_the_partition_for_system_agents(alice, root):
    alice.client.put("memory/scratch/k1", {"value": 1})
    alice.client.put("memory/keep/k1", {"value": 1})
    assert alice.client.delete("memory/scratch").status_code == 403
    response = root.client.delete("memory/scratch")
    assert response.json() == {"partition": "scratch", "deleted": 1}
    assert list(MemoryEntry.objects.values_list("partition", flat=True)) == ["keep"]
