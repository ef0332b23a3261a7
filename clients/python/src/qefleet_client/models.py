"""The API's request and response shapes as typed dataclasses.

Each class names the OpenAPI schema it mirrors (`OPENAPI`); the client's
tests compare every field, its type and whether it is required with the
server's /api/v1/openapi.json, so the two cannot drift apart. Fields the
client adds for itself (where a recommendation came from) carry
`metadata={"local": True}` and are never sent.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

RetryPolicy = Literal["none", "fixed", "exponential", "adaptive"]
AccessLevel = Literal["private", "team", "swarm", "public", "system"]


def local(default):
    """A field the client keeps for itself: not part of the wire format."""
    return field(default=default, metadata={"local": True})


# --- requests --------------------------------------------------------------


@dataclass
class Task:
    """What the agent is about to do; `type` is what strategies are learned per."""

    OPENAPI = "TaskIn"
    type: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    complexity: float = 0.5
    available_resources: float = 1.0
    required_capabilities: list[str] = field(default_factory=list)
    previous_attempts: int = 0
    time_constraint_ms: int | None = None
    context: dict[str, Any] | None = None


@dataclass
class Action:
    """The strategy the agent actually ran (sent when there is no decision id)."""

    OPENAPI = "ExecutedActionIn"
    strategy: str
    parallelization: float
    retry_policy: RetryPolicy


@dataclass
class ErrorInfo:
    OPENAPI = "ErrorIn"
    type: str
    message: str = ""


@dataclass
class Result:
    OPENAPI = "ResultIn"
    success: bool
    execution_time_ms: int
    errors: list[ErrorInfo] = field(default_factory=list)
    coverage: float | None = None
    user_satisfaction: float | None = None
    resource_efficiency: float | None = None


@dataclass
class Feedback:
    OPENAPI = "FeedbackIn"
    rating: float
    issues: list[str] = field(default_factory=list)


@dataclass
class ExecutionReport:
    OPENAPI = "ExecutionIn"
    task: Task
    result: Result
    decision_id: str | None = None
    action: Action | None = None
    feedback: Feedback | None = None
    next_task: Task | None = None


@dataclass
class EntryIn:
    OPENAPI = "EntryIn"
    value: Any
    ttl_seconds: int | None = None
    access_level: AccessLevel | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class HintIn:
    OPENAPI = "HintIn"
    key: str
    value: Any
    ttl_seconds: int | None = None
    access_level: AccessLevel | None = None


@dataclass
class EventIn:
    OPENAPI = "EventIn"
    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    ttl_seconds: int | None = None
    access_level: AccessLevel | None = None


# --- responses -------------------------------------------------------------


@dataclass
class Alternative:
    OPENAPI = "Alternative"
    strategy: str
    action_key: str
    confidence: float


@dataclass
class AbtestRef:
    OPENAPI = "AbtestRef"
    id: int
    arm: Literal["control", "treatment"]


@dataclass
class Recommendation:
    """The strategy to run a task with.

    `source` says where it came from: "server" (a decision the server
    recorded, with its decision_id), "last-known" (the server could not be
    reached: the last strategy it recommended for this task type) or
    "default" (unreachable and nothing recommended yet: the configured default).
    """

    OPENAPI = "RecommendationOut"
    decision_id: str | None
    strategy: str
    parallelization: float
    retry_policy: RetryPolicy
    action_key: str
    state_key: str
    confidence: float
    expected_improvement: float
    reasoning: str
    alternatives: list[Alternative]
    explored: bool
    propensity: float
    policy_version: str | None
    abtest: AbtestRef | None = None
    # shadow: the agent's own choice (or the catalog default) ran with propensity 1; the server logs its learned one.
    mode: Literal["active", "shadow"] = "active"
    source: Literal["server", "last-known", "default"] = local("server")

    @property
    def fallback(self) -> bool:
        return self.source != "server"

    def action(self) -> Action:
        return Action(self.strategy, self.parallelization, self.retry_policy)


@dataclass
class LearnedPattern:
    OPENAPI = "LearnedPatternOut"
    pattern: str
    uses: int
    success_rate: float
    confidence: float


@dataclass
class Safeguard:
    OPENAPI = "SafeguardOut"
    state: Literal["insufficient-data", "ok", "warning", "degraded"]
    consecutive_degraded: int
    change_pct: float | None


@dataclass
class Execution:
    """What the server learned from one report."""

    OPENAPI = "ExecutionOut"
    execution_id: int
    reward: float
    previous_q_value: float
    q_value: float
    exploration_rate: float
    patterns: list[LearnedPattern]
    learning_enabled: bool
    safeguard: Safeguard
    rolled_back: bool


@dataclass
class FeedbackReceipt:
    OPENAPI = "FeedbackOut"
    execution_id: int
    satisfaction: float


@dataclass
class AppliedStrategy:
    OPENAPI = "AppliedOut"
    task_type: str
    strategy: str
    source: str


@dataclass
class BorrowedSource:
    OPENAPI = "BorrowedSourceOut"
    source: str
    words: str
    decisions: int


@dataclass
class Regret:
    """Success-rate points lost per task against the fleet's best known strategy (0.05 = 5 points)."""

    OPENAPI = "RegretOut"
    per_task: float
    low: float
    high: float
    tasks: int
    cells: int
    min_strategy_tasks: int


