"""The one registry of scheduled jobs.

Apps add their jobs from AppConfig.ready(); `ensure_schedules` (run after
every migrate and as a management command) makes django-q2's Schedule rows
match the registry: it creates, updates and removes only the schedules it
owns (names starting with "qefleet."), so it is safe to run any number of times.
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


def ensure_schedules(using="default", **kwargs):
    """Make the Schedule table match the registry; returns (created, updated, removed)."""
    from django_q.models import Schedule

    created = updated = 0
    for job in jobs():
        schedule = Schedule.objects.using(using).filter(name=job.name).first()
        wanted = {"func": job.func, "schedule_type": Schedule.MINUTES, "minutes": job.minutes, "repeats": -1}
        if schedule is None:
            schedule = Schedule(name=job.name, **wanted)
            created += 1
        elif any(getattr(schedule, field) != value for field, value in wanted.items()):
            for field, value in wanted.items():
                setattr(schedule, field, value)
            updated += 1
        else:
            continue
        schedule.full_clean()
        schedule.save(using=using)
    stale = Schedule.objects.using(using).filter(name__startswith=NAMESPACE).exclude(name__in=list(_jobs))
    removed, _ = stale.delete()
    return created, updated, removed


def stale_jobs(now=None, grace_minutes=5):
    """Registered jobs that are late (not picked up an interval plus grace
    after they were due) or whose last run failed: [(job, reason)]."""
    from django.utils import timezone
    from django_q.models import Schedule, Task

    now = now or timezone.now()
    rows = {row.name: row for row in Schedule.objects.filter(name__in=list(_jobs))}
    found = []
    for job in jobs():
        row = rows.get(job.name)
        if row is None:
            found.append((job, "missing: run ensure_schedules"))
            continue
        if row.next_run and now - row.next_run > timedelta(minutes=job.minutes + grace_minutes):
            found.append((job, f"late: due {row.next_run:%Y-%m-%d %H:%M} UTC; is a cluster running?"))
            continue
        last = Task.objects.filter(group=job.name).order_by("-stopped").only("success").first()
        if last is not None and not last.success:
            found.append((job, "its last run failed"))
    return found
