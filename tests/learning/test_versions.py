import pytest
from django.db import transaction

from learning import versions
from learning.models import (
    AppliedStrategy,
    LearningProfile,
    LiveVersion,
    QEntry,
    Safeguard,
    StateVersion,
    Strategy,
    VersionReason,
)
from tests.learning.helpers import profile, recommend, run_task

pytestmark = pytest.mark.django_db


def test_it_captures_a_compressed_version_with_a_checksum(alice):
    for _ in range(5):
        run_task(alice)
    version = versions.capture(alice, VersionReason.ON_DEMAND)
    payload = versions.decode(version)
    assert version.number == 1 and version.task_count == 5
    assert version.q_entries == QEntry.objects.filter(agent=alice).count() == len(payload["state"]["q"])
    assert version.checksum == versions.checksum(versions.learned_state(alice, profile(alice)))
    assert len(payload["experiences"]) == 5 and payload["state"]["config"]["exploration_rate"] < 0.3
    # Kept beside the payload, so the report reads them without decoding it.
    assert version.patterns == len(payload["state"]["patterns"]) > 0
    assert version.exploration_rate == payload["state"]["config"]["exploration_rate"]
    assert version.size_bytes == len(bytes(version.payload))


def test_scheduled_captures_skip_an_unchanged_state(alice):
    run_task(alice)
    assert versions.capture(alice, VersionReason.CYCLE) is not None
    assert versions.capture(alice, VersionReason.CYCLE) is None
    assert versions.capture(alice, VersionReason.ON_DEMAND) is not None  # on demand always captures
    run_task(alice)
    assert versions.capture(alice, VersionReason.TASKS).number == 3


def test_every_100_tasks_a_version_is_taken_off_the_snapshot_tasks(alice):
    for _ in range(204):
        run_task(alice)
    assert StateVersion.objects.get(agent=alice).task_count == 105
    run_task(alice)
    taken = StateVersion.objects.filter(agent=alice).order_by("number")
    assert [(version.reason, version.task_count) for version in taken] == [(VersionReason.TASKS, 105),
                                                                         (VersionReason.TASKS, 205)]


def test_the_policy_version_names_the_live_version_and_updates_since(alice):
    assert recommend(alice)["policy_version"] is None
    for _ in range(3):
        run_task(alice)
    versions.capture(alice, VersionReason.ON_DEMAND)
    run_task(alice)
    run_task(alice)
    assert recommend(alice)["policy_version"] == "v1+2"


def test_a_restore_brings_the_state_back_exactly(alice):
    for _ in range(6):
        run_task(alice)
    AppliedStrategy.objects.create(agent=alice, task_type="unit-tests", strategy=Strategy.objects.get(name="adaptive-retry"))
    good = versions.capture(alice, VersionReason.ON_DEMAND)
    for _ in range(6):
        run_task(alice, success=False, complexity=0.1)
    AppliedStrategy.objects.all().delete()
    assert versions.checksum(versions.learned_state(alice, profile(alice))) != good.checksum
    with transaction.atomic():
        versions.restore(alice, good, profile(alice))
    assert versions.checksum(versions.learned_state(alice, profile(alice))) == good.checksum
    assert AppliedStrategy.objects.get(agent=alice).strategy.name == "adaptive-retry"
    assert profile(alice).exploration_rate == versions.decode(good)["state"]["config"]["exploration_rate"]
    assert profile(alice).policy_version == "v1+0"


def test_a_failed_restore_changes_nothing(alice):
    for _ in range(3):
        run_task(alice)
    version = versions.capture(alice, VersionReason.ON_DEMAND)
    run_task(alice)
    before = versions.checksum(versions.learned_state(alice, profile(alice)))
    StateVersion.objects.filter(pk=version.pk).update(checksum="0" * 64)
    version.refresh_from_db()
    with pytest.raises(versions.RestoreError):
        with transaction.atomic():
            versions.restore(alice, version, profile(alice))
    assert versions.checksum(versions.learned_state(alice, profile(alice))) == before


def test_the_timeline_records_what_was_live_when(alice):
    run_task(alice)
    first = versions.capture(alice, VersionReason.ON_DEMAND)
    run_task(alice)
    second = versions.capture(alice, VersionReason.ON_DEMAND)
    with transaction.atomic():
        versions.restore(alice, first, profile(alice))
    periods = list(LiveVersion.objects.filter(agent=alice).order_by("live_from", "pk"))
    assert [(p.version_id, p.cause) for p in periods] == [(first.pk, "captured"), (second.pk, "captured"),
                                                          (first.pk, "restored")]
    assert [p.live_until is None for p in periods] == [False, False, True]


