"""The performance safeguard: checks, the last known good version, rollbacks.

Two references, never mixed (docs/ARCHITECTURE.md, "Two references"): the safeguard compares against the
score measured while the last-known-good version was live, never against
the improvement baseline.
"""

from datetime import timedelta
from functools import lru_cache

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Max
from django.utils import timezone

from . import abtests, alerts, mitigations, sharing, versions
from .core import scoring, stats
from .events import emit
from .models import (
    Decision,
    Execution,
    Rollback,
    Safeguard,
    SafeguardAction,
    SafeguardState,
    Severity,
    VersionReason,
)

REFERENCE_TASKS = 200  # the most policy tasks the reference averages (since the last restore)


@lru_cache(maxsize=8)
def _policy_scores_sql(limited, using):
    quote = connections[using].ops.quote_name
    sql = (f"SELECT E.success, E.execution_time_ms, E.error_count, E.satisfaction, E.efficiency "
           f"FROM {quote(Execution._meta.db_table)} E "
           f"LEFT OUTER JOIN {quote(Decision._meta.db_table)} D ON D.id = E.decision_id "
           f"WHERE E.agent_id = %s AND E.sequence > %s AND E.sequence < %s "
           f"AND (D.fallback IS NULL OR D.fallback <> %s) ORDER BY E.sequence DESC")
    return sql + " LIMIT %s" if limited else sql


def policy_scores(agent, after, before, limit=None, using=DEFAULT_DB_ALIAS):
    """Per-task scores of the tasks numbered after < n < before that the
    agent's own policy chose, the latest first, at most `limit`.

    Tasks an A/B test forced onto a fixed strategy are the test's to judge
    (its always-valid interval stops a bad arm early); counting them here
    would roll back a healthy learned state for an experiment's sake. The
    SQL is built once: every check runs it inside a report's transaction."""
    params = [agent.pk, after, before, "abtest"] + ([] if limit is None else [limit])
    with connections[using].cursor() as cursor:
        cursor.execute(_policy_scores_sql(limit is not None, using), params)
        return np.array([scoring.task_score(*row) for row in cursor.fetchall()])


def scores_between(agent, first, last):
    return policy_scores(agent, first - 1, last + 1)


def window_scores(agent, current, window):
    """Per-task scores of the policy's last `window` tasks, the unsaved
    `current` one included when the policy chose it."""
    forced = current.decision is not None and current.decision.fallback == "abtest"
    earlier = policy_scores(agent, 0, current.sequence, window - (0 if forced else 1))
    if forced:
        return earlier
    return np.append(earlier, scoring.task_score(current.success, current.execution_time_ms, current.error_count,
                                         current.satisfaction, current.efficiency))


def last_restore_task(agent):
    """The agent's task count at its last restore (a rollback or its undo),
    0 when it was never restored. The Rollback row's "before" capture holds
    it; if that version was pruned, the last task reported before the row."""
    last = Rollback.objects.filter(agent=agent).select_related("from_version").order_by("-created_at", "-pk").first()
    if last is None:
        return 0
    if last.from_version is not None:
        return last.from_version.task_count
    return Execution.objects.filter(agent=agent, created_at__lte=last.created_at).aggregate(
        last=Max("sequence"))["last"] or 0


def _measure_reference(agent, profile, guard):
    """The reference: the mean score of the policy's last REFERENCE_TASKS
    tasks, across versions but none before the last restore, with its
    standard error. Until the restored state has enough tasks of its own
    the reference stays what roll_back set (the restored version's score)."""
    values = policy_scores(agent, last_restore_task(agent), profile.task_count, REFERENCE_TASKS)
    if len(values) >= guard.known_good_after - 1:
        guard.reference_score = float(values.mean())
        guard.reference_spread = stats.standard_error(values)


def _establish(agent, profile, guard, version):
    """`version` had a clean run: it is the last known good."""
    version.known_good = True
    version.save(update_fields=["known_good"])
    guard.reference_version = version
    _measure_reference(agent, profile, guard)


