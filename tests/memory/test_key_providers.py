"""Key providers serve part of the key space from another app's own data."""

import pytest

from qefleet.memory import providers
from qefleet.memory.models import MemoryEntry

pytestmark = pytest.mark.django_db


class ConfigProvider(providers.KeyProvider):
    """Serves phase2/learning/{agent}/config from a dict; validates writes."""

    partition = "learning"
    prefix = "phase2/learning/"

    def __init__(self):
        self.data = {"phase2/learning/alice/config": {"learning_rate": 0.1}}

    def read(self, key):
        return self.data[key]

    def is_writable(self, key):
        return key.endswith("/config")

    def write(self, key, value):
        if not isinstance(value, dict) or not 0 < value.get("learning_rate", 0) <= 1:
            raise providers.ProviderError("learning_rate must be in (0, 1].", "value.learning_rate")
        self.data[key] = value
        return value

    def keys(self, prefix, after, limit):
        return sorted(key for key in self.data if key.startswith(prefix) and key > after)[:limit]


@pytest.fixture
def provider():
    # register() replaces the app's own provider for the same prefix (the
    # learning app serves phase2/learning/); put back exactly what was there.
    saved = list(providers._registry)
    instance = ConfigProvider()
    providers.register(instance)
    yield instance
    providers._registry[:] = saved


def test_it_reads_a_provided_key(provider, alice):
    body = alice.client.get("memory/learning/phase2/learning/alice/config").json()
    assert body["value"] == {"learning_rate": 0.1}
    assert (body["owner"], body["access_level"]) == ("alice", "private")


def test_it_applies_the_policy_to_provided_keys(provider, alice, bob, root):
    assert bob.client.get("memory/learning/phase2/learning/alice/config").status_code == 404
    assert root.client.get("memory/learning/phase2/learning/alice/config").status_code == 200


def test_it_validates_writes_through_the_provider(provider, alice):
    response = alice.client.put("memory/learning/phase2/learning/alice/config", {"value": {"learning_rate": 5}})
    assert response.status_code == 400
    assert response.json()["field"] == "value.learning_rate"
    assert provider.data["phase2/learning/alice/config"] == {"learning_rate": 0.1}
    response = alice.client.put("memory/learning/phase2/learning/alice/config", {"value": {"learning_rate": 0.2}})
    assert response.status_code == 200
    assert provider.data["phase2/learning/alice/config"] == {"learning_rate": 0.2}
    assert not MemoryEntry.objects.exists()


def test_read_only_keys_refuse_writes_and_deletes(provider, alice):
    provider.data["phase2/learning/alice/state"] = {"q": 1}
    assert alice.client.put("memory/learning/phase2/learning/alice/state", {"value": {}}).status_code == 403
    assert alice.client.delete("memory/learning/phase2/learning/alice/state").status_code == 403
    assert provider.data["phase2/learning/alice/state"] == {"q": 1}


def test_a_missing_provided_key_is_404(provider, alice):
    assert alice.client.get("memory/learning/phase2/learning/alice/nothing").status_code == 404
    assert alice.client.get("memory/learning/phase2/learning/nobody/config").status_code == 404


def test_queries_merge_provided_and_stored_keys(provider, alice, bob):
    alice.client.put("memory/learning/phase2/notes", {"value": 1})
    provider.data["phase2/learning/bob/config"] = {"learning_rate": 0.3}
    keys = [item["key"] for item in alice.client.get("memory/learning?prefix=phase2/").json()["items"]]
    assert keys == ["phase2/learning/alice/config", "phase2/notes"]


def test_keys_outside_the_prefix_are_stored_normally(provider, alice):
    assert alice.client.put("memory/learning/other/key", {"value": 1}).status_code == 201
    assert MemoryEntry.objects.filter(key="other/key").exists()


def test_a_query_reads_past_provided_keys_it_may_not_read(provider, alice, bob):
    # Alice's keys sort before Bob's; Bob's pages hold his own keys, full, then the rest.
    provider.data = {f"phase2/learning/alice/k{index:03d}": index for index in range(250)}
    provider.data.update({f"phase2/learning/bob/k{index}": index for index in range(3)})
    first = bob.client.get("memory/learning?prefix=phase2/learning/&limit=2").json()
    assert [item["key"] for item in first["items"]] == ["phase2/learning/bob/k0", "phase2/learning/bob/k1"]
    second = bob.client.get(f"memory/learning?prefix=phase2/learning/&limit=2&cursor={first['next_cursor']}").json()
    assert [item["key"] for item in second["items"]] == ["phase2/learning/bob/k2"]
    assert second["next_cursor"] is None
