"""Several workers' overhead buffers add into the same minute rows."""

from datetime import UTC, datetime

import pytest

from learning import overhead
from learning.core import latency
from learning.models import OverheadMinute
from tests.learning.overhead_helpers import NOON, bins_of, rows_by_stage

pytestmark = pytest.mark.django_db


def test_two_workers_flushing_the_same_minute_add_up():
    first, second = overhead.OverheadBuffer(), overhead.OverheadBuffer()
    first.add([("report", 2.0), ("commit", 0.3)] * 3, NOON + 5)
    second.add([("report", 40.0), ("commit", 0.5)] * 2, NOON + 20)
    assert first.flush(NOON + 30) and second.flush(NOON + 31)
    first.add([("report", 2.0)], NOON + 50)
    first.flush(NOON + 55)
    assert OverheadMinute.objects.count() == 2
    rows = rows_by_stage()
    assert rows["report"] == (6, pytest.approx(4 * 2.0 + 2 * 40.0), bins_of(*[2.0] * 4, 40.0, 40.0))
    assert rows["commit"] == (5, pytest.approx(0.9 + 1.0), bins_of(0.3, 0.3, 0.3, 0.5, 0.5))
    (figures,) = [figures for figures in overhead.stage_figures(datetime.fromtimestamp(NOON, UTC))
                  if figures.stage == "report"]
    assert figures.samples == 6 and figures.mean == pytest.approx(88 / 6)
    assert figures.p50 == pytest.approx(2.0, rel=0.34) and figures.p99 == pytest.approx(40.0, rel=0.34)
    assert [figures.p50, figures.p99] == latency.percentiles(bins_of(*[2.0] * 4, 40.0, 40.0), (50, 99))


def test_each_minute_has_its_own_row():
    worker = overhead.OverheadBuffer()
    worker.add([("report", 1.0)], NOON + 59)
    worker.add([("report", 1.0)], NOON + 61)
    worker.flush(NOON + 62)
    assert [(row.minute.minute, row.count) for row in OverheadMinute.objects.order_by("minute")] == [(0, 1), (1, 1)]


def test_a_write_is_due_in_a_new_minute_or_after_the_flush_interval():
    worker = overhead.OverheadBuffer(flush_seconds=10)
    assert worker.add([("report", 1.0)], NOON + 1)  # the first minute this worker sees
    worker.flush(NOON + 1)
    assert not worker.add([("report", 1.0)], NOON + 5)
    assert worker.add([("report", 1.0)], NOON + 12)
    worker.flush(NOON + 12)
    assert worker.add([("report", 1.0)], NOON + 60)  # a new minute
