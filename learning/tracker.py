"""The performance tracker: windows of tasks scored with the composite score.

Two references, never mixed (docs/ARCHITECTURE.md, "Two references"): the improvement baseline, the first
window of `baseline_window` tasks, is what the 20 % target is measured
against; the safeguard reference arrives with state versions.
"""

from datetime import timedelta
from functools import lru_cache

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Avg, Count, Q
from django.utils import timezone

from qefleet.memory import rows

from .core import engine, scoring
from .events import emit
from .models import Execution, Snapshot

SNAPSHOT_EVERY = 10
TARGET = 0.20


# What a window's score is made of, as (name, SQL over E restricted to the
# window by %s placeholders): a count or an average.
_WINDOW_AGGREGATES = (
    ("tasks", "COUNT(CASE WHEN {window} THEN 1 END)"),
    ("successes", "COUNT(CASE WHEN {window} AND E.success THEN 1 END)"),
    ("with_errors", "COUNT(CASE WHEN {window} AND E.error_count > 0 THEN 1 END)"),
    ("avg_ms", "AVG(CASE WHEN {window} THEN E.execution_time_ms END)"),
    ("satisfaction", "AVG(CASE WHEN {window} THEN E.satisfaction END)"),
    ("efficiency", "AVG(CASE WHEN {window} THEN E.efficiency END)"),
)


@lru_cache(maxsize=8)
def _windows_sql(windows, using):
    """The aggregates of `windows` windows of one agent's tasks in one
    statement. It runs in every tenth report's transaction, where compiling
    the ORM's aggregate cost five times running it."""
    table = connections[using].ops.quote_name(Execution._meta.db_table)
    window = "E.sequence BETWEEN %s AND %s"
    columns = [aggregate.format(window=window) for _ in range(windows) for _, aggregate in _WINDOW_AGGREGATES]
    return f"SELECT {', '.join(columns)} FROM {table} E WHERE E.agent_id = %s AND E.sequence BETWEEN %s AND %s"


def windows_stats(agent, *windows, using=DEFAULT_DB_ALIAS):
    """window_stats of each (first_task, last_task) window, read together."""
    params = [bound for first, last in windows for _ in _WINDOW_AGGREGATES for bound in (first, last)]
    params += [agent.pk, min(first for first, _ in windows), max(last for _, last in windows)]
    with connections[using].cursor() as cursor:
        cursor.execute(_windows_sql(len(windows), using), params)
        row = cursor.fetchone()
    width = len(_WINDOW_AGGREGATES)
    return [_scored(dict(zip((name for name, _ in _WINDOW_AGGREGATES), row[start:start + width])))
            for start in range(0, len(row), width)]


def _scored(stats):
    if not stats["tasks"]:
        return None
    # PostgreSQL averages integers as numeric: Decimal, not float.
    for name in ("avg_ms", "satisfaction", "efficiency"):
        stats[name] = None if stats[name] is None else float(stats[name])
    stats["success_rate"] = stats["successes"] / stats["tasks"]
    stats["error_rate"] = stats["with_errors"] / stats["tasks"]
    stats["score"] = scoring.composite_score(
        stats["success_rate"], scoring.time_score(stats["avg_ms"]), stats["error_rate"],
        stats["satisfaction"], stats["efficiency"],
    )
    return stats


def window_stats(agent, first_task, last_task):
    """Aggregates of the agent's tasks numbered first_task..last_task, or None."""
    return windows_stats(agent, (first_task, last_task))[0]


def after_task(agent, profile):
    """Set the baseline once its window is complete; snapshot every 10 tasks."""
    start = profile.baseline_task or 0
    if profile.baseline_score is None and profile.task_count - start >= profile.baseline_window:
        stats = window_stats(agent, start + 1, start + profile.baseline_window)
        profile.baseline_score = stats["score"]
        profile.baseline_set_at = timezone.now()
        profile.baseline_task = start
        profile.save(update_fields=["baseline_score", "baseline_set_at", "baseline_task", "updated_at"])
    if profile.task_count % SNAPSHOT_EVERY == 0:
        record_snapshot(agent, profile)


