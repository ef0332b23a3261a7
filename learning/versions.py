"""State versions: capture, restore, retention and the live timeline.

A version's checksum is the SHA-256 of the canonical JSON of the restorable
learned state, so "restored correctly" is checkable: after a restore the
live state's checksum equals the version's.
"""

import hashlib
import json
import zlib

from django.db import connection, transaction
from django.utils import timezone

from qefleet.memory import rows

from .models import (
    AppliedStrategy,
    Execution,
    LearnedPattern,
    LearningProfile,
    LiveCause,
    LiveVersion,
    QEntry,
    Rollback,
    Safeguard,
    StateVersion,
    Strategy,
    VersionReason,
)
from .tracker import current_improvement

CAPTURE_EVERY = 100  # tasks
# Five tasks past each hundred (105, 205, ...), not on it: every tenth task
# already takes a snapshot and a safeguard check, and the report that did
# all three was the slowest request by far (p99).
CAPTURE_OFFSET = 5


def capture_due(task_count):
    return task_count > CAPTURE_EVERY and task_count % CAPTURE_EVERY == CAPTURE_OFFSET


_LIVE_VERSION = rows.Query(StateVersion, "id", defer=("payload",))


def live_version(profile):
    """The profile's live version (its payload loaded on first access), read
    once with SQL built once: every recommendation and every safeguard check
    needs it, and the relation's lazy load would compile a query each time."""
    if not LearningProfile.live_version.is_cached(profile):
        profile.live_version = _LIVE_VERSION.first(profile.live_version_id) if profile.live_version_id else None
    return profile.live_version


class RestoreError(Exception):
    pass


def learned_state(agent, profile):
    """What a restore brings back, in a canonical order."""
    return {
        "q": [list(row) for row in QEntry.objects.filter(agent=agent)
              .order_by("task_type", "state_key", "strategy__name")
              .values_list("task_type", "state_key", "strategy__name", "q_value", "visits")],
        "patterns": [list(row) for row in LearnedPattern.objects.filter(agent=agent)
                     .order_by("task_type", "strategy__name")
                     .values_list("task_type", "strategy__name", "uses", "successes", "confidence")],
        "applied": [list(row) for row in AppliedStrategy.objects.filter(agent=agent)
                    .order_by("task_type").values_list("task_type", "strategy__name", "source")],
        "config": profile.config(),
    }


