"""What the sync and the async client share: the settings, the request each
operation sends, how its answer is read, the fallback and the report queue.
Only sending (and sleeping between attempts) differs between the two."""

from __future__ import annotations

import dataclasses
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from . import __version__
from .config import Settings
from .errors import ApiError, Unavailable
from .local import LastStrategies, ReportQueue
from .models import (
    Action,
    EntryIn,
    ErrorInfo,
    Event,
    EventIn,
    Execution,
    ExecutionReport,
    Feedback,
    FeedbackReceipt,
    Hint,
    HintIn,
    LearningStatus,
    MemoryEntry,
    Recommendation,
    Result,
    Task,
    from_json,
    page_from_json,
    to_json,
)
from .retry import RETRY_STATUSES


@dataclass
class Call:
    """One API operation: the request, its time budget and how to read the answer."""

    method: str
    path: str
    budget: float
    parse: Callable[[httpx.Response], Any]
    json: Any = None
    params: dict | None = None
    headers: dict | None = None


@dataclass
class Delivery:
    """What became of a report: delivered (with what the server learned) or queued on disk."""

    idempotency_key: str
    execution: Execution | None

    @property
    def queued(self) -> bool:
        return self.execution is None


def as_task(task: Task | dict) -> Task:
    return task if isinstance(task, Task) else from_json(Task, task)


def as_error(error) -> ErrorInfo:
    if isinstance(error, ErrorInfo):
        return error
    if isinstance(error, BaseException):
        return ErrorInfo(type(error).__name__, str(error)[:2000])
    if isinstance(error, tuple):
        return ErrorInfo(*error)
    return ErrorInfo(str(error))


def finish(call: Call, outcome):
    """The parsed answer of a call's last attempt, or the error it ends in."""
    if isinstance(outcome, Exception):
        raise Unavailable(f"{call.method} {call.path}: {type(outcome).__name__}: {outcome}") from outcome
    if outcome.status_code in RETRY_STATUSES or outcome.status_code >= 500:
        raise Unavailable(f"{call.method} {call.path}: HTTP {outcome.status_code}")
    if outcome.status_code >= 400:
        try:
            body = outcome.json()
        except ValueError:
            body = {}
        raise ApiError(
            outcome.status_code, body.get("error", "error"), body.get("message", outcome.text[:500]), body.get("field")
        )
    return call.parse(outcome)


def parsed(model):
    return lambda response: from_json(model, response.json())


def paged(model):
    return lambda response: page_from_json(model, response.json())


def segment(value: str) -> str:
    return quote(value, safe="")


