"""qefleet.memory.rows reads and writes the rows the ORM would, on the
database the suite runs on (SQLite, or PostgreSQL in CI's second run)."""

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_init
from django.utils import timezone

from learning.models import Decision, Execution, LearnedPattern, LearningProfile, QEntry, StateVersion
from qefleet.memory import rows
from qefleet.memory.models import Agent, Event, Pattern
from tests.learning.helpers import strategy


def execution(alice, key, **overrides):
    fields = dict(agent=alice, idempotency_key=key, request_digest="d" * 64, sequence=7, task_id="t-1",
                  task_type="unit-tests", state_key="0.5,0.1,0.0,0.9,1.0", next_state_key="0.5,0.1,0.1,0.8,1.0",
                  strategy=strategy(), success=False, execution_time_ms=1234, error_count=2,
                  failure_classes="timeout,network", coverage=None, satisfaction=0.25, efficiency=None,
                  reward=-0.75, previous_q=0.125, q_value=0.0375,
                  response={"patterns": [{"key": "unit-tests:x", "rate": 0.5}], "rolled_back": False, "note": "é"})
    fields.update(overrides)
    return Execution(**fields)


def stored(model, pk):
    return model.objects.filter(pk=pk).values().get()


def test_it_inserts_what_save_stores(alice):
    by_orm = execution(alice, "orm")
    by_orm.save()
    by_rows = rows.insert(execution(alice, "rows"))

    assert isinstance(by_rows.pk, int) and by_rows.pk != by_orm.pk
    assert not by_rows._state.adding
    orm_row, rows_row = stored(Execution, by_orm.pk), stored(Execution, by_rows.pk)
    differing = {name for name in orm_row if orm_row[name] != rows_row[name]}
    assert differing == {"id", "idempotency_key", "created_at"}
    assert rows_row["response"]["note"] == "é" and rows_row["success"] is False


def test_it_inserts_a_given_uuid_key(alice):
    decision = rows.insert(Decision(agent=alice, task_id="t-1", task_type="unit-tests", state_key="k",
                                    strategy=strategy(), explored=True, propensity=0.25, epsilon=0.3, q_value=0.5))

    assert isinstance(decision.pk, uuid.UUID)
    assert Decision.objects.get(pk=decision.pk).explored is True


def test_it_applies_auto_now_fields(alice):
    before = timezone.now()
    entry = rows.insert(QEntry(agent=alice, task_type="unit-tests", state_key="k", strategy=strategy()))
    pattern = rows.insert(LearnedPattern(agent=alice, task_type="unit-tests", strategy=strategy()))

    assert QEntry.objects.get(pk=entry.pk).updated_at >= before
    assert LearnedPattern.objects.get(pk=pattern.pk).created_at >= before


def test_it_updates_only_the_named_fields(alice):
    entry = QEntry.objects.create(agent=alice, task_type="unit-tests", state_key="k", strategy=strategy(),
                                  q_value=0.5, visits=3)
    stale = QEntry.objects.get(pk=entry.pk)
    QEntry.objects.filter(pk=entry.pk).update(visits=10)
    stale.q_value, stale.visits = 0.75, 4

    assert rows.update(stale, ("q_value",)) == 1
    assert (QEntry.objects.values_list("q_value", "visits").get(pk=entry.pk)) == (0.75, 10)


def test_it_updates_auto_now_fields_it_is_told_to(alice):
    entry = QEntry.objects.create(agent=alice, task_type="unit-tests", state_key="k", strategy=strategy())
    QEntry.objects.filter(pk=entry.pk).update(updated_at=timezone.now() - timedelta(days=1))
    entry.refresh_from_db()
    old = entry.updated_at

    rows.update(entry, ("q_value", "updated_at"))

    assert QEntry.objects.get(pk=entry.pk).updated_at > old


def test_it_counts_no_row_updated_for_a_deleted_one(alice):
    entry = QEntry.objects.create(agent=alice, task_type="unit-tests", state_key="k", strategy=strategy())
    QEntry.objects.filter(pk=entry.pk).delete()

    assert rows.update(entry, ("q_value",)) == 0


