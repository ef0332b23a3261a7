from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.scheduler import scheduler

from qefleet import schedules
from qefleet.memory.models import Event

pytestmark = pytest.mark.django_db

SWEEPER = "qefleet.memory.sweep_expired"


@pytest.fixture(autouse=True)
def schedules_due_now():
    """migrate timed the schedules when the test database was built; a slow suite can be
    two intervals past that by the time a test here runs, which makes every job stale."""
    Schedule.objects.update(next_run=timezone.now())


def test_migrate_leaves_exactly_one_sweeper_schedule():
    # post_migrate has run when the test database was built.
    schedule = Schedule.objects.get(name=SWEEPER)
    assert schedule.func == "learning.jobs.sweep_expired"
    assert schedule.schedule_type == Schedule.MINUTES and schedule.repeats == -1


def test_ensure_schedules_is_idempotent(capsys):
    call_command("ensure_schedules")
    call_command("ensure_schedules")
    assert Schedule.objects.filter(name=SWEEPER).count() == 1
    assert "created 0, updated 0, removed 0" in capsys.readouterr().out


def test_it_repairs_edited_and_removes_stale_schedules():
    Schedule.objects.filter(name=SWEEPER).update(minutes=999)
    Schedule.objects.create(name="qefleet.retired.job", func="math.floor", schedule_type=Schedule.MINUTES, minutes=5)
    Schedule.objects.create(name="someone-elses", func="math.floor", schedule_type=Schedule.MINUTES, minutes=5)
    assert schedules.ensure_schedules() == (0, 1, 1)
    assert Schedule.objects.get(name=SWEEPER).minutes == 10
    registered = {job.name for job in schedules.jobs()}
    assert SWEEPER in registered
    assert set(Schedule.objects.values_list("name", flat=True)) == registered | {"someone-elses"}


def test_registered_names_must_be_namespaced():
    with pytest.raises(ValueError):
        schedules.register("sweep", "math.floor", 5)


def test_the_scheduler_runs_the_sweeper(monkeypatch, alice):
    monkeypatch.setattr(Conf, "SYNC", True)
    alice.client.post("events", {"type": "t", "ttl_seconds": 1})
    Event.with_expired.update(expires_at=timezone.now() - timedelta(seconds=1))
    Schedule.objects.filter(name=SWEEPER).update(next_run=timezone.now() - timedelta(minutes=1))
    scheduler()
    assert not Event.with_expired.exists()
    assert Schedule.objects.get(name=SWEEPER).next_run > timezone.now()


def test_late_and_failing_jobs_raise_one_alert_each():
    from django_q.models import Task

    from learning.jobs import watch_schedules
    from learning.models import Alert

    assert watch_schedules() == {"stale": []}
    # Never succeeded and due two intervals ago: silent for twice its interval.
    Schedule.objects.filter(name=SWEEPER).update(next_run=timezone.now() - timedelta(hours=2))
    Task.objects.create(id="t1", name="t1", func="learning.jobs.every_slot", group="qefleet.learning.every_slot",
                        started=timezone.now(), stopped=timezone.now(), success=False)
    assert sorted(watch_schedules()["stale"]) == ["qefleet.learning.every_slot", SWEEPER]
    watch_schedules()
    assert Alert.objects.filter(kind="schedule:stale").count() == 2
    assert "silent since" in Alert.objects.get(dedup_key=f"schedule:{SWEEPER}").summary


def test_a_stale_jobs_alert_resolves_when_the_heartbeat_says_on_time_again():
    from django_q.models import Task

    from learning.jobs import watch_schedules
    from learning.models import Alert, AlertState

    Schedule.objects.filter(name=SWEEPER).update(next_run=timezone.now() - timedelta(hours=2))
    assert watch_schedules()["stale"] == [SWEEPER]
    alert = Alert.objects.get(kind="schedule:stale")
    assert alert.state == AlertState.FIRING
    Task.objects.create(id="t1", name="t1", func="learning.jobs.sweep_expired", group=SWEEPER,
                        started=timezone.now(), stopped=timezone.now(), success=True)
    assert watch_schedules() == {"stale": []}
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolved_at is not None
    assert "on time again" in alert.note
    # Late again later: a new alert fires rather than the resolved one counting on.
    Task.objects.filter(pk="t1").update(stopped=timezone.now() - timedelta(hours=2))
    watch_schedules()
    assert Alert.objects.filter(kind="schedule:stale", state=AlertState.FIRING).count() == 1


