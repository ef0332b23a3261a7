"""django-q2 entry points of the learning app (registered in apps.py)."""

from datetime import timedelta

from django.utils import timezone

from qefleet import schedules
from qefleet.memory.ttl import delete_in_batches

from . import alerts, tracker, versions
from .models import (
    Decision,
    Execution,
    ImprovementCycle,
    LearningProfile,
    OverheadMinute,
    Severity,
    Snapshot,
    VersionReason,
)


def record_snapshots():
    """Snapshot every agent with tasks since its last snapshot."""
    recorded = 0
    for profile in LearningProfile.objects.filter(task_count__gt=0).select_related("agent"):
        recorded += tracker.record_snapshot(profile.agent, profile) is not None
    return {"snapshots": recorded}


def capture_versions():
    """Capture a state version of every agent whose learned state changed."""
    captured = 0
    for profile in LearningProfile.objects.filter(task_count__gt=0).with_live_version().select_related("agent"):
        captured += versions.capture(profile.agent, VersionReason.CYCLE, profile) is not None
    return {"versions": captured}


def every_slot():
    """The cycle slot's bookkeeping (the improvement cycle and pattern sharing
    are jobs of their own)."""
    return {**record_snapshots(), **capture_versions()}


def prune_history(now=None):
    """Delete decisions, executions and snapshots past their 90-day retention,
    improvement cycles past 30 days, learning-overhead minutes past 7."""
    now = now or timezone.now()
    counts = {}
    for model in (Execution, Decision, Snapshot, ImprovementCycle):
        cutoff = now - timedelta(days=model.RETENTION_DAYS)
        counts[model._meta.db_table] = delete_in_batches(model.objects.filter(created_at__lt=cutoff), "created_at")
    old_minutes = OverheadMinute.objects.filter(minute__lt=now - timedelta(days=OverheadMinute.RETENTION_DAYS))
    counts[OverheadMinute._meta.db_table] = delete_in_batches(old_minutes, "minute")
    return counts


def watch_schedules():
    """Alert on scheduled jobs that are late or failing (the cluster runs this
    too, so a stopped cluster shows as late jobs on the next start)."""
    stale = schedules.stale_jobs()
    for job, reason in stale:
        alerts.raise_alert("schedule:stale", Severity.WARNING, f"Scheduled job {job.name} is {reason}",
                           {"job": job.name, "reason": reason}, dedup_key=f"schedule:{job.name}")
    return {"stale": [job.name for job, _ in stale]}
