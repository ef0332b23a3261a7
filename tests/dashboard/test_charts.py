"""The chart builders and the series they draw."""

import json
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from dashboard import charts
from dashboard.pages import agent, common
from learning.models import Snapshot
from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db


def test_it_writes_numpy_arrays_and_escapes_markup():
    at = np.array(["2026-01-01T00:00", "2026-01-01T00:10"], dtype="datetime64[ms]")
    figure = json.loads(charts.compare_figure([("a", common.ScoreSeries(1, 20, at, np.array([0.5, np.nan]),
                                                                        *[np.array([])] * 5))]))
    assert figure["data"][0]["x"] == ["2026-01-01T00:00:00.000", "2026-01-01T00:10:00.000"]
    assert figure["data"][0]["y"] == [0.5, None]
    text = charts.fleet_change_figure(["</script><b>"], [0.1], 0.2)
    assert "</script>" not in text and "<b>" not in text
    assert json.loads(text)["data"][0]["y"] == ["</script><b>"]


def test_sparklines_share_one_axis_and_mark_the_baseline_and_target():
    steep = charts.sparkline_svg(np.array([0.5, 0.9]), (0.4, 1.0), baseline=0.5, target=0.6)
    gentle = charts.sparkline_svg(np.array([0.5, 0.55]), (0.4, 1.0))
    assert steep.count("<line") == 2 and gentle.count("<line") == 0
    rise = [float(point.split(",")[1]) for point in steep.split('points="')[1].split('"')[0].split()]
    small = [float(point.split(",")[1]) for point in gentle.split('points="')[1].split('"')[0].split()]
    assert rise[0] == small[0] and rise[0] - rise[1] > 4 * (small[0] - small[1])
    assert charts.sparkline_svg(np.array([0.5, np.nan]), (0.4, 1.0)) is None


def test_change_bars_are_coloured_by_where_they_stand():
    assert charts.BAND_COLOURS["below-zero"] in charts.change_bar(-0.05, (-0.1, 0.3), 0.2)
    assert charts.BAND_COLOURS["below-target"] in charts.change_bar(0.05, (-0.1, 0.3), 0.2)
    assert charts.BAND_COLOURS["on-target"] in charts.change_bar(0.25, (-0.1, 0.3), 0.2)
    assert "+25.0 % against a target of +20 %" in charts.change_bar(0.25, (-0.1, 0.3), 0.2)


@pytest.mark.parametrize("change, band, words", [
    (-0.0004, "below-target", "+0.0 %"),  # rounds to zero: not below zero, and no "-0.0"
    (-0.0006, "below-zero", "-0.1 %"),
    (0.19996, "on-target", "+20.0 %"),  # written as the target: on it
])
def test_a_changes_band_and_words_follow_the_number_as_written(change, band, words):
    assert charts.change_band(change, 0.2) == band
    bar = charts.change_bar(change, (-0.1, 0.3), 0.2)
    assert charts.BAND_COLOURS[band] in bar and f"{words} against a target of +20 %" in bar
    trace = json.loads(charts.fleet_change_figure(["a"], [change], 0.2))["data"][0]
    mark = {"below-zero": "▼", "below-target": "▽", "on-target": "▲"}[band]
    assert trace["text"] == [f"{mark} {words}"] and trace["marker"]["color"] == [charts.BAND_COLOURS[band]]
    assert trace["customdata"] == [words] and "%{customdata}" in trace["hovertemplate"]  # not plotly's "-0.0"


def test_the_score_series_follows_the_snapshots(alice):
    for index in range(40):
        run_task(alice, success=index % 2 == 0)
    series = agent.score_series(alice, timezone.now() - timedelta(days=1))
    snapshots = list(Snapshot.objects.filter(agent=alice).order_by("last_task"))
    assert len(series.at) == 4 and np.allclose(series.score, [s.score for s in snapshots])
    assert np.allclose(series.success_rate, [0.5] * 4)
    assert np.isnan(series.satisfaction).all()
    at, epsilon = agent.epsilon_series(alice, series)
    assert len(at) == 40 and epsilon[0] == pytest.approx(0.3) and epsilon[-1] < epsilon[0]


def test_long_windows_are_averaged_in_the_database(alice, monkeypatch):
    monkeypatch.setattr(common, "MAX_POINTS", 2)
    for _ in range(40):
        run_task(alice)
    series = agent.score_series(alice, timezone.now() - timedelta(days=1))
    assert len(series.at) < Snapshot.objects.filter(agent=alice).count()
    assert series.bucket_tasks == 20
    at, _ = agent.epsilon_series(alice, series)
    assert len(at) == 3  # tasks 1-19, 20-39, 40


def test_an_empty_window_has_no_series(alice):
    run_task(alice)
    assert agent.score_series(alice, timezone.now() - timedelta(days=1)) is None


def test_time_axes_write_iso_dates_at_every_spacing():
    week = np.array(["2026-01-01T00:00", "2026-01-08T00:00"], dtype="datetime64[ms]")
    axis = json.loads(charts.compare_figure([("a", common.ScoreSeries(
        1, 20, week, np.array([0.5, 0.6]), *[np.array([])] * 5))]))["layout"]["xaxis"]
    assert [stop["value"] for stop in axis["tickformatstops"]] == ["%H:%M:%S\n%Y-%m-%d", "%H:%M\n%Y-%m-%d", "%Y-%m-%d"]
    overhead = json.loads(charts.overhead_figure({}, 100, timezone.now() - timedelta(days=7), timezone.now()))
    assert overhead["layout"]["xaxis"]["tickformatstops"] == axis["tickformatstops"]


def test_a_negative_change_bar_leaves_room_for_its_text_inside_the_plot():
    axis = json.loads(charts.fleet_change_figure(["a", "b"], [-0.1, 0.3], 0.2))["layout"]["xaxis"]
    low, high = axis["range"]
    assert low < -10 and high > 30  # percent: beyond both bars, so neither text leaves the plot
