"""`with client.task(...) as t` against the live server: the decision, the
timing and the Idempotency-Key are the client's business, and the report
lands as one row."""

import sqlite3
import time

import pytest
from qefleet_client import Task


def test_a_task_block_reports_its_decision_and_time_once(server, make_client):
    client = make_client("py-agent")
    with client.task(Task(type="unit-test", complexity=0.4)) as t:
        assert t.recommendation.source == "server" and t.recommendation.decision_id
        time.sleep(0.05)
        delivery = t.report(True, coverage=0.8)
    assert delivery.execution.execution_id == server.executions(delivery.idempotency_key)[0][0]
    assert len(server.executions(delivery.idempotency_key)) == 1
    with sqlite3.connect(server.database) as db:
        elapsed, decision = db.execute(
            "SELECT execution_time_ms, decision_id FROM learning_execution WHERE id = ?",
            (delivery.execution.execution_id,),
        ).fetchone()
    assert elapsed >= 50
    assert decision is not None


def test_an_exception_in_the_block_is_reported_as_a_failure_and_raised(server, make_client):
    client = make_client("py-agent")
    with pytest.raises(TimeoutError), client.task({"type": "unit-test"}) as t:
        raise TimeoutError("the suite hung")
    (row,) = server.executions(t.delivery.idempotency_key)
    assert row[1] == 0  # success = false
    assert server.count("learning_execution", id=row[0], error_count=1) == 1


def test_a_block_left_without_a_report_reports_success(server, make_client):
    with make_client("py-agent").task(Task(type="lint")) as t:
        pass
    assert server.executions(t.delivery.idempotency_key)[0][1] == 1


def test_the_learning_status_counts_the_reports(make_client):
    client = make_client("py-agent")
    before = client.learning_status().tasks
    with client.task(Task(type="unit-test")) as t:
        t.report(True)
    status = client.learning_status()
    assert status.agent_id == "py-agent" and status.tasks == before + 1