def test_it_raises_djangos_integrity_error(alice):
    QEntry.objects.create(agent=alice, task_type="unit-tests", state_key="k", strategy=strategy())

    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert(QEntry(agent=alice, task_type="unit-tests", state_key="k", strategy=strategy()))


def test_it_reads_what_the_orm_reads(alice):
    saved = execution(alice, "orm", coverage=0.5)
    saved.save()
    query = rows.Query(Execution, "agent", "idempotency_key")

    found = query.first(alice, "orm")
    expected = Execution.objects.get(pk=saved.pk)

    for field in Execution._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.created_at.tzinfo is not None
    assert not found._state.adding


def test_it_filters_by_a_list(alice):
    for key in ("a", "b", "c"):
        QEntry.objects.create(agent=alice, task_type="unit-tests", state_key=key, strategy=strategy())
    query = rows.Query(QEntry, "agent", "task_type", "state_key__in")

    assert sorted(entry.state_key for entry in query(alice, "unit-tests", {"a", "c", "z"})) == ["a", "c"]
    assert [entry.state_key for entry in query(alice, "unit-tests", ["b"])] == ["b"]
    assert query(alice, "unit-tests", []) == []
    assert query(alice, "e2e-tests", ["a"]) == []


def test_it_filters_a_relation_by_the_key_it_points_at(alice, bob):
    # Event.owner points at Agent.agent_id, not at its primary key.
    Event.objects.create(owner=alice, team="core", swarm="qe", type="x", payload={"n": 1})
    Event.objects.create(owner=bob, team="core", swarm="qe", type="x", payload={"n": 2})

    found = rows.Query(Event, "owner")(alice)

    assert [(event.owner_id, event.payload) for event in found] == [("alice", {"n": 1})]


def test_it_leaves_deferred_fields_out(alice):
    version = StateVersion.objects.create(agent=alice, number=1, reason="on_demand", task_count=0, q_entries=0,
                                          checksum="c", payload=b"\x00" * 4096, size_bytes=4096)

    found = rows.Query(StateVersion, "id", defer=("payload",)).first(version.pk)

    assert found.get_deferred_fields() == {"payload"}
    assert found.number == 1
    assert bytes(found.payload) == b"\x00" * 4096  # loaded on first access, as QuerySet.defer does


def test_it_sets_extra_expressions_on_each_instance(alice):
    entry = QEntry.objects.create(agent=alice, task_type="unit-tests", state_key="k", strategy=strategy(), visits=4)

    found = rows.Query(QEntry, "id", extra={"twice": "T.visits * 2"}).first(entry.pk)

    assert found.twice == 8


def test_it_adds_a_condition_with_prepared_parameters(alice):
    now = timezone.now()
    Pattern.objects.create(owner=alice, pattern="live", confidence=0.5, expires_at=now + timedelta(hours=1))
    Pattern.with_expired.create(owner=alice, pattern="gone", confidence=0.5, expires_at=now - timedelta(hours=1))
    Pattern.objects.create(owner=alice, pattern="forever", confidence=0.5, expires_at=None)
    live = rows.Query(Pattern, "owner", where="(T.expires_at IS NULL OR T.expires_at > %s)",
                      where_fields=("expires_at",))

    assert sorted(pattern.pattern for pattern in live(alice, now)) == ["forever", "live"]


def test_it_locks_rows_where_the_database_can(alice):
    sql = rows.Query(QEntry, "agent", lock=True)._sql("default", (None,))

    assert sql.endswith(" FOR UPDATE") == connection.features.has_select_for_update
    assert "FOR UPDATE" not in rows.Query(QEntry, "agent")._sql("default", (None,))


