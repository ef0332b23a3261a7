"""The report's downloads: JSON and CSV with the page's numbers (one builder
makes all three), and an agent's decision log streamed as CSV with the
logged probabilities."""

import csv
import io

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from learning.report import DECISION_COLUMNS
from tests.conftest import make_agent
from tests.learning.helpers import recommend, run_task
from tests.learning.report_helpers import constructed_history

pytestmark = pytest.mark.django_db


def rows_of(response):
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_it_downloads_the_report_as_json_with_the_pages_numbers(viewer, alice_history):
    response = viewer.get("/ops/agents/alice/report.json?days=30")
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="qefleet-report-alice-')
    data = response.json()
    assert data["scope"] == "alice" and data["days"] == 30 and data["fleet"] is None
    (agent,) = data["agents"]
    page = viewer.get("/ops/agents/alice/report/?days=30").content.decode()
    for point in agent["checkpoints"]:
        assert f"{point['score']:.3f}" in page and f"{point['change'] * 100:+.1f} %" in page
    assert f"{agent['improvement'] * 100:+.1f} %" in page and agent["projection"]["words"] in page
    (strategy,) = agent["strategies"]
    assert f"{strategy['points'] * 100:+.1f} points" in page and f"{agent['other'] * 100:+.1f} points" in page
    (rollback,) = agent["rollbacks"]
    assert f"{rollback['score_before']:.3f}" in page and f"{rollback['change']:+.3f}" in page


def test_it_downloads_the_report_as_csv_with_the_same_values(viewer, alice_history):
    response = viewer.get("/ops/agents/alice/report.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].endswith('.csv"')
    rows = rows_of(response)
    assert list(rows[0]) == ["section", "agent", "item", "field", "value"]
    data = viewer.get("/ops/agents/alice/report.json").json()["agents"][0]
    found = {(row["section"], row["item"], row["field"]): row["value"] for row in rows}
    for point in data["checkpoints"]:
        assert float(found["checkpoints", point["label"], "score"]) == point["score"]
        assert found.get(("checkpoints", point["label"], "directions.score")) == point["directions"].get("score")
    assert float(found["summary", "", "improvement"]) == data["improvement"]
    assert found["projection", "", "words"] == data["projection"]["words"]
    assert float(found["strategies", "A/B test #%d" % data["strategies"][0]["abtest"], "points"]) == pytest.approx(0.12)
    assert {row["section"] for row in rows} >= {"period", "summary", "projection", "checkpoints", "daily",
                                                "strategies", "abtests", "mitigations", "rollbacks"}


def test_it_downloads_the_fleet_with_its_summary_and_every_agent(viewer, alice_history):
    constructed_history(make_agent("bob", "core", "qe"), timezone.now())
    data = viewer.get("/ops/report.json").json()
    assert data["scope"] == "fleet" and [agent["agent"] for agent in data["agents"]] == ["alice", "bob"]
    assert data["fleet"]["checkpoints"][0]["score"] == pytest.approx(0.6935)
    rows = rows_of(viewer.get("/ops/report.csv"))
    assert {row["agent"] for row in rows} == {"", "fleet", "alice", "bob"}
    assert float(next(row["value"] for row in rows if (row["agent"], row["section"], row["item"], row["field"]) == (
        "fleet", "checkpoints", "day 0", "score"))) == data["fleet"]["checkpoints"][0]["score"]


def test_it_streams_the_decisions_and_executions_with_their_probabilities(viewer):
    alice = make_agent("alice")
    outcomes = [run_task(alice, success=index % 2 == 0) for index in range(3)]
    unreported = recommend(alice)
    response = viewer.get("/ops/agents/alice/decisions.csv?days=1")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"].startswith('attachment; filename="qefleet-decisions-alice-')
    rows = rows_of(response)
    assert len(rows) == 4 and list(rows[0]) == list(DECISION_COLUMNS)
    assert rows[3]["decision_id"] == unreported["decision_id"] and rows[3]["epsilon"] != ""
    assert all(rows[3][column] == "" for column in DECISION_COLUMNS[13:])
    for row, (decision, result) in zip(rows, outcomes):
        assert row["decision_id"] == decision["decision_id"] and row["strategy"] == decision["strategy"]
        assert float(row["propensity"]) == pytest.approx(decision["propensity"], abs=1e-6)  # the API rounds
        assert row["explored"] == str(decision["explored"]) and row["state_key"] == decision["state_key"]
        assert int(row["execution_id"]) == result["execution_id"]
        assert float(row["reward"]) == pytest.approx(result["reward"], abs=1e-6) and row["success"] in ("True", "False")
    assert [row["success"] for row in rows] == ["True", "False", "True", ""]


# Cells a spreadsheet evaluates as a formula, written by agents (task ids, A/B
# test names, abort reasons) or by anyone who names a thing.
FORMULAS = ("=cmd|' /C calc'!A0", "+HYPERLINK(\"http://evil.example\",\"x\")", "@SUM(1+1)", "-2+3",
            "\tnoted", "\r=1+1", " =1+1", "＝1+1")


def test_it_writes_no_cell_a_spreadsheet_would_evaluate_in_either_csv(viewer, alice_history):
    for task_id in FORMULAS:
        run_task(alice_history, id=task_id)
    test = alice_history.abtests.get()
    test.name, test.decision = FORMULAS[0], FORMULAS[2]
    test.save(update_fields=["name", "decision"])
    alice_history.rollbacks.update(reason=FORMULAS[3])
    report_rows = rows_of(viewer.get("/ops/agents/alice/report.csv"))
    decision_rows = rows_of(viewer.get("/ops/agents/alice/decisions.csv?days=1"))
    cells = [value for row in report_rows + decision_rows for value in row.values()]
    assert [cell for cell in cells if cell.lstrip()[:1] in ("=", "+", "-", "@", "＝") or cell[:1] in ("\t", "\r")
            if not _is_number(cell)] == []
    found = {(row["section"], row["field"]): row["value"] for row in report_rows}
    assert found["abtests", "name"] == "'" + FORMULAS[0] and found["abtests", "decision"] == "'" + FORMULAS[2]
    assert found["rollbacks", "reason"] == "'" + FORMULAS[3]
    assert [row["task_id"] for row in decision_rows][-len(FORMULAS):] == ["'" + task_id for task_id in FORMULAS]
    assert any(cell.startswith("-") for cell in cells)  # negative numbers stay numbers


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_both_downloads_carry_the_incidents_prevented(viewer, alice):
    from learning.models import Rollback
    from tests.learning.drill_helpers import logged_history

    logged_history(alice, tasks=100)
    Rollback.objects.create(agent=alice, automatic=True, numbers={"reference": 0.8, "window_score": 0.7})
    found = viewer.get("/ops/agents/alice/report.json?days=7").json()["incidents_prevented"]
    (incident,) = found["incidents"]
    assert incident["agent"] == "alice" and incident["kind"] == "rollback" and incident["drop"] == pytest.approx(0.1)
    assert found["harm"] == pytest.approx(incident["drop"] * incident["tasks"])
    rows = [row for row in rows_of(viewer.get("/ops/agents/alice/report.csv?days=7"))
            if row["section"] == "incidents_prevented"]
    assert {"drop", "tasks", "harm"} <= {row["field"] for row in rows}
    assert next(row for row in rows if row["agent"] == "" and row["field"] == "harm")["value"] == str(found["harm"])
