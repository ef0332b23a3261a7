"""The asyncio client on the same live server: the task block, and the
fallback plus queue when nothing listens."""

import asyncio

from qefleet_client import AsyncClient, Task


def test_an_async_task_block_reports_once(server, tmp_path):
    async def run():
        patient = {"timeout": 60.0, "fallback_after": 120.0, "report_budget": 120.0, "call_budget": 120.0}
        async with AsyncClient(
            server.url, server.tokens["py-async"], "py-async", state_dir=tmp_path, **patient
        ) as client:
            async with client.task(Task(type="unit-test")) as t:
                assert t.recommendation.source == "server"
                await t.report(True, coverage=0.5)
            return t.delivery, (await client.learning_status()).tasks

    delivery, tasks = asyncio.run(run())
    assert tasks >= 1
    assert [row[0] for row in server.executions(delivery.idempotency_key)] == [delivery.execution.execution_id]


def test_async_fallback_and_queue_when_nothing_listens(server, tmp_path):
    from live_server import free_port

    async def run():
        async with AsyncClient(
            f"http://127.0.0.1:{free_port()}",
            "no-token",
            "py-async",
            state_dir=tmp_path,
            fallback_after=0.5,
            report_budget=0.5,
        ) as client:
            async with client.task(Task(type="unit-test")) as t:
                assert t.recommendation.source == "default"
            return t.delivery, len(client._queue("py-async"))

    delivery, queued = asyncio.run(run())
    assert delivery.queued and queued == 1
