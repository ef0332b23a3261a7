import builtins
from datetime import datetime, timedelta, timezone as tz

import pytest
import time_machine
from django.core.management import call_command

from qefleet.memory.models import ConsensusProposal, Event, Hint, MemoryEntry, Pattern
from qefleet.memory import ttl
from qefleet.memory.ttl import sweep_expired

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=tz.utc)


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def test_expiry_comes_from_the_server_clock(clock, alice):
    body = alice.client.put("memory/default/k", {"value": 1, "ttl_seconds": 60}).json()
    assert body["expires_at"] == "2026-11-01T12:01:00Z"


def test_an_entry_is_visible_until_its_last_second_and_gone_at_expiry(clock, alice):
    alice.client.put("memory/default/k", {"value": 1, "ttl_seconds": 60})
    clock.shift(timedelta(seconds=59))
    assert alice.client.get("memory/default/k").status_code == 200
    clock.shift(timedelta(seconds=1))
    assert alice.client.get("memory/default/k").status_code == 404
    assert alice.client.get("memory/default").json()["items"] == []
    assert MemoryEntry.with_expired.count() == 1  # invisible before any cleanup


def test_an_expired_key_can_be_written_afresh_by_anyone(clock, alice, bob):
    alice.client.put("memory/default/k", {"value": 1, "ttl_seconds": 10})
    clock.shift(timedelta(seconds=11))
    response = bob.client.put("memory/default/k", {"value": 2})
    assert response.status_code == 201
    assert response.json()["owner"] == "bob"


def test_ttl_zero_means_never(clock, alice):
    alice.client.put("memory/default/k", {"value": 1, "ttl_seconds": 60})
    assert alice.client.put("memory/default/k", {"value": 2, "ttl_seconds": 0}).json()["expires_at"] is None


@pytest.mark.parametrize(
    "path,body,model,days",
    [
        ("events", {"type": "qe:test"}, Event, 30),
        ("patterns", {"pattern": "p", "confidence": 0.9}, Pattern, 7),
        ("consensus", {"decision": {"do": "x"}, "quorum": 1}, ConsensusProposal, 7),
    ],
)
def test_tables_have_their_design_default_ttl(clock, alice, path, body, model, days):
    assert alice.client.post(path, body).status_code == 201
    assert model.objects.get().expires_at == T0 + timedelta(days=days)


def test_entries_and_hints_keep_forever_unless_told(clock, alice):
    alice.client.put("memory/default/k", {"value": 1})
    alice.client.post("hints", {"key": "h", "value": 1})
    assert MemoryEntry.objects.get().expires_at is None
    assert Hint.objects.get().expires_at is None


def test_expired_rows_vanish_from_every_query(clock, alice):
    alice.client.post("events", {"type": "t", "ttl_seconds": 5})
    alice.client.post("hints", {"key": "h", "value": 1, "ttl_seconds": 5})
    pattern_id = alice.client.post("patterns", {"pattern": "p", "confidence": 1, "ttl_seconds": 5}).json()["id"]
    proposal_id = alice.client.post("consensus", {"decision": {}, "quorum": 1, "ttl_seconds": 5}).json()["id"]
    clock.shift(timedelta(seconds=5))
    assert alice.client.get("events").json()["items"] == []
    assert alice.client.get("hints").json()["items"] == []
    assert alice.client.get("patterns").json()["items"] == []
    assert alice.client.get(f"patterns/{pattern_id}").status_code == 404
    assert alice.client.get(f"consensus/{proposal_id}").status_code == 404


def test_the_sweeper_deletes_only_expired_rows(clock, alice):
    alice.client.put("memory/default/old", {"value": 1, "ttl_seconds": 10})
    alice.client.put("memory/default/edge", {"value": 1, "ttl_seconds": 20})
    alice.client.put("memory/default/new", {"value": 1, "ttl_seconds": 30})
    alice.client.put("memory/default/forever", {"value": 1})
    alice.client.post("events", {"type": "t", "ttl_seconds": 10})
    clock.shift(timedelta(seconds=20))
    counts = sweep_expired(pause_ms=0)
    assert counts["memory_entries"] == 2 and counts["events"] == 1
    assert sorted(MemoryEntry.with_expired.values_list("key", flat=True)) == ["forever", "new"]


def test_the_sweeper_works_in_batches(clock, alice):
    for index in range(7):
        alice.client.post("events", {"type": "t", "ttl_seconds": 1})
    clock.shift(timedelta(seconds=2))
    assert sweep_expired(batch_size=3, pause_ms=0)["events"] == 7
    assert not Event.with_expired.exists()


def test_the_sweeper_keeps_a_row_renewed_between_its_select_and_its_delete(clock, alice, monkeypatch):
    alice.client.put("memory/default/renewed", {"value": 1, "ttl_seconds": 10})
    alice.client.put("memory/default/gone", {"value": 1, "ttl_seconds": 10})
    clock.shift(timedelta(seconds=10))

    def select_then_renew(rows):
        # The sweeper's batch select has run; the agent renews its entry now.
        selected = builtins.list(rows)
        MemoryEntry.with_expired.filter(key="renewed").update(expires_at=T0 + timedelta(hours=1))
        return selected

    monkeypatch.setattr(ttl, "list", select_then_renew, raising=False)
    assert ttl.delete_in_batches(MemoryEntry.with_expired.expired(), "expires_at", pause_ms=0) == 1
    assert list(MemoryEntry.objects.values_list("key", flat=True)) == ["renewed"]


def test_the_sweep_command_reports_counts(clock, alice, capsys):
    alice.client.post("hints", {"key": "h", "value": 1, "ttl_seconds": 1})
    clock.shift(timedelta(seconds=1))
    call_command("sweep_expired", "--pause-ms", "0")
    out = capsys.readouterr().out
    assert "hints: 1 deleted" in out and "total: 1 deleted" in out