def test_it_updates_the_matching_rows_only(alice, bob):
    now = timezone.now()
    Pattern.objects.create(owner=alice, pattern="live", confidence=0.5, expires_at=now + timedelta(hours=1))
    Pattern.with_expired.create(owner=alice, pattern="gone", confidence=0.5, expires_at=now - timedelta(hours=1))
    Pattern.objects.create(owner=bob, pattern="live", confidence=0.5)
    live = rows.Query(Pattern, "owner", "pattern", where="(T.expires_at IS NULL OR T.expires_at > %s)",
                      where_fields=("expires_at",))
    changes = {"confidence": 0.75, "metadata": {"success_rate": 0.8}}

    assert live.update(changes, alice, "live", now) == 1
    assert live.update(changes, alice, "gone", now) == 0

    stored = {(row.owner_id, row.pattern): (row.confidence, row.metadata) for row in Pattern.with_expired.all()}
    assert stored == {("alice", "live"): (0.75, {"success_rate": 0.8}), ("alice", "gone"): (0.5, {}),
                      ("bob", "live"): (0.5, {})}


def test_it_joins_a_related_row_and_caches_it(alice, django_assert_num_queries):
    entry = QEntry.objects.create(agent=alice, task_type="unit-tests", state_key="k", strategy=strategy())
    query = rows.Query(QEntry, "id", related="agent", extra={"twice": "T.visits * 2"})

    found = query.first(entry.pk)
    expected = Agent.objects.get(pk=alice.pk)

    with django_assert_num_queries(0):
        agent = found.agent
    for field in Agent._meta.concrete_fields:
        assert getattr(agent, field.attname) == getattr(expected, field.attname), field.name
    assert found.twice == 0 and not agent._state.adding


def test_it_builds_instances_as_from_db_does(alice):
    saved = execution(alice, "orm")
    saved.save()
    values = Execution.objects.filter(pk=saved.pk).values_list(*[f.attname for f in Execution._meta.concrete_fields])
    names = [field.attname for field in Execution._meta.concrete_fields]

    built = rows.from_db(Execution, "default", names, list(values.get()))
    reference = Execution.from_db("default", names, list(values.get()))

    assert vars(built).keys() == vars(reference).keys()
    assert {name: value for name, value in vars(built).items() if name != "_state"} == {
        name: value for name, value in vars(reference).items() if name != "_state"}
    assert (built._state.adding, built._state.db) == (reference._state.adding, reference._state.db)


def test_it_builds_through_init_for_a_model_with_receivers(alice):
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=QEntry)
    try:
        entry = QEntry.objects.create(agent=alice, task_type="unit-tests", state_key="k", strategy=strategy())
        seen.clear()
        found = rows.Query(QEntry, "id").first(entry.pk)
    finally:
        post_init.disconnect(receiver, sender=QEntry)

    assert seen == [found]


def test_it_joins_a_nullable_key_outside_and_leaves_deferred_columns_out(alice, bob, django_assert_num_queries):
    version = StateVersion.objects.create(agent=alice, number=3, reason="on_demand", task_count=0, q_entries=0,
                                          checksum="c", payload=b"\x00" * 64, size_bytes=64)
    LearningProfile.objects.create(agent=alice, live_version=version)
    LearningProfile.objects.create(agent=bob)
    query = rows.Query(LearningProfile, "agent", related="live_version", related_defer=("payload",))

    with_version, without = query.first(alice), query.first(bob)

    with django_assert_num_queries(0):
        assert with_version.live_version.number == 3 and without.live_version is None
    assert with_version.live_version.get_deferred_fields() == {"payload"}


def test_it_joins_a_key_whose_row_is_gone_as_no_related_row(alice, django_assert_num_queries):
    # A raw delete leaves the key dangling until the (deferred) constraint check at commit.
    version = StateVersion.objects.create(agent=alice, number=3, reason="on_demand", task_count=0, q_entries=0,
                                          checksum="c", payload=b"", size_bytes=0)
    profile = LearningProfile.objects.create(agent=alice, live_version=version)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {StateVersion._meta.db_table} WHERE id = %s", [version.pk])
    try:
        found = rows.Query(LearningProfile, "agent", related="live_version").first(alice)
        by_orm = LearningProfile.objects.select_related("live_version").get(agent=alice)
    finally:
        profile.delete()  # the test's own constraint check, at teardown, would refuse the dangling key

    with django_assert_num_queries(0):
        assert found.live_version is None
    assert by_orm.live_version is None