def test_the_heartbeat_reports_each_jobs_last_run():
    from django_q.models import Task

    started = timezone.now() - timedelta(minutes=3)
    Task.objects.create(id="ok", name="ok", func="learning.jobs.improvement_cycle",
                        group="qefleet.learning.improvement_cycle", started=started, stopped=started + timedelta(milliseconds=420), success=True,
                        result={"cycles": 17, "tests_created": 2})
    beats = {beat["job"].name: beat for beat in schedules.heartbeat()}
    assert set(beats) == {job.name for job in schedules.jobs()}
    cycle = beats["qefleet.learning.improvement_cycle"]
    assert cycle["duration_ms"] == 420.0 and cycle["result"] == {"cycles": 17, "tests_created": 2}
    assert cycle["stale"] is None and cycle["failed"] is False
    assert beats[SWEEPER]["last_success"] is None


def test_the_heartbeat_reads_the_newest_runs_and_the_last_success_before_a_failure():
    from django_q.models import Task

    now = timezone.now()
    for minutes, success in ((14, True), (12, True), (10, False)):
        at = now - timedelta(minutes=minutes)
        Task.objects.create(id=f"sweep-{minutes}", name=f"sweep-{minutes}", func="learning.jobs.sweep_expired",
                            group=SWEEPER, started=at, stopped=at + timedelta(milliseconds=5), success=success)
    at = now - timedelta(minutes=1)
    Task.objects.create(id="cycle", name="cycle", func="learning.jobs.improvement_cycle",
                        group="qefleet.learning.improvement_cycle", started=at, stopped=at, success=True)
    beats = {beat["job"].name: beat for beat in schedules.heartbeat()}
    assert beats[SWEEPER]["failed"] is True and beats[SWEEPER]["last_success"] == now - timedelta(minutes=12, milliseconds=-5)
    assert beats[SWEEPER]["stale"].startswith("its last run failed at")
    assert beats["qefleet.learning.improvement_cycle"]["failed"] is False
    assert beats["qefleet.learning.improvement_cycle"]["last_success"] == at


def test_a_job_silent_for_twice_its_interval_is_stale():
    from django_q.models import Task

    long_ago = timezone.now() - timedelta(minutes=2 * 10 + 1)
    Task.objects.create(id="old", name="old", func="learning.jobs.sweep_expired", group=SWEEPER,
                        started=long_ago, stopped=long_ago, success=True)
    assert "silent since" in dict((job.name, reason) for job, reason in schedules.stale_jobs())[SWEEPER]



def test_it_retimes_the_schedules_when_the_slot_shrinks(settings, monkeypatch):
    """The README's fast-loop recipe (`CYCLE_SLOT_SECONDS=60 make run`) on a
    database an hour-slot `make run` left behind."""
    from django_q.models import Task

    from learning import jobs

    cycle = "qefleet.learning.improvement_cycle"
    Schedule.objects.filter(name=cycle).update(minutes=60, next_run=timezone.now() + timedelta(minutes=59))
    monkeypatch.setattr(schedules, "_jobs", dict(schedules._jobs))
    settings.CYCLE_SLOT_SECONDS = 60
    jobs.register()
    schedules.ensure_schedules()
    schedule = Schedule.objects.get(name=cycle)
    assert schedule.minutes == 1 and schedule.next_run <= timezone.now()
    monkeypatch.setattr(Conf, "SYNC", True)
    Schedule.objects.exclude(name=cycle).update(next_run=timezone.now() + timedelta(days=1))
    scheduler()
    assert Task.objects.filter(group=cycle, success=True).exists()


def test_it_retimes_a_schedule_further_away_than_its_interval():
    # Left so by an ensure_schedules that changed the interval and kept the time.
    Schedule.objects.filter(name=SWEEPER).update(next_run=timezone.now() + timedelta(minutes=50))
    assert schedules.ensure_schedules() == (0, 1, 0)
    assert Schedule.objects.get(name=SWEEPER).next_run <= timezone.now()


def test_it_keeps_the_time_of_a_schedule_due_within_its_interval():
    soon = timezone.now() + timedelta(minutes=3)
    Schedule.objects.filter(name=SWEEPER).update(next_run=soon)
    assert schedules.ensure_schedules() == (0, 0, 0)
    assert Schedule.objects.get(name=SWEEPER).next_run == soon


def test_the_heartbeat_blames_a_schedule_timed_beyond_its_interval_not_the_cluster():
    from django_q.models import Task

    ran = timezone.now() - timedelta(minutes=30)
    Task.objects.create(id="old", name="old", func="learning.jobs.sweep_expired", group=SWEEPER,
                        started=ran, stopped=ran, success=True)
    Schedule.objects.filter(name=SWEEPER).update(next_run=timezone.now() + timedelta(minutes=50))
    reason = dict((job.name, reason) for job, reason in schedules.stale_jobs())[SWEEPER]
    assert "run ensure_schedules" in reason and "cluster" not in reason
