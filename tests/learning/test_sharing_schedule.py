"""Sharing runs as a scheduled job every cycle slot."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.scheduler import scheduler

from learning.models import PatternImport, SharedPattern
from qefleet import schedules
from tests.learning.sharing_helpers import learned

pytestmark = pytest.mark.django_db

JOB = "qefleet.learning.share_patterns"


def test_it_is_registered_every_cycle_slot():
    job = next(job for job in schedules.jobs() if job.name == JOB)
    assert job.func == "learning.jobs.share_patterns"
    assert job.minutes == max(1, settings.CYCLE_SLOT_SECONDS // 60)


def test_the_scheduler_runs_it(monkeypatch, alice, bob):
    monkeypatch.setattr(Conf, "SYNC", True)
    schedules.ensure_schedules()
    now = timezone.now()
    Schedule.objects.exclude(name=JOB).update(next_run=now + timedelta(days=1))
    Schedule.objects.filter(name=JOB).update(next_run=now - timedelta(minutes=1))
    learned(alice)
    scheduler()
    assert SharedPattern.objects.get().source == alice
    assert PatternImport.objects.get().agent == bob
    assert Schedule.objects.get(name=JOB).next_run > now
