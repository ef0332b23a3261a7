"""The live learning overhead: a task's recommendation and report record
each stage of the learning, and the whole requests, once per task."""

import time
from datetime import UTC, datetime

import pytest

from learning import overhead
from tests.learning.helpers import recommend, report, run_task, task
from tests.learning.overhead_helpers import rows_by_stage

pytestmark = pytest.mark.django_db


def test_it_records_every_stage_of_a_task_once(alice, overhead_buffer):
    run_task(alice)
    run_task(alice, success=False)
    overhead_buffer.flush(time.time())
    rows = rows_by_stage()
    assert list(rows) == sorted(overhead.STAGES)
    assert {stage: count for stage, (count, _, bins) in rows.items() if sum(bins) == count} == {
        stage: 2 for stage in overhead.STAGES}


def test_the_stages_of_a_report_fit_inside_the_whole_request(alice, overhead_buffer):
    run_task(alice)
    overhead_buffer.flush(time.time())
    rows = rows_by_stage()
    stages_ms = sum(total for stage, (_, total, _) in rows.items() if stage not in overhead.REQUESTS)
    assert 0 < stages_ms <= rows["report"][1]
    assert rows["recommendation"][1] > 0


def test_it_records_neither_a_repeated_report_nor_a_refused_one(alice, overhead_buffer):
    decision = recommend(alice)
    body_task = task()
    assert report(alice, decision, body_task).status_code == 201
    assert report(alice, decision, body_task).status_code == 200  # the repeat: nothing learned
    assert report(alice, body_task=task(), action={"strategy": "nonsense"}).status_code == 422
    overhead_buffer.flush(time.time())
    assert rows_by_stage()["report"][0] == 1 and rows_by_stage()["lookup"][0] == 1


def test_it_writes_at_a_minutes_first_request_and_then_holds_the_samples(alice, overhead_buffer, time_machine):
    # Both tasks in one minute (a new minute would write the second task's
    # samples too): the clock stands still; the stages are timed with
    # perf_counter, which time-machine leaves running.
    time_machine.move_to(datetime.now(UTC), tick=False)
    run_task(alice)  # the recommendation is the minute's first request: written at once
    run_task(alice)
    assert {stage: count for stage, (count, _, _) in rows_by_stage().items()} == {"recommendation": 1}
    overhead_buffer.flush(time.time())
    assert {stage: count for stage, (count, _, _) in rows_by_stage().items()} == {
        stage: 2 for stage in overhead.STAGES}
