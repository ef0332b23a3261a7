"""The fleet page's time range (?range=): it sets the window of every
sparkline and of the trend read from it, and the words that name the trend
say which window."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.pages.fleet import SPARK_POINTS, fleet_rows
from learning.models import Snapshot

pytestmark = pytest.mark.django_db


def snapshots(agent, scores_by_hours_ago):
    now = timezone.now()
    Snapshot.objects.bulk_create([
        Snapshot(agent=agent, first_task=1, last_task=10, tasks=10, success_rate=score, avg_execution_ms=100.0,
                 error_rate=0.0, score=score, created_at=now - timedelta(hours=hours))
        for hours, score in scores_by_hours_ago])


@pytest.fixture
def falling_week_rising_day(alice):
    """Alice fell from 0.9 to about 0.5 over the week, and rose from 0.4 to 0.6 in the last day."""
    snapshots(alice, [(150, 0.9), (140, 0.9), (130, 0.85), (100, 0.7), (60, 0.5), (40, 0.45)])
    snapshots(alice, [(20, 0.4), (18, 0.4), (12, 0.5), (6, 0.55), (2, 0.6), (1, 0.6)])


def row_of(response, agent_id="alice"):
    return next(row for row in response.context["rows"] if row.agent.agent_id == agent_id)


def test_the_trend_is_read_over_the_chosen_range(viewer, falling_week_rising_day):
    assert row_of(viewer.get("/ops/?range=24h")).trend == "rising"
    assert row_of(viewer.get("/ops/?range=7d")).trend == "falling"


def test_the_trend_filter_keeps_to_the_chosen_range(viewer, falling_week_rising_day):
    assert [row.agent.agent_id for row in viewer.get("/ops/?range=7d&trend=falling").context["rows"]] == ["alice"]
    assert viewer.get("/ops/?range=24h&trend=falling").context["rows"] == []


def test_the_sparkline_spans_the_range_in_equal_spans_of_time(viewer, falling_week_rising_day):
    row = row_of(viewer.get("/ops/?range=7d"))
    assert len(row.spark_score) == SPARK_POINTS
    # The first span starts at the week's first snapshot; the last holds the last hour's.
    assert row.spark_score[0] == pytest.approx(0.9) and row.spark_score[-1] == pytest.approx(0.6)
    assert row.sparkline.count("<polyline") == 1


def test_the_rows_read_the_sparkline_over_the_reach_they_are_given(falling_week_rising_day):
    now = timezone.now()
    [day] = fleet_rows(now, timedelta(hours=24))[0]
    [week] = fleet_rows(now, timedelta(days=7))[0]
    assert day.spark_score[0] == pytest.approx(0.4) and week.spark_score[0] == pytest.approx(0.9)
    with pytest.raises(TypeError):
        fleet_rows(now)  # no default reach: the fleet page's is 24 h, the compare page's its own


def test_the_words_name_the_range(viewer, falling_week_rising_day):
    page = " ".join(viewer.get("/ops/?range=7d").content.decode().split())
    assert '<label for="filter-trend">Trend, last 7 days</label>' in page
    assert "Trend, last 7 days<span" in page  # the column's heading
    assert "Trend: the snapshots of the last 7 days" in page
    assert '<option value="7d" selected>last 7 days</option>' in page


def test_the_filters_tiles_and_agent_links_keep_the_range(viewer, falling_week_rising_day):
    page = viewer.get("/ops/?range=7d&state=waiting").content.decode()
    assert '<input type="hidden" name="range" value="7d">' in page  # the filter form
    assert 'href="?range=7d&amp;state=degraded"' in page  # a tile
    assert 'href="?range=7d&amp;sort=state">Clear the filters' in page
    assert 'href="/ops/agents/alice/?range=7d"' in page
    # The range picker keeps the filters.
    assert '<input type="hidden" name="state" value="waiting">' in page


def test_the_default_is_the_last_24_hours(viewer, falling_week_rising_day):
    response = viewer.get("/ops/")
    assert response.context["range"] == "24h" and row_of(response).trend == "rising"
    assert 'href="/ops/agents/alice/"' in response.content.decode()


def test_an_unknown_range_is_refused(viewer):
    response = viewer.get("/ops/?range=week")
    assert response.status_code == 400 and "range must be one of: 1h, 24h, 7d, 30d, 90d." in response.content.decode()


def test_compare_reads_the_trend_over_its_own_range(viewer, falling_week_rising_day, bob):
    response = viewer.get("/ops/compare/?agent=alice&agent=bob&range=7d")
    assert response.context["compared"][0].trend == "falling"
    assert '<th scope="row">Trend, last 7 days</th>' in response.content.decode()
