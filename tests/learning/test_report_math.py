"""The report's arithmetic (learning/core/report_math.py, no Django): the period a
query asks for, the checkpoints, a window's composite score from snapshot
sums, directions and the projection to the target."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest

from learning.core import report_math
from learning.core.report_math import Period, PeriodError, WindowSums

NOW = datetime(2026, 11, 24, 16, 30, tzinfo=dt_timezone.utc)


def test_it_reads_days_or_start_and_end_and_defaults_to_30_days():
    assert report_math.parse_period({}, NOW) == Period(NOW - timedelta(days=30), NOW)
    assert report_math.parse_period({"days": "7"}, NOW) == Period(NOW - timedelta(days=7), NOW)
    period = report_math.parse_period({"start": "2026-11-01", "end": "2026-11-10"}, NOW)
    assert period == Period(datetime(2026, 11, 1, tzinfo=dt_timezone.utc),
                            datetime(2026, 11, 11, tzinfo=dt_timezone.utc))
    assert period.days == 10 and period.window(9) == (datetime(2026, 11, 10, tzinfo=dt_timezone.utc), period.end)
    # An end of today is cut at now; its last day window is short.
    today = report_math.parse_period({"start": "2026-11-20", "end": "2026-11-24"}, NOW)
    assert today.end == NOW and today.days == 5 and today.window(4)[1] == NOW


@pytest.mark.parametrize("query", [
    {"days": "0"}, {"days": "91"}, {"days": "-3"}, {"days": "abc"}, {"days": "7", "start": "2026-11-01"},
    {"start": "2026-11-01"}, {"end": "2026-11-01"}, {"start": "2026-11-10", "end": "2026-11-01"},
    {"start": "2026-13-01", "end": "2026-12-02"}, {"start": "yesterday", "end": "2026-11-01"},
    {"start": "2026-11-25", "end": "2026-11-26"}, {"start": "2026-08-01", "end": "2026-08-31"},
])
def test_it_refuses_a_malformed_period(query):
    with pytest.raises(PeriodError):
        report_math.parse_period(query, NOW)


def test_it_puts_checkpoints_at_day_0_every_week_and_the_last_day():
    assert report_math.checkpoint_days(30) == [0, 7, 14, 21, 30]
    assert report_math.checkpoint_days(14) == [0, 7, 14]
    assert report_math.checkpoint_days(10) == [0, 10]
    assert report_math.checkpoint_days(90)[-3:] == [70, 77, 90]
    assert [report_math.checkpoint_window(day) for day in (0, 7, 30)] == [0, 6, 29]


def test_it_scores_a_window_from_its_snapshots_task_weighted_sums():
    # 20 tasks at the design's golden day 0; satisfaction and efficiency on 10 of them only.
    sums = WindowSums(tasks=20, success=15.0, ms=20 * 12_600.0, errors=3.0, satisfaction=7.0, satisfaction_tasks=10,
                      efficiency=5.0, efficiency_tasks=10)
    parts = report_math.components(sums)
    assert (parts.success_rate, parts.avg_ms, parts.time_score, parts.error_rate, parts.satisfaction,
            parts.efficiency) == pytest.approx((0.75, 12_600, 0.58, 0.15, 0.70, 0.50))
    assert parts.score == pytest.approx(0.6935)
    without = report_math.components(WindowSums(tasks=10, success=7.5, ms=126_000.0, errors=1.5))
    assert without.satisfaction is None
    assert without.score == pytest.approx((0.3 * 0.75 + 0.2 * 0.58 + 0.15 * 0.85) / 0.65)
    assert report_math.components(WindowSums(0, 0, 0, 0)) is None


def test_it_says_which_way_a_component_went_and_whether_that_is_good():
    assert report_math.direction(0.75, 0.82, True, 3) == ("up", "better")
    assert report_math.direction(3500, 3100, False, 0) == ("down", "better")
    assert report_math.direction(0.12, 0.15, False, 3) == ("up", "worse")
    assert report_math.direction(0.7001, 0.7004, True, 3) == ("flat", "same")  # equal as shown
    assert report_math.direction(None, 0.5, True, 3) == (None, None)


def test_it_projects_the_target_on_the_least_squares_line():
    start = NOW - timedelta(days=30)
    days = [day + 0.5 for day in range(30)]
    rising = [0.01 * day for day in range(30)]  # +1 point a day, 0.29 on the last day: achieved
    assert report_math.projection(days, rising, 30, 0.29, 0.2, start).words == "achieved"
    slow = [0.005 * day for day in range(30)]  # 0.2 at day 40.5
    projection = report_math.projection(days, slow, 30, slow[-1], 0.2, start)
    assert not projection.achieved and projection.slope_per_day == pytest.approx(0.005)
    assert projection.date == start + timedelta(days=40.5)
    falling = [0.1 - 0.001 * day for day in range(30)]
    assert report_math.projection(days, falling, 30, falling[-1], 0.2, start).words == "not at this trend"
    crawling = [0.00001 * day for day in range(30)]
    assert report_math.projection(days, crawling, 30, crawling[-1], 0.2, start).date is None
    assert report_math.projection([0.5], [0.1], 30, 0.1, 0.2, start).words.startswith("too few days")
