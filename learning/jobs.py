"""Every scheduled job of QE Fleet, in one table, and their entry points.

`schedule()` is the table: the job's name (its django-q2 schedule and task
group), its entry point here, and how often it runs. LearningConfig.ready()
registers it with qefleet.schedules, which keeps django-q2's Schedule rows
equal to it. Each entry point is a plain function the cluster calls with no
arguments; a management command or a test may call the same function. The
memory app's TTL sweep is listed here too, so this one table names every job.

"Job" here always means a django-q2 job; an agent's unit of work is a task.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from qefleet import schedules
from qefleet.memory import ttl
from qefleet.memory.models import AuditEvent
from qefleet.memory.ttl import delete_in_batches

from . import alerts, drills, improvement, learning_health, shadow, sharing, tracker, versions
from .models import (
    Decision,
    DrillRun,
    Execution,
    ImprovementCycle,
    LearningProfile,
    OverheadMinute,
    Severity,
    Snapshot,
    VersionReason,
)


def schedule():
    """[(name, entry point, minutes)] of every scheduled job."""
    slot = max(1, settings.CYCLE_SLOT_SECONDS // 60)
    return [
        ("qefleet.learning.every_slot", "learning.jobs.every_slot", slot),
        ("qefleet.learning.improvement_cycle", "learning.jobs.improvement_cycle", slot),
        # The guard looks for a lost cycle soon after each slot closes.
        ("qefleet.learning.cycle_guard", "learning.jobs.cycle_guard", min(5, slot)),
        ("qefleet.learning.share_patterns", "learning.jobs.share_patterns", slot),
        ("qefleet.learning.prune_history", "learning.jobs.prune_history", 24 * 60),
        ("qefleet.learning.statistics_drills", "learning.jobs.statistics_drills", 24 * 60),
        ("qefleet.learning.watch_schedules", "learning.jobs.watch_schedules", 5),
        ("qefleet.memory.sweep_expired", "learning.jobs.sweep_expired", settings.SWEEP_INTERVAL_MINUTES),
    ]


def register():
    for name, func, minutes in schedule():
        schedules.register(name, func, minutes)


def improvement_cycle():
    """The slot's improvement cycle of every agent, then the fleet's A/B review."""
    return improvement.run_all()


def cycle_guard():
    """Re-run the previous slot's cycle when it was lost (see improvement.rerun_lost_cycle)."""
    return improvement.rerun_lost_cycle()


def share_patterns():
    """Publish qualifying patterns to the swarm and import them on probation."""
    return sharing.share_and_import()


def sweep_expired():
    """Delete memory rows past their TTL, in batches."""
    return ttl.sweep_expired()


def statistics_drills():
    """Replay every agent's rules on its own logs (learning/drills.py)."""
    return drills.drill_all("schedule")


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
    are jobs of their own), the alert on agents that stopped learning and the
    promotion of agents in shadow that meet the rule."""
    return {**record_snapshots(), **capture_versions(), **learning_health.watch_learning(),
            **shadow.promote_ready()}


def prune_history(now=None):
    """Delete decisions, executions and snapshots past their 90-day retention,
    drill runs past 90, improvement cycles past 30 days, learning-overhead minutes past 7, audit
    rows past AUDIT_DENIAL_RETENTION_DAYS (denials) or AUDIT_RETENTION_DAYS."""
    now = now or timezone.now()
    counts = {}
    for model in (Execution, Decision, Snapshot, DrillRun, ImprovementCycle):
        cutoff = now - timedelta(days=model.RETENTION_DAYS)
        counts[model._meta.db_table] = delete_in_batches(model.objects.filter(created_at__lt=cutoff), "created_at")
    old_minutes = OverheadMinute.objects.filter(minute__lt=now - timedelta(days=OverheadMinute.RETENTION_DAYS))
    counts[OverheadMinute._meta.db_table] = delete_in_batches(old_minutes, "minute")
    counts[AuditEvent._meta.db_table] = delete_in_batches(AuditEvent.past_retention(now), "at")
    return counts


def watch_schedules():
    """Alert on scheduled jobs that are late or failing (the cluster runs this
    too, so a stopped cluster shows as late jobs on the next start), and
    resolve the alerts of jobs the heartbeat says are on time again."""
    stale = schedules.stale_jobs()
    for job, reason in stale:
        alerts.raise_alert("schedule:stale", Severity.WARNING, f"Scheduled job {job.name} is {reason}",
                           {"job": job.name, "reason": reason}, dedup_key=f"schedule:{job.name}")
    alerts.resolve_cleared("schedule:stale", [f"schedule:{job.name}" for job, _ in stale],
                           "Resolved: the heartbeat says the job is on time again.")
    return {"stale": [job.name for job, _ in stale]}
