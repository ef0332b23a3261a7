"""Memory entries, hints and events through the client, read back from the server."""

import pytest
from qefleet_client import ApiError


def test_memory_entries_put_get_query_delete(make_client):
    client = make_client("py-memory")
    written = client.memory_put(
        "notes", "runs/flaky", {"tests": ["test_login"]}, ttl_seconds=600, metadata={"why": "client test"}
    )
    assert (written.owner, written.version) == ("py-memory", 1)
    assert client.memory_get("notes", "runs/flaky").value == {"tests": ["test_login"]}
    page = client.memory_query("notes", prefix="runs/")
    assert [entry.key for entry in page.items] == ["runs/flaky"] and page.next_cursor is None
    client.memory_delete("notes", "runs/flaky")
    with pytest.raises(ApiError) as missing:
        client.memory_get("notes", "runs/flaky")
    assert missing.value.status == 404


def test_hints_and_events_round_trip(server, make_client):
    client = make_client("py-memory")
    hint = client.add_hint("suite/slow", {"seconds": 42}, access_level="swarm")
    assert [h.id for h in client.hints(prefix="suite/").items] == [hint.id]
    event = client.publish_event("suite.finished", {"passed": 10})
    listed = client.events(type="suite.finished").items
    assert [e.id for e in listed] == [event.id] and listed[0].payload == {"passed": 10}
    assert server.count("events", id=event.id, owner="py-memory") == 1


def test_a_refused_request_names_the_field(make_client):
    with pytest.raises(ApiError) as refused:
        make_client("py-memory").publish_event("not a valid type!")
    assert refused.value.status == 422 and refused.value.field == "type"