def _clean_run(agent, profile, guard):
    """The live version has been live known_good_after tasks and no check
    since it went live was a warning or degraded (this one is ok). Each
    task's stored response carries the state of the last check before it,
    so the tasks from the first check after going live hold every verdict."""
    if profile.task_count - profile.live_since_task < guard.known_good_after:
        return False
    first_check = (profile.live_since_task // guard.check_every + 1) * guard.check_every
    return not Execution.objects.filter(
        agent=agent, sequence__gte=first_check, sequence__lt=profile.task_count,
        response__safeguard__state__in=(SafeguardState.WARNING, SafeguardState.DEGRADED)).exists()


def check(agent, profile, guard, current):
    """Run the check when it is due; returns True when it rolled back."""
    if profile.task_count % guard.check_every:
        return False
    scores = window_scores(agent, current, guard.window)
    live = versions.live_version(profile)
    if guard.reference_score is None or len(scores) < guard.window:
        guard.state, guard.change_pct = SafeguardState.INSUFFICIENT, None
    else:
        guard.state, guard.change_pct = stats.judge(scores, guard.reference_score, guard.reference_spread,
                                              guard.threshold_pct, guard.confidence_z)
    guard.consecutive_degraded = guard.consecutive_degraded + 1 if guard.state == SafeguardState.DEGRADED else 0
    guard.healthy_checks = guard.healthy_checks + 1 if guard.state == SafeguardState.OK else 0
    if guard.reference_score is None:
        # No reference yet, so no verdicts: the first known good is the live
        # version once it has been live a full known_good_after tasks.
        if live is not None and profile.task_count - profile.live_since_task >= guard.known_good_after:
            _establish(agent, profile, guard, live)
    elif guard.state == SafeguardState.OK and live is not None and _clean_run(agent, profile, guard):
        if not live.known_good:
            _establish(agent, profile, guard, live)
        elif live.pk == guard.reference_version_id:
            _measure_reference(agent, profile, guard)  # more tasks: a steadier reference
    guard.checked_at = timezone.now()
    alerts.resolve_healthy(agent, guard.healthy_checks, profile.enabled)
    rolled_back = False
    # With learning off (frozen, or rolled back awaiting review) the state
    # cannot drift further: an operator has been alerted and decides. In
    # shadow the scores are the agent's own choices, not the learned state's.
    if guard.consecutive_degraded >= guard.consecutive and profile.enabled and not profile.in_shadow:
        rolled_back = _act(agent, profile, guard, {
            "window_score": round(float(scores.mean()), 4), "reference": round(guard.reference_score, 4),
            "change_pct": round(guard.change_pct, 2), "checks": guard.consecutive_degraded,
            "tasks": profile.task_count,
        })
        guard.consecutive_degraded = 0
    guard.save()
    return rolled_back


def _act(agent, profile, guard, numbers):
    """The configured action on sustained degradation; True when it rolled back."""
    target = guard.reference_version
    if guard.dry_run:
        emit(agent, "learning:rollback_dry_run", {**numbers, "action": guard.action,
                                                    "target": target.label if target else None})
        alerts.raise_alert("safeguard:dry_run", Severity.WARNING,
                           f"{agent.agent_id} degraded: would have taken action '{guard.action}' (dry run)",
                           numbers, agent)
        return False
    if guard.action == SafeguardAction.NOTIFY:
        alerts.raise_alert("safeguard:degraded", Severity.HIGH, f"{agent.agent_id} degraded "
                           f"{numbers['change_pct']:+.1f}% against its reference", numbers, agent)
        return False
    if guard.action == SafeguardAction.FREEZE:
        freeze(profile)
        alerts.raise_alert("safeguard:frozen", Severity.HIGH, f"{agent.agent_id} degraded "
                           f"{numbers['change_pct']:+.1f}%: learning frozen", numbers, agent)
        return False
    since = timezone.now() - timedelta(hours=24)
    recent = Rollback.objects.filter(agent=agent, automatic=True, created_at__gte=since).count()
    if recent >= guard.max_auto_rollbacks or target is None:
        why = (f"{recent} automatic rollbacks in 24 hours" if target is not None
               else "no known-good version to roll back to")
        alerts.raise_alert("safeguard:operator_needed", Severity.HIGH,
                           f"{agent.agent_id} degraded {numbers['change_pct']:+.1f}%; {why}: an operator decides",
                           numbers, agent)
        return False
    try:
        roll_back(agent, profile, target, automatic=True, numbers=numbers,
                  reason=f"{numbers['checks']} consecutive degraded checks")
    except versions.RestoreError as error:
        alerts.raise_alert("safeguard:rollback_failed", Severity.HIGH, f"{agent.agent_id}: {error}", numbers, agent)
        return False
    return True


def freeze(profile, by=""):
    """Learning off; `by` names the operator whose action it was ("" for the
    safeguard): they may turn it on again themselves (operations.may_resume)."""
    profile.enabled = False
    profile.disabled_by = by
    profile.save(update_fields=["enabled", "disabled_by", "updated_at"])


def roll_back(agent, profile, target, automatic, actor="", reason="", numbers=None, undo_of=None):
    """The design's rollback sequence, inside the caller's transaction (a
    savepoint, so a failed restore leaves the old state fully live)."""
    with transaction.atomic():
        before = versions.capture(agent, VersionReason.BEFORE_ROLLBACK, profile)
        versions.restore(agent, target, profile)
        freeze(profile, by="" if automatic else actor)
        record = Rollback.objects.create(agent=agent, from_version=before, to_version=target, automatic=automatic,
                                         actor=actor, reason=reason, numbers=numbers or {}, undo_of=undo_of)
        abtests.on_rollback(agent, target)
        mitigations.withdraw_since(agent, target)
        sharing.quarantine_since(agent, target, f"{agent.agent_id} was rolled back to {target.label}")
        guard = Safeguard.objects.filter(agent=agent).first()
        if guard is not None and guard.reference_version_id != target.pk:
            guard.reference_version = target
            guard.reference_score = target.score if target.score is not None else guard.reference_score
            guard.reference_spread = 0.0
            guard.save(update_fields=["reference_version", "reference_score", "reference_spread"])
        emit(agent, "learning:rollback", {
            "rollback_id": record.pk, "trigger": "automatic" if automatic else "manual",
            "undo_of": undo_of.pk if undo_of else None,
            "from": before.label, "to": target.label, "degradation": numbers or {}, "at": record.created_at.isoformat(),
        })
        # Only the safeguard's own rollback asks the operators to look: an
        # operator's rollback or undo is theirs, and the audit trail has it.
        if automatic:
            alerts.raise_alert("safeguard:rollback", Severity.HIGH,
                               f"{agent.agent_id} rolled back automatically to {target.label}; learning is disabled",
                               {**(numbers or {}), "from": before.label, "to": target.label}, agent,
                               dedup_key=f"rollback:{record.pk}")
    return record


def roll_forward(agent, profile, rollback, actor):
    """Undo a rollback: restore the state captured just before it."""
    if rollback.from_version is None:
        raise versions.RestoreError("The state before this rollback is no longer kept.")
    return roll_back(agent, profile, rollback.from_version, automatic=False, actor=actor, undo_of=rollback)


def re_enable(profile):
    """Learning on again after an operator reviewed a rollback or a pause."""
    profile.enabled = True
    profile.disabled_by = ""
    profile.save(update_fields=["enabled", "disabled_by", "updated_at"])