def checksum(state):
    return hashlib.sha256(json.dumps(state, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def decode(version):
    return json.loads(zlib.decompress(bytes(version.payload)))


def _make_live(agent, profile, version, cause):
    now = timezone.now()
    LiveVersion.objects.filter(agent=agent, live_until__isnull=True).update(live_until=now)
    LiveVersion.objects.create(agent=agent, version=version, live_from=now, cause=cause)
    profile.live_version = version
    profile.live_since_task = profile.task_count
    profile.save(update_fields=["live_version", "live_since_task", "updated_at"])


def capture(agent, reason, profile=None):
    """Capture the agent's learned state as a new version and make it live.

    Scheduled captures (cycle slot, every 100 tasks) are skipped when
    nothing changed since the latest version; returns the version or None.
    """
    profile = profile or LearningProfile.objects.get(agent=agent)
    state = learned_state(agent, profile)
    digest = checksum(state)
    latest = StateVersion.objects.filter(agent=agent).only("checksum", "number").first()
    if latest is not None and latest.checksum == digest and reason in (VersionReason.CYCLE, VersionReason.TASKS):
        return None
    experiences = list(
        Execution.objects.filter(agent=agent).order_by("-sequence")
        .values_list("sequence", "task_type", "state_key", "strategy__name", "reward", "next_state_key")
        [:profile.max_experiences]
    )
    score, _ = current_improvement(agent, profile)
    payload = zlib.compress(json.dumps(
        {"state": state, "experiences": [list(row) for row in experiences], "score": score,
         "tasks": profile.task_count}, separators=(",", ":")).encode(), 6)
    with transaction.atomic():
        version = StateVersion.objects.create(
            agent=agent, number=(latest.number if latest else 0) + 1, reason=reason,
            task_count=profile.task_count, score=score, q_entries=len(state["q"]), patterns=len(state["patterns"]),
            exploration_rate=state["config"]["exploration_rate"], checksum=digest,
            payload=payload, size_bytes=len(payload),
        )
        _make_live(agent, profile, version, LiveCause.CAPTURED)
        prune(agent)
    return version


def prune(agent):
    """Keep the latest KEEP_LATEST versions, the latest KEEP_KNOWN_GOOD
    known-good ones, the safeguard's reference, and pinned and live ones.
    (Most versions become known good, so keeping every one would keep all.)"""
    versions = StateVersion.objects.filter(agent=agent)
    # Newest first; pruning on every capture keeps this list short.
    flags = list(versions.values_list("pk", "known_good", "pinned"))
    known_good = [pk for pk, good, _ in flags if good]
    keep = {pk for pk, _, _ in flags[:StateVersion.KEEP_LATEST]} | set(known_good[:StateVersion.KEEP_KNOWN_GOOD])
    doomed = {pk for pk, _, pinned in flags if pk not in keep and not pinned}
    if not doomed:
        return
    doomed -= set(LiveVersion.objects.filter(agent=agent, live_until__isnull=True).values_list("version_id", flat=True))
    doomed -= set(Safeguard.objects.filter(agent=agent).values_list("reference_version_id", flat=True))
    # The state before the latest rollback: its undo needs it while the undo is available.
    doomed -= set(Rollback.objects.filter(agent=agent).order_by("-created_at", "-pk").values_list(
        "from_version_id", flat=True)[:1])
    # Versions leave the timeline with them.
    versions.filter(pk__in=doomed).delete()


def insert_rows(model, fields, rows):
    """Insert plain value rows with one executemany: for a whole Q table it is
    about thirty times faster than bulk_create's batches of model instances."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
    marks = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})", rows)


def restore(agent, version, profile):
    """Replace the agent's learned state with `version`'s, in the caller's
    transaction; raises RestoreError unless the result's checksum matches."""
    state = decode(version)["state"]
    strategies = {item.name: item for item in Strategy.objects.all()}
    used = {row[2] for row in state["q"]} | {row[1] for row in state["patterns"]} | {row[1] for row in state["applied"]}
    missing = sorted(used - set(strategies))
    if missing:
        raise RestoreError(f"{version} uses strategies no longer in the catalog: {', '.join(missing)}.")
    QEntry.objects.filter(agent=agent).delete()
    now = QEntry._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    insert_rows(QEntry, ["agent", "task_type", "state_key", "strategy", "q_value", "visits", "updated_at"],
                [(agent.pk, task_type, state_key, strategies[name].pk, q, visits, now)
                 for task_type, state_key, name, q, visits in state["q"]])
    LearnedPattern.objects.filter(agent=agent).delete()
    LearnedPattern.objects.bulk_create(
        [LearnedPattern(agent=agent, task_type=task_type, strategy=strategies[name], uses=uses, successes=successes,
                        confidence=confidence) for task_type, name, uses, successes, confidence in state["patterns"]])
    AppliedStrategy.objects.filter(agent=agent).delete()
    AppliedStrategy.objects.bulk_create(
        [AppliedStrategy(agent=agent, task_type=task_type, strategy=strategies[name], source=source)
         for task_type, name, source in state["applied"]])
    for name, value in state["config"].items():
        setattr(profile, name, value)
    profile.save()
    if checksum(learned_state(agent, profile)) != version.checksum:
        raise RestoreError(f"Restoring {version} did not reproduce its checksum.")
    _make_live(agent, profile, version, LiveCause.RESTORED)


def _best_actions(q_rows):
    best = {}
    for task_type, state_key, strategy, q, _visits in q_rows:
        key = (task_type, state_key)
        if key not in best or q > best[key][1]:
            best[key] = (strategy, q)
    return best


def preview(agent, profile, version, largest=10):
    """What restoring `version` would change in the live learned state."""
    live = learned_state(agent, profile)
    target = decode(version)["state"]
    live_best, target_best = _best_actions(live["q"]), _best_actions(target["q"])
    best_changes = [
        {"task_type": key[0], "state": key[1], "live": live_best.get(key, (None,))[0],
         "restored": target_best.get(key, (None,))[0]}
        for key in sorted(set(live_best) | set(target_best))
        if live_best.get(key, (None,))[0] != target_best.get(key, (None,))[0]
    ]
    live_q = {tuple(row[:3]): row[3] for row in live["q"]}
    target_q = {tuple(row[:3]): row[3] for row in target["q"]}
    deltas = sorted(
        ({"task_type": key[0], "state": key[1], "strategy": key[2], "live": live_q.get(key),
          "restored": target_q.get(key)} for key in set(live_q) | set(target_q)),
        key=lambda item: -abs((item["restored"] or 0.0) - (item["live"] or 0.0)),
    )
    live_patterns = {f"{row[0]}:{row[1]}" for row in live["patterns"]}
    target_patterns = {f"{row[0]}:{row[1]}" for row in target["patterns"]}
    config = {name: {"live": live["config"][name], "restored": value}
              for name, value in target["config"].items() if live["config"].get(name) != value}
    score, _ = current_improvement(agent, profile)
    return {
        "version": version.label, "captured_at": version.created_at.isoformat(), "tasks": version.task_count,
        "known_good": version.known_good, "score_at_version": version.score, "score_now": score,
        "best_action_changes": best_changes, "best_action_changes_total": len(best_changes),
        "largest_q_changes": deltas[:largest],
        "patterns_added": sorted(target_patterns - live_patterns),
        "patterns_removed": sorted(live_patterns - target_patterns),
        "config_changes": config,
        "q_entries": {"live": len(live["q"]), "restored": len(target["q"])},
    }
