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
    figure = json.loads(charts.sparkline_figure(at, np.array([0.5, np.nan])))
    assert figure["data"][0]["x"] == ["2026-01-01T00:00:00.000", "2026-01-01T00:10:00.000"]
    assert figure["data"][0]["y"] == [0.5, None]
    text = charts.fleet_change_figure(["</script><b>"], [0.1], 0.2)
    assert "</script>" not in text and "<b>" not in text
    assert json.loads(text)["data"][0]["y"] == ["</script><b>"]


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