def test_retention_keeps_48_plus_pinned_known_good_and_live(alice, monkeypatch):
    monkeypatch.setattr(StateVersion, "KEEP_LATEST", 3)
    run_task(alice)
    first = versions.capture(alice, VersionReason.ON_DEMAND)
    StateVersion.objects.filter(pk=first.pk).update(pinned=True)
    second = versions.capture(alice, VersionReason.ON_DEMAND)
    StateVersion.objects.filter(pk=second.pk).update(known_good=True)
    for _ in range(5):
        versions.capture(alice, VersionReason.ON_DEMAND)
    assert sorted(StateVersion.objects.values_list("number", flat=True)) == [1, 2, 5, 6, 7]


def test_retention_keeps_only_the_latest_known_good_ones(alice, monkeypatch):
    monkeypatch.setattr(StateVersion, "KEEP_LATEST", 2)
    monkeypatch.setattr(StateVersion, "KEEP_KNOWN_GOOD", 2)
    run_task(alice)
    for number in range(6):
        version = versions.capture(alice, VersionReason.ON_DEMAND)
        StateVersion.objects.filter(pk=version.pk).update(known_good=True)
        if number == 0:
            Safeguard.objects.update_or_create(agent=alice, defaults={"reference_version": version})
    versions.capture(alice, VersionReason.ON_DEMAND)
    # v7 and v6 are the latest, v6 and v5 the latest known good, v1 the reference.
    assert sorted(StateVersion.objects.values_list("number", flat=True)) == [1, 5, 6, 7]


def test_a_version_of_5000_q_entries_fits_in_300_kb(alice):
    strategies = list(Strategy.objects.all())
    QEntry.objects.bulk_create([
        QEntry(agent=alice, task_type=f"type-{i % 5}", state_key=f"0.{i % 10},0.{(i // 10) % 10},0.0,0.{(i // 100) % 10},1.0",
               strategy=strategies[(i // 1000) % 4], q_value=0.123456789 * (i % 17), visits=i % 50)
        for i in range(5000)
    ], ignore_conflicts=True)
    LearningProfile.objects.create(agent=alice)
    version = versions.capture(alice, VersionReason.ON_DEMAND)
    assert version.q_entries == QEntry.objects.filter(agent=alice).count()
    assert version.size_bytes <= 300_000


def test_versions_are_readable_through_the_memory_keys(alice, bob):
    run_task(alice)
    versions.capture(alice, VersionReason.ON_DEMAND)
    body = alice.client.get("memory/learning/phase2/learning/alice/versions/v1").json()["value"]
    assert body["version"] == "v1" and body["state"]["q"]
    keys = [item["key"] for item in alice.client.get("memory/learning?prefix=phase2/learning/alice/versions/").json()["items"]]
    assert keys == ["phase2/learning/alice/versions/v1"]
    assert bob.client.get("memory/learning/phase2/learning/alice/versions/v1").status_code == 404
    assert alice.client.get("memory/learning/phase2/learning/alice/versions/v9").status_code == 404


def test_the_slot_job_snapshots_and_captures(alice):
    from learning.jobs import every_slot

    for _ in range(3):
        run_task(alice)
    assert every_slot() == {"snapshots": 1, "versions": 1, "learning_judged": 0, "not_learning": 0,
                           "shadow_promoted": []}
    assert every_slot() == {"snapshots": 0, "versions": 0, "learning_judged": 0, "not_learning": 0,
                           "shadow_promoted": []}


def test_the_admin_lists_versions_and_pins_them(admin_client, alice):
    run_task(alice)
    version = versions.capture(alice, VersionReason.ON_DEMAND)
    assert admin_client.get("/admin/learning/stateversion/").status_code == 200
    page = admin_client.get(f"/admin/learning/stateversion/{version.pk}/change/")
    assert page.status_code == 200 and b"checksum" in page.content.lower()
    response = admin_client.post("/admin/learning/stateversion/",
                                 {"action": "pin", "_selected_action": [version.pk]})
    assert response.status_code == 302
    assert StateVersion.objects.get(pk=version.pk).pinned is True
    assert admin_client.get("/admin/learning/liveversion/").status_code == 200


def test_the_admin_captures_on_demand(admin_client, alice):
    run_task(alice)
    response = admin_client.post("/admin/learning/learningprofile/",
                                 {"action": "capture_version", "_selected_action": [profile(alice).pk]})
    assert response.status_code == 302
    assert StateVersion.objects.get(agent=alice).reason == VersionReason.ON_DEMAND


def test_related_lookups_leave_the_payload_until_it_is_read(alice):
    run_task(alice)
    version = versions.capture(alice, VersionReason.ON_DEMAND)

    live = profile(alice).live_version  # through the relation, as every task reads it

    assert live.pk == version.pk and live.get_deferred_fields() == {"payload"}
    assert versions.decode(live) == versions.decode(StateVersion.objects.get(pk=version.pk))
    assert LearningProfile.objects.with_live_version().get(agent=alice).live_version.get_deferred_fields() == {
        "payload"}
