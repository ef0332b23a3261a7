"""The performance tracker: windows of tasks scored with the composite score.

Two references, never mixed (DESIGN.md): the improvement baseline, the first
window of `baseline_window` tasks, is what the 20 % target is measured
against; the safeguard reference arrives with state versions.
"""

from datetime import timedelta

from django.db.models import Avg, Count, Q
from django.utils import timezone

from . import engine
from .events import emit
from .models import Execution, Snapshot

SNAPSHOT_EVERY = 10
TARGET = 0.20


def window_stats(agent, first_task, last_task):
    """Aggregates of the agent's tasks numbered first_task..last_task, or None."""
    stats = Execution.objects.filter(agent=agent, sequence__gte=first_task, sequence__lte=last_task).aggregate(
        tasks=Count("pk"),
        successes=Count("pk", filter=Q(success=True)),
        with_errors=Count("pk", filter=Q(error_count__gt=0)),
        avg_ms=Avg("execution_time_ms"),
        satisfaction=Avg("satisfaction"),
        efficiency=Avg("efficiency"),
    )
    if not stats["tasks"]:
        return None
    stats["success_rate"] = stats["successes"] / stats["tasks"]
    stats["error_rate"] = stats["with_errors"] / stats["tasks"]
    stats["score"] = engine.composite_score(
        stats["success_rate"], engine.time_score(stats["avg_ms"]), stats["error_rate"],
        stats["satisfaction"], stats["efficiency"],
    )
    return stats


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


def current_improvement(agent, profile):
    """(current window score, improvement vs baseline) or (score, None)."""
    last = profile.task_count
    stats = window_stats(agent, max(1, last - profile.baseline_window + 1), last)
    if stats is None:
        return None, None
    if profile.baseline_score is None:
        return stats["score"], None
    return stats["score"], engine.improvement(stats["score"], profile.baseline_score)


def current_improvements(profiles):
    """{agent pk: improvement against its baseline} of every profile with a
    baseline, its latest `baseline_window` tasks scored as
    current_improvement scores them, in one query for all of them."""
    with_baseline = [profile for profile in profiles if profile.baseline_score is not None]
    windows = Q()
    for profile in with_baseline:
        windows |= Q(agent_id=profile.agent_id, sequence__lte=profile.task_count,
                     sequence__gte=max(1, profile.task_count - profile.baseline_window + 1))
    if not windows:
        return {}
    rows = Execution.objects.filter(windows).values("agent").annotate(
        tasks=Count("pk"), successes=Count("pk", filter=Q(success=True)),
        with_errors=Count("pk", filter=Q(error_count__gt=0)), avg_ms=Avg("execution_time_ms"),
        satisfaction=Avg("satisfaction"), efficiency=Avg("efficiency")).order_by()
    baselines = {profile.agent_id: profile.baseline_score for profile in with_baseline}
    return {row["agent"]: engine.improvement(engine.composite_score(
        row["successes"] / row["tasks"], engine.time_score(row["avg_ms"]), row["with_errors"] / row["tasks"],
        row["satisfaction"], row["efficiency"]), baselines[row["agent"]]) for row in rows}


def record_snapshot(agent, profile):
    """Score the tasks since the previous snapshot (at most the last 10 of a
    burst); returns the snapshot or None when there is nothing new."""
    last = profile.task_count
    previous = Snapshot.objects.filter(agent=agent).order_by("-last_task").values_list("last_task", flat=True).first()
    first = max((previous or 0) + 1, last - SNAPSHOT_EVERY + 1)
    stats = window_stats(agent, first, last) if last >= first else None
    if stats is None:
        return None
    _, change = current_improvement(agent, profile)
    snapshot = Snapshot.objects.create(
        agent=agent, first_task=first, last_task=last, tasks=stats["tasks"], success_rate=stats["success_rate"],
        avg_execution_ms=stats["avg_ms"], error_rate=stats["error_rate"], satisfaction=stats["satisfaction"],
        efficiency=stats["efficiency"], score=stats["score"], improvement=change,
    )
    agent.performance = {
        "score": round(snapshot.score, 4), "improvement": None if change is None else round(change, 4),
        "baseline": profile.baseline_score, "epsilon": round(profile.exploration_rate, 4),
        "tasks": profile.task_count, "updated_at": snapshot.created_at.isoformat(),
    }
    agent.save(update_fields=["performance", "updated_at"])
    emit(agent, "learning:improvement", {
        "snapshot_id": snapshot.pk, "score": round(snapshot.score, 4),
        "improvement": None if change is None else round(change, 4), "tasks": profile.task_count,
    })
    return snapshot


def improvement_report(agent, profile, days=30):
    """The seed's `improvement` record: baseline, current, change, target, trend."""
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
