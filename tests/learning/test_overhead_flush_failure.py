"""A failed write of the live learning overhead never fails an agent's
request: it is logged, and the samples are written with the next try."""

import logging
import time

import pytest
from django.db import OperationalError

from learning.models import Execution, OverheadMinuteQuerySet
from tests.learning.helpers import run_task
from tests.learning.overhead_helpers import rows_by_stage

pytestmark = pytest.mark.django_db


def test_a_failed_write_is_logged_and_retried_and_the_task_is_learned(alice, overhead_buffer, monkeypatch, caplog):
    overhead_buffer.flush_seconds = 0  # every request writes
    real_add = OverheadMinuteQuerySet.add

    def locked(queryset, tallies):
        raise OperationalError("database is locked")

    monkeypatch.setattr(OverheadMinuteQuerySet, "add", locked)
    with caplog.at_level(logging.ERROR, logger="qefleet.learning.overhead"):
        _, learned = run_task(alice)
    assert Execution.objects.filter(pk=learned["execution_id"]).exists()
    assert "Could not write the learning overhead" in caplog.text
    assert rows_by_stage() == {}
    monkeypatch.setattr(OverheadMinuteQuerySet, "add", real_add)
    overhead_buffer.flush(time.time())
    assert rows_by_stage()["report"][0] == 1 and rows_by_stage()["recommendation"][0] == 1
