"""The asynchronous client: `Client`'s operations, awaited. The requests,
the retry rule, the fallback and the report queue are the same code (core.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any, Self

import httpx

from .core import Call, Core, Delivery, TaskRunBase, as_task, finish
from .errors import ApiError, Unavailable
from .models import (
    Action,
    Event,
    Execution,
    Feedback,
    FeedbackReceipt,
    Hint,
    LearningStatus,
    MemoryEntry,
    Page,
    Recommendation,
    Result,
    Task,
)
from .retry import next_delay


class AsyncClient(Core):
    """QE Fleet over HTTP for asyncio agents; see `Client` for each operation."""

    def __init__(
        self, url=None, token=None, agent=None, *, transport: httpx.AsyncBaseTransport | None = None, **options
    ):
        super().__init__(url, token, agent, **options)
        self._http = httpx.AsyncClient(transport=transport, **self._client_options())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    async def _send(self, call: Call):
        deadline = time.monotonic() + call.budget
        attempt = 0
        while True:
            try:
                outcome = await self._http.request(
                    call.method,
                    call.path,
                    json=call.json,
                    params=call.params,
                    headers=call.headers,
                    timeout=self._timeout(deadline - time.monotonic()),
                )
            except httpx.TransportError as error:
                outcome = error
            delay = next_delay(self.settings, attempt, outcome, deadline - time.monotonic())
            if delay is None:
                return finish(call, outcome)
            await asyncio.sleep(delay)
            attempt += 1

    async def recommend(
        self, task: Task | dict, agent: str | None = None, own_strategy: str | None = None
    ) -> Recommendation:
        task, agent = as_task(task), self._agent(agent)
        try:
            return self._remember(agent, task, await self._send(self._recommend_call(agent, task, own_strategy)))
        except Unavailable:
            return self._fallback(agent, task)

    async def report(
        self,
        task: Task | dict,
        result: Result,
        *,
        recommendation: Recommendation | None = None,
        action: Action | None = None,
        feedback: Feedback | None = None,
        next_task: Task | dict | None = None,
        idempotency_key: str | None = None,
        agent: str | None = None,
    ) -> Delivery:
        agent = self._agent(agent)
        body = self._report_body(as_task(task), result, recommendation, action, feedback, next_task)
        key = idempotency_key or str(uuid.uuid4())
        if await self.flush(agent):
            try:
                return Delivery(key, await self._send(self._report_call(agent, body, key)))
            except Unavailable:
                pass
        self._queue(agent).put(agent, key, body)
        return Delivery(key, None)

    async def flush(self, agent: str | None = None) -> bool:
        queue = self._queue(self._agent(agent))
        if not len(queue):
            return True
        with queue.draining():
            for queued in queue.pending():
                try:
                    await self._send(self._report_call(queued.agent, queued.body, queued.idempotency_key))
                except ApiError as error:
                    queue.reject(queued, str(error))
                    continue
                except Unavailable:
                    return False
                queue.done(queued)
        return True

    def task(self, task: Task | dict, agent: str | None = None) -> AsyncTaskRun:
        """`async with client.task(Task(type="unit-test")) as t: ...; await t.report(True)`."""
        return AsyncTaskRun(self, task, agent)

    async def feedback(self, execution_id: int, rating: float, issues=(), agent: str | None = None) -> FeedbackReceipt:
        return await self._send(self._feedback_call(self._agent(agent), execution_id, Feedback(rating, list(issues))))

    async def learning_status(self, agent: str | None = None) -> LearningStatus:
        return await self._send(self._learning_call(self._agent(agent)))

    async def memory_get(self, partition: str, key: str, swarm: str | None = None) -> MemoryEntry:
        return await self._send(self._memory_get_call(partition, key, swarm))

    async def memory_put(
        self,
        partition: str,
        key: str,
        value: Any,
        *,
        ttl_seconds: int | None = None,
        access_level: str | None = None,
        metadata: dict | None = None,
    ) -> MemoryEntry:
        return await self._send(self._memory_put_call(partition, key, value, ttl_seconds, access_level, metadata))

    async def memory_delete(self, partition: str, key: str) -> None:
        return await self._send(self._memory_delete_call(partition, key))

    async def memory_query(
        self, partition: str, prefix: str = "", limit: int = 50, cursor: str | None = None, swarm: str | None = None
    ) -> Page[MemoryEntry]:
        return await self._send(self._memory_query_call(partition, prefix, limit, cursor, swarm))

    async def add_hint(
        self, key: str, value: Any, *, ttl_seconds: int | None = None, access_level: str | None = None
    ) -> Hint:
        return await self._send(self._hint_post_call(key, value, ttl_seconds, access_level))

    async def hints(self, prefix: str = "", limit: int = 50, cursor: str | None = None) -> Page[Hint]:
        return await self._send(self._hints_call(prefix, limit, cursor))

    async def publish_event(
        self, type: str, payload: dict | None = None, *, ttl_seconds: int | None = None, access_level: str | None = None
    ) -> Event:
        return await self._send(self._event_post_call(type, payload, ttl_seconds, access_level))

    async def events(
        self,
        type: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Event]:
        return await self._send(self._events_call(type, source, since, until, limit, cursor))


class AsyncTaskRun(TaskRunBase):
    """`async with client.task(...) as t`: as `TaskRun`, with `await t.report(...)`."""

    async def __aenter__(self) -> Self:
        self._start(await self.client.recommend(self.task, self.agent))
        return self

    async def report(
        self,
        success: bool | Result = True,
        *,
        errors=(),
        execution_time_ms: int | None = None,
        coverage: float | None = None,
        user_satisfaction: float | None = None,
        resource_efficiency: float | None = None,
        feedback: Feedback | None = None,
        next_task: Task | dict | None = None,
    ) -> Delivery:
        result = self._result(success, errors, execution_time_ms, coverage, user_satisfaction, resource_efficiency)
        self.delivery = await self.client.report(
            self.task,
            result,
            recommendation=self.recommendation,
            feedback=feedback,
            next_task=next_task,
            idempotency_key=self.idempotency_key,
            agent=self.agent,
        )
        return self.delivery

    @property
    def execution(self) -> Execution | None:
        return self.delivery.execution if self.delivery else None

    async def __aexit__(self, exc_type, exc, tb):
        if self.delivery is None:
            await self.report(exc is None, errors=[exc] if exc is not None else ())
        return False
