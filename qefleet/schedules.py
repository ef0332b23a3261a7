"""The one registry of scheduled jobs.

Apps add their jobs from AppConfig.ready(); `ensure_schedules` (run after
every migrate and as a management command) makes django-q2's Schedule rows
match the registry: it creates, updates and removes only the schedules it
owns (names starting with "qefleet."), so it is safe to run any number of times.
A schedule whose next run is further away than its interval (the interval
shrank, say `CYCLE_SLOT_SECONDS` went from an hour to a minute) is re-timed to
run at the scheduler's next tick: django-q2 keeps a row's next run when its
interval changes.
"""

from dataclasses import dataclass
from datetime import timedelta

NAMESPACE = "qefleet."


@dataclass(frozen=True)
class Job:
    name: str
    func: str
    minutes: int


_jobs = {}


def register(name, func, minutes):
    """Register a job that runs `func` (a dotted path) every `minutes` minutes."""
    if not name.startswith(NAMESPACE):
        raise ValueError(f"Scheduled job names start with {NAMESPACE!r}: {name!r}.")
    if minutes < 1:
        raise ValueError("A job runs at most once a minute.")
    _jobs[name] = Job(name, func, minutes)


def jobs():
    return sorted(_jobs.values(), key=lambda job: job.name)


def _beyond_interval(schedule, job, now):
    return schedule.next_run is not None and schedule.next_run > now + timedelta(minutes=job.minutes)


def ensure_schedules(using="default", **kwargs):
    """Make the Schedule table match the registry; returns (created, updated, removed)."""
    from django.utils import timezone
    from django_q.models import Schedule

    now = timezone.now()
    created = updated = 0
    for job in jobs():
        schedule = Schedule.objects.using(using).filter(name=job.name).first()
        wanted = {"func": job.func, "schedule_type": Schedule.MINUTES, "minutes": job.minutes, "repeats": -1}
        if schedule is None:
            schedule = Schedule(name=job.name, **wanted)
            created += 1
        elif (retime := _beyond_interval(schedule, job, now)) \
                or any(getattr(schedule, field) != value for field, value in wanted.items()):
            for field, value in wanted.items():
                setattr(schedule, field, value)
            if retime:
                schedule.next_run = now
            updated += 1
        else:
            continue
        schedule.full_clean()
        schedule.save(using=using)
    stale = Schedule.objects.using(using).filter(name__startswith=NAMESPACE).exclude(name__in=list(_jobs))
    removed, _ = stale.delete()
    return created, updated, removed


def _newest_runs(names, **where):
    """{job name: its newest run matching `where`}, for all `names` in one query."""
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber
    from django_q.models import Task

    if not names:
        return {}
    runs = (Task.objects.filter(group__in=names, **where)
            .annotate(rank=Window(RowNumber(), partition_by=F("group"), order_by=F("stopped").desc()))
            .filter(rank=1).only("group", "success", "started", "stopped", "result"))
    return {run.group: run for run in runs}


def heartbeat(now=None):
    """The loop heartbeat: for every registered job, its last successful run
    (when, how long, what it counted), its last failure, and whether it is
    stale: missing, timed further away than its interval (ensure_schedules
    re-times it), silent (no success) for twice its interval, or last run failed."""
    from django.utils import timezone
    from django_q.models import Schedule

    now = now or timezone.now()
    rows = {row.name: row for row in Schedule.objects.filter(name__in=list(_jobs))}
    # One query for every job's last run, a second only when some last run failed.
    last_runs = _newest_runs(list(_jobs))
    failed = [name for name, run in last_runs.items() if not run.success]
    last_oks = {name: run for name, run in last_runs.items() if run.success} | _newest_runs(failed, success=True)
    beats = []
    for job in jobs():
        row = rows.get(job.name)
        last_run, last_ok = last_runs.get(job.name), last_oks.get(job.name)
        beat = {"job": job, "next_run": row.next_run if row else None, "last_success": None, "duration_ms": None,
                "result": None, "failed": bool(last_run and not last_run.success), "stale": None}
        if last_ok is not None:
            beat.update(last_success=last_ok.stopped, result=last_ok.result,
                        duration_ms=round((last_ok.stopped - last_ok.started).total_seconds() * 1000, 1))
        silent_since = last_ok.stopped if last_ok else (row.next_run if row else None)
        if row is None:
            beat["stale"] = "missing: run ensure_schedules"
        elif _beyond_interval(row, job, now):
            beat["stale"] = (f"not due until {row.next_run:%Y-%m-%d %H:%M} UTC, further away than its "
                             f"{job.minutes}-minute interval: run ensure_schedules")
        elif silent_since and now - silent_since > timedelta(minutes=2 * job.minutes):
            beat["stale"] = (f"silent since {silent_since:%Y-%m-%d %H:%M} UTC (twice its {job.minutes}-minute "
                             "interval); is a cluster running?")
        elif beat["failed"]:
            beat["stale"] = f"its last run failed at {last_run.stopped:%Y-%m-%d %H:%M} UTC"
        beats.append(beat)
    return beats


def stale_jobs(now=None):
    """[(job, reason)] of the heartbeat's stale jobs."""
    return [(beat["job"], beat["stale"]) for beat in heartbeat(now) if beat["stale"]]
