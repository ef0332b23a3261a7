"""A report retried after a dropped connection or a 429 counts once: every
attempt carries the same Idempotency-Key, and the server keeps one row."""

from qefleet_client import Task


def report_through(proxy, make_client, **options):
    client = make_client("py-flaky", url=proxy.url, **options)
    with client.task(Task(type="integration-test")) as t:
        t.report(True)
    attempts = [(at, headers["idempotency-key"]) for at, line, headers in proxy.seen if line.endswith("/executions")]
    return t.delivery, attempts


def test_a_report_whose_answer_was_lost_is_sent_again_and_counts_once(server, proxy, make_client):
    proxy.plan["/executions"] = ["drop"]
    delivery, attempts = report_through(proxy, make_client)
    assert len(attempts) == 2
    assert {key for _, key in attempts} == {delivery.idempotency_key}
    (row,) = server.executions(delivery.idempotency_key)  # the server received both, learned once
    assert delivery.execution.execution_id == row[0]


def test_a_429_is_retried_after_its_retry_after(server, proxy, make_client):
    proxy.plan["/executions"] = ["429"]
    delivery, attempts = report_through(proxy, make_client)
    (first, key), (second, again) = attempts
    assert second - first >= 1.0  # Retry-After: 1
    assert key == again == delivery.idempotency_key
    assert len(server.executions(delivery.idempotency_key)) == 1
    assert not delivery.queued


def test_a_retry_after_longer_than_the_budget_queues_the_report_at_once(server, proxy, make_client, tmp_path):
    proxy.plan["/executions"] = ["429"]
    client = make_client("py-flaky", url=proxy.url, report_budget=0.5)
    with client.task(Task(type="integration-test")) as t:
        t.report(True)
    assert t.delivery.queued and server.executions(t.delivery.idempotency_key) == []
    assert make_client("py-flaky", url=proxy.url).flush()  # the queue is kept per server URL
    assert len(server.executions(t.delivery.idempotency_key)) == 1
