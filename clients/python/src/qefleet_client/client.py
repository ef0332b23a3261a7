"""The synchronous client."""

from __future__ import annotations

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


class Client(Core):
    """QE Fleet over HTTP. Settings come from QEFLEET_URL, QEFLEET_TOKEN and
    QEFLEET_AGENT unless given here; any `Settings` field can be overridden
    as a keyword (fallback_after=1.0, state_dir=...)."""

    def __init__(self, url=None, token=None, agent=None, *, transport: httpx.BaseTransport | None = None, **options):
        super().__init__(url, token, agent, **options)
        self._http = httpx.Client(transport=transport, **self._client_options())

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, call: Call):
        deadline = time.monotonic() + call.budget
        attempt = 0
        while True:
            try:
                outcome = self._http.request(
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
            time.sleep(delay)
            attempt += 1

    # --- learning ---------------------------------------------------------

    def recommend(
        self, task: Task | dict, agent: str | None = None, own_strategy: str | None = None
    ) -> Recommendation:
        """The strategy to run `task` with; never raises for an unreachable
        server: after `fallback_after` seconds it answers the fallback
        (`source` "last-known" or "default"). `own_strategy`: the catalog
        strategy the agent means to run, which an agent in shadow mode gets
        back (`mode` "shadow")."""
        task, agent = as_task(task), self._agent(agent)
        try:
            return self._remember(agent, task, self._send(self._recommend_call(agent, task, own_strategy)))
        except Unavailable:
            return self._fallback(agent, task)

    def report(
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
        """Report how a task went. Retried under one Idempotency-Key, so it
        counts once; if the server stays unreachable it is queued on disk
        and delivered by a later report or `flush()`. Raises ApiError only
        when the server refuses the report itself (4xx)."""
        agent = self._agent(agent)
        body = self._report_body(as_task(task), result, recommendation, action, feedback, next_task)
        key = idempotency_key or str(uuid.uuid4())
        if self.flush(agent):
            try:
                return Delivery(key, self._send(self._report_call(agent, body, key)))
            except Unavailable:
                pass
        self._queue(agent).put(agent, key, body)
        return Delivery(key, None)

    def flush(self, agent: str | None = None) -> bool:
        """Deliver the queued reports, oldest first; whether none is left."""
        queue = self._queue(self._agent(agent))
        if not len(queue):
            return True
        with queue.draining():
            for queued in queue.pending():
                try:
                    self._send(self._report_call(queued.agent, queued.body, queued.idempotency_key))
                except ApiError as error:
                    queue.reject(queued, str(error))
                    continue
                except Unavailable:
                    return False
                queue.done(queued)
        return True

    def task(self, task: Task | dict, agent: str | None = None) -> TaskRun:
        """`with client.task(Task(type="unit-test")) as t: ...; t.report(True)`."""
        return TaskRun(self, task, agent)

    def feedback(self, execution_id: int, rating: float, issues=(), agent: str | None = None) -> FeedbackReceipt:
        return self._send(self._feedback_call(self._agent(agent), execution_id, Feedback(rating, list(issues))))

    def learning_status(self, agent: str | None = None) -> LearningStatus:
        return self._send(self._learning_call(self._agent(agent)))

    # --- memory, hints, events ------------------------------------------------

    def memory_get(self, partition: str, key: str, swarm: str | None = None) -> MemoryEntry:
        return self._send(self._memory_get_call(partition, key, swarm))

    def memory_put(
        self,
        partition: str,
        key: str,
        value: Any,
        *,
        ttl_seconds: int | None = None,
        access_level: str | None = None,
        metadata: dict | None = None,
    ) -> MemoryEntry:
        return self._send(self._memory_put_call(partition, key, value, ttl_seconds, access_level, metadata))

    def memory_delete(self, partition: str, key: str) -> None:
        return self._send(self._memory_delete_call(partition, key))

    def memory_query(
        self, partition: str, prefix: str = "", limit: int = 50, cursor: str | None = None, swarm: str | None = None
    ) -> Page[MemoryEntry]:
        return self._send(self._memory_query_call(partition, prefix, limit, cursor, swarm))

    def add_hint(
        self, key: str, value: Any, *, ttl_seconds: int | None = None, access_level: str | None = None
    ) -> Hint:
        return self._send(self._hint_post_call(key, value, ttl_seconds, access_level))

    def hints(self, prefix: str = "", limit: int = 50, cursor: str | None = None) -> Page[Hint]:
        return self._send(self._hints_call(prefix, limit, cursor))

    def publish_event(
        self, type: str, payload: dict | None = None, *, ttl_seconds: int | None = None, access_level: str | None = None
    ) -> Event:
        return self._send(self._event_post_call(type, payload, ttl_seconds, access_level))

    def events(
        self,
        type: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Event]:
        return self._send(self._events_call(type, source, since, until, limit, cursor))


class TaskRun(TaskRunBase):
    """The `with client.task(...) as t` block. Leaving it without a report
    reports for you: a success, or the exception that ended the block as a
    failure (the exception still propagates)."""

    def __enter__(self) -> Self:
        self._start(self.client.recommend(self.task, self.agent))
        return self

    def report(
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
        self.delivery = self.client.report(
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

    def __exit__(self, exc_type, exc, tb):
        if self.delivery is None:
            self.report(exc is None, errors=[exc] if exc is not None else ())
        return False