def current_window(profile):
    """The task numbers of the latest `baseline_window` tasks: what is
    scored against the baseline."""
    return max(1, profile.task_count - profile.baseline_window + 1), profile.task_count


def current_improvement(agent, profile):
    """(current window score, improvement vs baseline) or (score, None)."""
    return _improvement(window_stats(agent, *current_window(profile)), profile)


def _improvement(stats, profile):
    if stats is None:
        return None, None
    if profile.baseline_score is None:
        return stats["score"], None
    return stats["score"], scoring.improvement(stats["score"], profile.baseline_score)


def current_scores(profiles):
    """{agent pk: (score, improvement against its baseline or None)} of every
    profile with tasks, its latest `baseline_window` tasks scored as
    current_improvement scores them, in one query for all of them."""
    with_tasks = [profile for profile in profiles if profile.task_count]
    windows = Q()
    for profile in with_tasks:
        first, last = current_window(profile)
        windows |= Q(agent_id=profile.agent_id, sequence__gte=first, sequence__lte=last)
    if not windows:
        return {}
    # _WINDOW_AGGREGATES grouped per agent (each agent has its own window).
    per_agent = Execution.objects.filter(windows).values("agent").annotate(
        tasks=Count("pk"), successes=Count("pk", filter=Q(success=True)),
        with_errors=Count("pk", filter=Q(error_count__gt=0)), avg_ms=Avg("execution_time_ms"),
        satisfaction=Avg("satisfaction"), efficiency=Avg("efficiency")).order_by()
    profiles_by_agent = {profile.agent_id: profile for profile in with_tasks}
    return {row["agent"]: _improvement(_scored(row), profiles_by_agent[row["agent"]]) for row in per_agent}


def current_improvements(profiles):
    """{agent pk: improvement against its baseline} of every profile with a
    baseline (current_scores' changes)."""
    return {pk: change for pk, (_, change) in current_scores(profiles).items() if change is not None}


def record_snapshot(agent, profile):
    """Score the tasks since the previous snapshot (at most the last 10 of a
    burst); returns the snapshot or None when there is nothing new."""
    last = profile.task_count
    previous = Snapshot.objects.filter(agent=agent).order_by("-last_task").values_list("last_task", flat=True).first()
    first = max((previous or 0) + 1, last - SNAPSHOT_EVERY + 1)
    if last < first:
        return None
    stats, current = windows_stats(agent, (first, last), current_window(profile))
    if stats is None:
        return None
    _, change = _improvement(current, profile)
    # Every tenth report writes these: rows spares compiling the statements.
    snapshot = rows.insert(Snapshot(
        agent=agent, first_task=first, last_task=last, tasks=stats["tasks"], success_rate=stats["success_rate"],
        avg_execution_ms=stats["avg_ms"], error_rate=stats["error_rate"], satisfaction=stats["satisfaction"],
        efficiency=stats["efficiency"], score=stats["score"], improvement=change,
    ))
    agent.performance = {
        "score": round(snapshot.score, 4), "improvement": None if change is None else round(change, 4),
        "baseline": profile.baseline_score, "epsilon": round(profile.exploration_rate, 4),
        "tasks": profile.task_count, "updated_at": snapshot.created_at.isoformat(),
    }
    rows.update(agent, ["performance", "updated_at"])
    emit(agent, "learning:improvement", {
        "snapshot_id": snapshot.pk, "score": round(snapshot.score, 4),
        "improvement": None if change is None else round(change, 4), "tasks": profile.task_count,
    })
    return snapshot


def improvement_report(agent, profile, days=30):
    """The design's `improvement` record: baseline, current, change, target, trend."""
    score, change = current_improvement(agent, profile)
    since = timezone.now() - timedelta(days=days)
    points = list(Snapshot.objects.filter(agent=agent, created_at__gte=since).values_list("created_at", "score"))
    slope = engine.trend([moment.timestamp() / 86400 for moment, _ in points], [value for _, value in points])
    return {
        "baseline": profile.baseline_score,
        "baseline_set_at": profile.baseline_set_at.isoformat() if profile.baseline_set_at else None,
        "current": score,
        "improvement": change,
        "target": TARGET,
        "target_achieved": change is not None and change >= TARGET,
        "trend_per_day": slope,
        "tasks": profile.task_count,
    }
