"""Learning-overhead minutes are kept 7 days (the daily prune_history job)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from learning.jobs import prune_history
from learning.models import OverheadMinute

pytestmark = pytest.mark.django_db


def test_the_daily_prune_deletes_minutes_older_than_seven_days():
    now = timezone.now().replace(second=0, microsecond=0)
    for age in (timedelta(days=8), timedelta(days=7, minutes=1), timedelta(days=6, hours=23)):
        OverheadMinute.objects.create(minute=now - age, stage="report", count=1, total_ms=2.0)
    assert prune_history(now)["learning_overheadminute"] == 2
    assert [row.minute for row in OverheadMinute.objects.all()] == [now - timedelta(days=6, hours=23)]
