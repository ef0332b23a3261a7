"""The patterns and sharing page at /ops/patterns/, and the fleet learning
metrics the fleet overview shows too."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db.models import Avg
from django.db.models.functions import TruncDay
from django.test import Client
from django.utils import timezone

from dashboard.pages import patterns
from learning import sharing, tracker
from learning.models import ImportStatus, LearningProfile, PatternImport, SharedPattern, Snapshot
from tests.dashboard.helpers import shared_and_imported
from tests.learning.helpers import run_task
from tests.learning.sharing_helpers import swarm_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared(alice, bob, carol):
    """alice shares two patterns and bob one; the swarm imports them; bob's
    is then quarantined, one import confirmed and one rejected."""
    unit, integration = shared_and_imported(alice, ("unit-tests", "integration-tests"))
    (quarantined,) = shared_and_imported(bob, ("e2e-tests",))
    sharing.quarantine(SharedPattern.objects.filter(pk=quarantined.pk), "bob was rolled back to v1")
    PatternImport.objects.filter(agent=bob, shared=unit).update(status=ImportStatus.ACTIVE)
    PatternImport.objects.filter(agent=carol, shared=unit).update(status=ImportStatus.REJECTED)
    return unit, integration, quarantined


def test_it_requires_a_login():
    response = Client().get("/ops/patterns/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/ops/patterns/"


def test_it_says_so_before_anything_is_shared(viewer):
    page = viewer.get("/ops/patterns/").content.decode()
    assert "No agent imported a shared pattern in the last 30 days." in page and "No shared pattern yet." in page
    assert "no agent has a baseline yet" in page


def test_it_lists_shared_patterns_with_their_importers_by_status(viewer, shared):
    unit, _, quarantined = shared
    response = viewer.get("/ops/patterns/")
    rows = {pattern.pk: pattern for pattern in response.context["page"].object_list}
    assert rows[unit.pk].importers == [("active", 1), ("rejected", 1)]
    assert rows[quarantined.pk].importers == [("quarantined", 2)]
    page = response.content.decode()
    assert "<code>unit-tests:<wbr>parallel-execution</code>" in page and 'href="/ops/agents/alice/"' in page
    assert "⊘</span> quarantined" in page and "bob was rolled back to v1" in page
    assert "✓</span> active</span></span>" in page and "…</span> probation" in page
    assert f"{unit.lower_bound * 100:.1f} %" in page and unit.source_version in page


@pytest.mark.parametrize("status, expected", [("active", 2), ("quarantined", 1), ("", 3)])  # other values: 400
def test_it_filters_by_status(viewer, shared, status, expected):
    response = viewer.get(f"/ops/patterns/?status={status}")
    assert len(response.context["page"].object_list) == expected
    assert '<label for="filter-status">Status</label>' in response.content.decode()


def test_it_draws_who_imported_from_whom(viewer, shared):
    figure = json.loads(viewer.get("/ops/patterns/").context["import_figure"])
    heatmap = figure["data"][0]
    assert heatmap["type"] == "heatmap"
    matrix = patterns.import_matrix(since=timezone.now() - timedelta(days=30))
    assert (matrix.sources, matrix.importers) == (["alice", "bob"], ["alice", "bob", "carol"])
    assert matrix.counts.tolist() == [[0, 2, 2], [1, 0, 1]]
    assert matrix.in_use.tolist() == [[0, 2, 1], [0, 0, 0]]  # carol rejected one; bob's are quarantined
    assert heatmap["x"] == matrix.importers and heatmap["y"] == matrix.sources
    assert heatmap["text"] == [["", "2", "2"], ["1", "", "1"]] and heatmap["z"][0][0] is None


def test_it_charts_sharing_and_improvement_over_time(viewer, shared):
    figure = json.loads(viewer.get("/ops/patterns/").context["history_figure"])
    patterns, imports = figure["data"]  # no change against a baseline yet: no right axis
    assert patterns["y"] == [3] and imports["y"] == [6]  # all on one day
    day = patterns["x"][0][:10]
    assert [moment[:10] for moment in figure["layout"]["xaxis"]["range"]] == [
        str(np.datetime64(day) - 1), str(np.datetime64(day) + 1)]
    assert "yaxis2" not in figure["layout"]


def test_one_time_range_sets_both_charts_and_the_status_filter_keeps_it(viewer, shared):
    """The imports are moved 40 days back: the last 30 days show none of them
    in either chart, the last 90 days show them all; a range the page does
    not offer is a 400 naming it."""
    PatternImport.objects.update(imported_at=timezone.now() - timedelta(days=40))
    month = viewer.get("/ops/patterns/")
    assert month.context["range"] == "30d" and month.context["import_figure"] is None
    shared, imports = json.loads(month.context["history_figure"])["data"]
    assert shared["y"] == [3] and imports["y"] == []
    text = month.content.decode()
    assert "No agent imported a shared pattern in the last 30 days." in text
    assert '<input type="hidden" name="range" value="30d">' in text  # the status filter keeps the range
    quarter = viewer.get("/ops/patterns/?range=90d&status=active")
    assert json.loads(quarter.context["import_figure"])["data"][0]["type"] == "heatmap"
    assert "Who imported from whom, last 90 days" in quarter.content.decode()
    assert '<input type="hidden" name="status" value="active">' in quarter.content.decode()
    refused = viewer.get("/ops/patterns/?range=1h")
    assert refused.status_code == 400 and "range" in refused.content.decode()


def test_it_groups_improvement_by_the_same_utc_days_as_django(alice):
    moments = [datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC),
               datetime(2026, 3, 2, 12, 30, tzinfo=UTC)]
    Snapshot.objects.bulk_create(
        Snapshot(agent=alice, first_task=10 * index + 1, last_task=10 * index + 10, tasks=10, success_rate=0.5,
                 avg_execution_ms=100, error_rate=0.1, score=0.5, improvement=0.1 * (index + 1), created_at=moment)
        for index, moment in enumerate(moments))
    by_day = {name: list(Snapshot.objects.annotate(day=truncate("created_at")).values("day")
                         .annotate(value=Avg("improvement")).order_by("day").values_list("day", "value"))
              for name, truncate in (("ours", patterns.UTCDay), ("django", TruncDay))}
    assert by_day["ours"] == by_day["django"]
    assert [(day.day, round(value, 6)) for day, value in by_day["ours"]] == [(1, 0.1), (2, 0.25)]


def test_it_shows_the_fleet_metrics(viewer, shared, alice, bob, carol):
    swarm_agent("erin", imports_patterns=False)
    for agent in (alice, bob):
        LearningProfile.objects.filter(agent=agent).update(baseline_window=10)
    for index in range(20):
        run_task(alice, success=index % 2 == 0 or index >= 10)
        run_task(bob, success=index % 3 != 0)
    run_task(carol)
    LearningProfile.objects.filter(agent=bob).update(baseline_score=0.0)  # a baseline of 0 counts as no change
    metrics = sharing.fleet_metrics()
    assert metrics["agents_with_baseline"] == 2 and metrics["cross_agent_imports"] == 3
    # Bob's baseline of 0 counts as no change; Alice's is her tracker figure.
    alice_change = tracker.current_improvement(alice, LearningProfile.objects.get(agent=alice))[1]
    assert metrics["fleet_improvement_rate"] == pytest.approx(alice_change / 2)
    history = patterns.sharing_history(since=timezone.now() - timedelta(days=30))
    assert len(history.improvement) == 1 and not np.isnan(history.improvement[0])
    figure = json.loads(viewer.get("/ops/patterns/").context["history_figure"])
    assert figure["data"][2]["yaxis"] == "y2" and figure["data"][2]["y"] == [history.improvement[0] * 100]
    for page in (viewer.get("/ops/patterns/"), viewer.get("/ops/")):
        assert page.context["metrics"] == pytest.approx(metrics)
        text = page.content.decode()
        assert f"{metrics['fleet_improvement_rate'] * 100:+.1f} %" in text and "over 4 agents" in text
    assert 'href="/ops/patterns/"' in viewer.get("/ops/").content.decode()


def test_it_keeps_to_the_query_budget(operator, shared, django_assert_max_num_queries):
    with django_assert_max_num_queries(25):
        assert operator.get("/ops/patterns/").status_code == 200


def test_the_running_totals_are_drawn_on_to_the_charts_last_day(viewer, shared):
    """The patterns were shared and imported 3 days ago, a snapshot measured today: both totals still hold today."""
    SharedPattern.objects.update(published_at=timezone.now() - timedelta(days=3))
    PatternImport.objects.update(imported_at=timezone.now() - timedelta(days=3))
    snapshot = Snapshot.objects.create(agent=shared[0].source, first_task=1, last_task=10, tasks=10, success_rate=0.5,
                                       avg_execution_ms=100, error_rate=0.1, score=0.5, improvement=0.1)
    shared_line, imports_line, _ = json.loads(viewer.get("/ops/patterns/").context["history_figure"])["data"]
    today = snapshot.created_at.strftime("%Y-%m-%d")
    assert shared_line["y"] == [3, 3] and shared_line["x"][-1][:10] == today
    assert imports_line["y"] == [6, 6] and imports_line["x"][-1][:10] == today
