"""The improvement report page, /ops/report/ (fleet) and
/ops/agents/<id>/report/: checkpoints with directions, the target, the
attribution with its method stated, tests, mitigations, rollbacks and charts."""

import json
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.pages import report
from tests.conftest import make_agent
from tests.learning.report_helpers import constructed_history

pytestmark = pytest.mark.django_db


def figure(page, chart_id):
    return json.loads(page.split(f'id="{chart_id}">')[1].split("</script>")[0])


def test_it_shows_an_agents_month_with_its_charts(viewer, alice_history):
    response = viewer.get("/ops/agents/alice/report/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Improvement report: alice" in page and 'aria-current="page">Report</a>' in page
    assert "0.694" in page and "12,600 ms (0.580)" in page and "↑ better" in page and "→ same" in page
    assert "v1 (" in page and "live" in page and "not stored" in page
    assert "How this is computed (an estimate)" in page and "other / learning" in page
    assert "parallel-execution" in page and "+12.0 points" in page and "6 / 8 / 10" in page
    assert "20.0 % <span class=\"muted\">(20 of 100)</span>" in page
    assert "the safeguard" in page and "No rollback in this period." not in page
    score = figure(page, "report-score")
    assert score["data"][0]["name"] == "composite score" and len(score["data"][0]["y"]) == 30
    labels = [note["text"] for note in score["layout"]["annotations"]]
    legend = [trace["name"] for trace in score["data"]]
    assert "baseline 0.694" in legend and "target +20 % 0.832" in legend
    assert any(label.startswith("rollback #") for label in labels)
    assert [trace["name"] for trace in figure(page, "report-components")["data"]][:2] == [
        "success rate", "time (1 - ms/30 000)"]
    learning = figure(page, "report-learning")
    assert learning["data"][1]["y"] == [2, 2, 2, 3]  # Q entries: v1 at days 7-21, live at day 30


def test_the_change_vs_baseline_names_the_day_it_is_measured_on(viewer, alice_history):
    # The report's change is the last day with tasks, not the fleet page's
    # latest tasks: its labels say so, so the two are never the same figure.
    response = viewer.get("/ops/agents/alice/report/")
    [item] = response.context["report"].agents
    page = " ".join(response.content.decode().split())
    start = page.index('id="report-target"')
    target = page[start:page.index("</dl>", start)]
    # The day runs from the period's time of day, as the day-by-day columns do (they name its end).
    day_start = f"{item.improvement_day} {response.context['report'].start:%H:%M}"
    assert f"Change vs baseline, last day with tasks (the 24 h from {day_start} UTC)</dt>" in target
    assert "Improvement" not in target
    fleet = " ".join(viewer.get("/ops/report/").content.decode().split())
    assert "Change vs baseline, each agent's last day with tasks (mean)</dt>" in fleet
    assert '<th scope="col" class="num">Change vs baseline, last day with tasks</th>' in fleet


def test_it_is_linked_from_the_agent_page(viewer, alice_history):
    page = viewer.get("/ops/agents/alice/").content.decode()
    assert 'href="/ops/agents/alice/report/"' in page


def test_it_shows_the_fleet_with_each_agent(viewer, alice_history):
    constructed_history(make_agent("bob", "core", "qe"), timezone.now())
    make_agent("carol", "perf", "qe")  # no tasks yet
    response = viewer.get("/ops/report/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "the fleet (3 agents)" in page and "0 of 3 agents achieved it" in page
    assert 'href="/ops/agents/alice/report/?"' in page and 'href="/ops/agents/bob/report/?"' in page
    assert [trace["y"] for trace in figure(page, "report-change")["data"]] == [["alice", "bob"]]
    assert "report-learning" not in page


def test_the_fleet_report_asks_no_more_queries_for_more_agents(viewer, alice_history, django_assert_max_num_queries):
    with CaptureQueriesContext(connection) as one:
        assert viewer.get("/ops/report/").status_code == 200
    for name in ("bob", "carol", "dave"):
        constructed_history(make_agent(name, "core", "qe"), timezone.now())
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert viewer.get("/ops/report/").status_code == 200
    assert len(one.captured_queries) <= 25


def test_a_checkpoints_change_that_rounds_to_zero_reads_plus_zero():
    change = {label: text for label, _, text in report.CHECKPOINT_ROWS}["Change vs baseline"]
    assert [change(SimpleNamespace(change=value)) for value in (-0.0004, -0.0006, None)] == ["+0.0 %", "-0.1 %", "—"]
