"""With the server down: the recommendation falls back within its bound,
reports wait on disk; after the restart each is delivered exactly once."""

import time

from qefleet_client import Task

BOUND = 1.5


def test_stopped_server_fallback_queue_and_exactly_once_delivery(running_server, make_client):
    server = running_server
    client = make_client("py-offline", fallback_after=BOUND, report_budget=1.0)
    learned = client.recommend(Task(type="e2e-test"))
    assert learned.source == "server"

    server.stop()
    started = time.monotonic()
    known = client.recommend(Task(type="e2e-test"))
    assert time.monotonic() - started < BOUND + 0.5
    assert (known.source, known.strategy, known.decision_id) == ("last-known", learned.strategy, None)
    unknown = client.recommend(Task(type="never-seen"))
    assert (unknown.source, unknown.strategy) == ("default", "sequential-execution")

    keys = []
    for task_type in ("e2e-test", "never-seen", "e2e-test"):
        with client.task(Task(type=task_type)) as t:
            t.report(task_type == "e2e-test", errors=[] if task_type == "e2e-test" else [RuntimeError("boom")])
        assert t.delivery.queued
        keys.append(t.delivery.idempotency_key)
    assert len(client._queue("py-offline")) == 3

    server.start()
    assert all(server.executions(key) == [] for key in keys)
    restarted = make_client("py-offline")  # same state directory: the agent's next process delivers
    assert restarted.flush()
    assert restarted.flush()  # nothing left: delivering again sends nothing
    assert len(client._queue("py-offline")) == 0
    assert [len(server.executions(key)) for key in keys] == [1, 1, 1]
    assert client.recommend(Task(type="e2e-test")).source == "server"