class Core:
    """The settings and everything about an operation except sending it."""

    def __init__(self, url=None, token=None, agent=None, *, settings: Settings | None = None, **overrides):
        self.settings = settings or Settings()
        for name, value in (("url", url), ("token", token), ("agent", agent), *overrides.items()):
            if value is not None:
                setattr(self.settings, name, value)

    def _client_options(self) -> dict:
        headers = {"User-Agent": f"qefleet-client/{__version__}"}
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        options = {"base_url": self.settings.api, "headers": headers, "timeout": self.settings.timeout}
        if self.settings.api.startswith("http://"):
            # Plain HTTP never uses TLS: an empty context (one that would refuse every certificate)
            # instead of httpx loading the CA bundle, 20-60 ms per client, paid by every pytest run.
            options["verify"] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        return options

    def _agent(self, agent: str | None) -> str:
        agent = agent or self.settings.agent
        if not agent:
            raise ValueError("No agent id: pass agent= or set QEFLEET_AGENT.")
        return agent

    def _timeout(self, remaining: float) -> float:
        return max(0.05, min(self.settings.timeout, remaining))

    # --- learning ---------------------------------------------------------

    def _recommend_call(self, agent: str, task: Task, own_strategy: str | None = None) -> Call:
        body = {"task": to_json(task)}
        if own_strategy is not None:
            body["own_strategy"] = own_strategy
        return Call(
            "POST",
            f"/agents/{segment(agent)}/recommendations",
            self.settings.fallback_after,
            parsed(Recommendation),
            json=body,
        )

    def _fallback(self, agent: str, task: Task) -> Recommendation:
        recommendation = self._last_strategies(agent).recall(task.type) or dataclasses.replace(self.settings.default)
        recommendation.state_key = recommendation.state_key or task.type
        return recommendation

    def _remember(self, agent: str, task: Task, recommendation: Recommendation) -> Recommendation:
        self._last_strategies(agent).remember(task.type, recommendation)
        return recommendation

    def _last_strategies(self, agent: str) -> LastStrategies:
        return LastStrategies(self.settings.agent_dir(agent))

    def _queue(self, agent: str) -> ReportQueue:
        return ReportQueue(self.settings.agent_dir(agent), self.settings.max_queued_reports)

    def _report_body(
        self,
        task: Task,
        result: Result,
        recommendation: Recommendation | None,
        action: Action | None,
        feedback: Feedback | None,
        next_task: Task | dict | None,
    ) -> dict:
        decision_id = recommendation.decision_id if recommendation else None
        if decision_id is None and action is None:
            if recommendation is None:
                raise ValueError("Report what ran: pass the recommendation it followed, or an action.")
            action = recommendation.action()
        report = ExecutionReport(
            task=task,
            result=result,
            decision_id=decision_id,
            action=None if decision_id else action,
            feedback=feedback,
            next_task=as_task(next_task) if next_task is not None else None,
        )
        return to_json(report)

    def _report_call(self, agent: str, body: dict, idempotency_key: str) -> Call:
        return Call(
            "POST",
            f"/agents/{segment(agent)}/executions",
            self.settings.report_budget,
            parsed(Execution),
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        )

    def _feedback_call(self, agent: str, execution_id: int, feedback: Feedback) -> Call:
        return Call(
            "POST",
            f"/agents/{segment(agent)}/executions/{execution_id}/feedback",
            self.settings.call_budget,
            parsed(FeedbackReceipt),
            json=to_json(feedback),
        )

    def _learning_call(self, agent: str) -> Call:
        return Call("GET", f"/agents/{segment(agent)}/learning", self.settings.call_budget, parsed(LearningStatus))

    # --- memory, hints, events ------------------------------------------------

    def _entry_path(self, partition: str, key: str) -> str:
        return f"/memory/{segment(partition)}/{quote(key, safe='/')}"

    def _memory_get_call(self, partition, key, swarm=None) -> Call:
        return Call(
            "GET",
            self._entry_path(partition, key),
            self.settings.call_budget,
            parsed(MemoryEntry),
            params={"swarm": swarm} if swarm else None,
        )

    def _memory_put_call(self, partition, key, value, ttl_seconds, access_level, metadata) -> Call:
        return Call(
            "PUT",
            self._entry_path(partition, key),
            self.settings.call_budget,
            parsed(MemoryEntry),
            json=to_json(EntryIn(value, ttl_seconds, access_level, metadata)),
        )

    def _memory_delete_call(self, partition, key) -> Call:
        return Call("DELETE", self._entry_path(partition, key), self.settings.call_budget, lambda response: None)

    def _memory_query_call(self, partition, prefix, limit, cursor, swarm) -> Call:
        params = {"prefix": prefix, "limit": limit, "cursor": cursor, "swarm": swarm}
        return Call(
            "GET",
            f"/memory/{segment(partition)}",
            self.settings.call_budget,
            paged(MemoryEntry),
            params={k: v for k, v in params.items() if v is not None},
        )

    def _hint_post_call(self, key, value, ttl_seconds, access_level) -> Call:
        return Call(
            "POST",
            "/hints",
            self.settings.call_budget,
            parsed(Hint),
            json=to_json(HintIn(key, value, ttl_seconds, access_level)),
        )

    def _hints_call(self, prefix, limit, cursor) -> Call:
        params = {"prefix": prefix, "limit": limit, "cursor": cursor}
        return Call(
            "GET",
            "/hints",
            self.settings.call_budget,
            paged(Hint),
            params={k: v for k, v in params.items() if v is not None},
        )

    def _event_post_call(self, type, payload, ttl_seconds, access_level) -> Call:
        return Call(
            "POST",
            "/events",
            self.settings.call_budget,
            parsed(Event),
            json=to_json(EventIn(type, payload or {}, ttl_seconds, access_level)),
        )

    def _events_call(self, type, source, since, until, limit, cursor) -> Call:
        params = {
            "type": type,
            "source": source,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "limit": limit,
            "cursor": cursor,
        }
        return Call(
            "GET",
            "/events",
            self.settings.call_budget,
            paged(Event),
            params={k: v for k, v in params.items() if v is not None},
        )


class TaskRunBase:
    """One task from recommendation to report: times it, keeps the decision
    id and gives the report one Idempotency-Key for every attempt."""

    def __init__(self, client, task: Task | dict, agent: str | None):
        self.client = client
        self.task = as_task(task)
        self.agent = client._agent(agent)
        self.recommendation: Recommendation | None = None
        self.delivery: Delivery | None = None
        self.idempotency_key = str(uuid.uuid4())
        self._started = time.monotonic()

    def _start(self, recommendation: Recommendation) -> None:
        self.recommendation = recommendation
        self._started = time.monotonic()

    def _result(self, success, errors, execution_time_ms, coverage, user_satisfaction, resource_efficiency) -> Result:
        if self.delivery is not None:
            raise RuntimeError("This task was reported already.")
        if isinstance(success, Result):
            return success
        elapsed = (
            execution_time_ms if execution_time_ms is not None else round((time.monotonic() - self._started) * 1000)
        )
        return Result(
            success=bool(success),
            execution_time_ms=elapsed,
            errors=[as_error(e) for e in errors],
            coverage=coverage,
            user_satisfaction=user_satisfaction,
            resource_efficiency=resource_efficiency,
        )