@dataclass
class PatternUse:
    OPENAPI = "PatternUseOut"
    imports: int
    imports_unused: int
    shared_imports: int
    shared_unused: int


@dataclass
class LearningThresholds:
    OPENAPI = "ThresholdsOut"
    min_outcomes: int
    min_changed_share: float
    max_default_share: float
    min_strategy_tasks: int


@dataclass
class LearningHealth:
    """"Is it learning?" over the agent's last `window_tasks` tasks."""

    OPENAPI = "LearningHealthOut"
    window_tasks: int
    verdict: Literal["learning", "not-learning", "mostly-default", "too-early", "learning-off"]
    verdict_words: str
    outcomes: int
    outcomes_changing_values: int
    changed_share: float | None
    states_seen: int
    states_learned: int
    coverage: float | None
    decisions: int
    own: int
    borrowed: int
    default: int
    explored: int
    own_share: float | None
    borrowed_share: float | None
    default_share: float | None
    explored_share: float | None
    borrowed_sources: list[BorrowedSource]
    regret: Regret | None
    patterns: PatternUse
    thresholds: LearningThresholds


@dataclass
class Refusal:
    """Why the logs cannot estimate a policy."""

    OPENAPI = "WhatIfRefusal"
    reason: Literal["no_logs", "no_overlap", "too_few_effective_samples"]
    message: str
    effective_samples: float | None = None
    unsupported: float | None = None
    unlogged: float | None = None


@dataclass
class ShadowEstimate:
    OPENAPI = "ShadowEstimate"
    value: float
    low: float
    high: float


@dataclass
class Shadow:
    """An agent in shadow: its own choices against what the learned policy would have chosen (0.02 = 2 points)."""

    OPENAPI = "ShadowOut"
    since: str
    decisions: int
    reported: int
    agreement: float | None
    estimator: Literal["doubly robust"]
    reference_tasks: int
    own: ShadowEstimate | None
    learned: ShadowEstimate | None
    lift: ShadowEstimate | None
    refused: Refusal | None
    margin: float
    min_decisions: int
    promotes: bool
    rule_words: str


@dataclass
class LearningStatus:
    OPENAPI = "LearningOut"
    agent_id: str
    enabled: bool
    mode: Literal["active", "shadow"]
    shadow: Shadow | None
    exploration_rate: float
    tasks: int
    q_entries: int
    patterns: int
    score: float | None
    baseline: float | None
    improvement: float | None
    target_achieved: bool
    policy_version: str | None
    safeguard: Safeguard | None
    applied_strategies: list[AppliedStrategy]
    learning_health: LearningHealth


@dataclass
class MemoryEntry:
    OPENAPI = "EntryOut"
    owner: str
    access_level: str
    team: str
    swarm: str
    partition: str
    key: str
    value: Any
    metadata: dict[str, Any]
    version: int | None
    created_at: datetime | None
    updated_at: datetime | None
    expires_at: datetime | None


@dataclass
class Hint:
    OPENAPI = "HintOut"
    owner: str
    access_level: str
    team: str
    swarm: str
    id: int
    key: str
    value: Any
    created_at: datetime
    expires_at: datetime | None


@dataclass
class Event:
    OPENAPI = "EventOut"
    owner: str
    access_level: str
    team: str
    swarm: str
    id: int
    type: str
    payload: dict[str, Any]
    source: str
    timestamp: datetime
    expires_at: datetime | None


T = typing.TypeVar("T")


@dataclass
class Page(typing.Generic[T]):
    """One page of a listing; pass `next_cursor` back for the next one (None on the last)."""

    items: list[T]
    next_cursor: str | None


# --- to and from JSON -------------------------------------------------------


def wire_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("local")]


def to_json(obj) -> Any:
    """A request model as JSON; unset optional fields (None) are left out."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_json(value) for f in wire_fields(obj) if (value := getattr(obj, f.name)) is not None}
    if isinstance(obj, list | tuple):
        return [to_json(item) for item in obj]
    return obj


def _parse(tp, value):
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _parse(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_parse(item, v) for v in value]
    if dataclasses.is_dataclass(tp):
        return from_json(tp, value)
    if tp is datetime:
        return datetime.fromisoformat(value)
    return value


def from_json(cls: type[T], data: dict) -> T:
    """A response model from the server's JSON; fields a newer server adds are ignored."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _parse(hints[f.name], data.get(f.name)) for f in wire_fields(cls) if f.name in data})


def page_from_json(cls: type[T], data: dict) -> Page[T]:
    return Page([from_json(cls, item) for item in data["items"]], data.get("next_cursor"))
