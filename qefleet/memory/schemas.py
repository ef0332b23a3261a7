"""Request and response shapes of the memory API.

Requests forbid unknown fields (so owner, team or swarm can never be
mass-assigned) and non-finite numbers.
"""

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

Level = Literal["private", "team", "swarm", "public", "system"]
PermissionName = Literal["read", "write", "delete", "share"]
TTL = Field(None, ge=0, le=10 * 365 * 24 * 3600, description="Seconds to keep; 0 keeps forever; absent uses the table's default.")
Name = Field(min_length=1, max_length=200)
# A row id sent in a body: the database's ids are positive 64-bit integers, and
# a larger number cannot even be bound as a query parameter.
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
# A GOAP cost's ceiling: a plan sums at most 100 of them, and the sum must
# stay a finite number (1e308 + 1e308 is Infinity, which JSON cannot carry).
MAX_COST = 1e12


class In(BaseModel):
    """A request body. A plain pydantic model: ninja's Schema adds a
    validator for reading ORM objects that, with extra="forbid", validates
    each nested model twice (a report's errors eight times)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def not_null(value):
    if value is None:
        raise ValueError("must not be null")
    return value


T = TypeVar("T")


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class ErrorOut(Schema):
    error: str
    message: str
    field: str | None = None


class Owned(Schema):
    owner: str
    access_level: Level
    team: str
    swarm: str


# --- agents ------------------------------------------------------------------


class AgentOut(Schema):
    agent_id: str
    type: str
    capabilities: list[Any]
    status: Literal["active", "idle", "terminated"]
    team: str
    swarm: str
    is_system: bool
    created_at: datetime
    updated_at: datetime
    last_heartbeat_at: datetime | None


class HeartbeatIn(In):
    status: Literal["active", "idle"] | None = None


# --- memory entries ----------------------------------------------------------


class EntryIn(In):
    value: Any = Field(description="Any JSON value except null.")
    ttl_seconds: int | None = TTL
    access_level: Level | None = Field(None, description="On create only; default private.")
    metadata: dict[str, Any] | None = None

    _value_not_null = field_validator("value")(not_null)


class EntryOut(Owned):
    partition: str
    key: str
    value: Any
    metadata: dict[str, Any]
    version: int | None
    created_at: datetime | None
    updated_at: datetime | None
    expires_at: datetime | None


class ClearOut(Schema):
    partition: str
    deleted: int


class AclIn(In):
    grants: dict[str, list[PermissionName]] = Field(default_factory=dict, description="agent id -> permissions")
    blocks: list[str] = Field(default_factory=list, description="agent ids denied everything; a block wins")
    access_level: Level | None = None
    owner: str | None = Field(None, description="Hand the entry to another agent (owner or system only).")


class AclOut(Owned):
    partition: str
    key: str
    grants: dict[str, list[str]]
    blocks: list[str]


# --- events and hints --------------------------------------------------------


class EventIn(In):
    type: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    payload: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int | None = TTL
    access_level: Level | None = None


class EventOut(Owned):
    id: int
    type: str
    payload: dict[str, Any]
    source: str
    timestamp: datetime
    expires_at: datetime | None


class HintIn(In):
    key: str = Field(min_length=1, max_length=512)
    value: Any
    ttl_seconds: int | None = TTL
    access_level: Level | None = None

    _value_not_null = field_validator("value")(not_null)


class HintOut(Owned):
    id: int
    key: str
    value: Any
    created_at: datetime
    expires_at: datetime | None


# --- patterns ----------------------------------------------------------------


class PatternIn(In):
    pattern: str = Field(min_length=1, max_length=255)
    confidence: float = Field(ge=0, le=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int | None = TTL
    access_level: Level | None = None


class PatternOut(Owned):
    id: int
    pattern: str
    confidence: float
    usage_count: int
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


# --- workflows ---------------------------------------------------------------


class WorkflowIn(In):
    name: str = Name
    step: str = Field("", max_length=200)
    status: str = Field("pending", min_length=1, max_length=32)
    checkpoint: dict[str, Any] = Field(default_factory=dict)
    sha: str = Field("", max_length=64)
    access_level: Level | None = None


class WorkflowUpdate(In):
    step: str | None = Field(None, max_length=200)
    status: str | None = Field(None, min_length=1, max_length=32)
    checkpoint: dict[str, Any] | None = None
    sha: str | None = Field(None, max_length=64)


class WorkflowOut(Owned):
    id: int
    name: str
    step: str
    status: str
    checkpoint: dict[str, Any]
    sha: str
    created_at: datetime
    updated_at: datetime


# --- consensus ---------------------------------------------------------------


class ProposalIn(In):
    decision: dict[str, Any]
    quorum: int = Field(ge=1, le=1000)
    ttl_seconds: int | None = TTL
    access_level: Level | None = None


class VoteIn(In):
    vote: Literal["approve", "reject"]


class ProposalOut(Owned):
    id: int
    decision: dict[str, Any]
    proposer: str
    votes: dict[str, str]
    approvals: int
    rejections: int
    quorum: int
    status: Literal["pending", "approved", "rejected"]
    version: int
    created_at: datetime
    decided_at: datetime | None
    expires_at: datetime | None


# --- artifacts and sessions --------------------------------------------------


class ArtifactIn(In):
    kind: Literal["code", "doc", "data", "config"]
    path: str = Field(min_length=1, max_length=1024)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tags: list[str] = Field(default_factory=list, max_length=50)
    metadata: dict[str, Any] = Field(default_factory=dict)
    access_level: Level | None = None


class ArtifactOut(Owned):
    id: int
    kind: str
    path: str
    sha256: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime


class SessionIn(In):
    mode: Literal["swarm", "hive-mind"] = "swarm"
    state: dict[str, Any] = Field(default_factory=dict)
    access_level: Level | None = None


class CheckpointIn(In):
    checkpoint: dict[str, Any]


class SessionOut(Owned):
    id: int
    mode: str
    state: dict[str, Any]
    checkpoints: list[dict[str, Any]]
    created_at: datetime
    last_resumed: datetime | None


# --- GOAP and OODA -----------------------------------------------------------


class GoalIn(In):
    name: str = Name
    conditions: dict[str, Any] = Field(default_factory=dict)
    cost: float = Field(0, ge=0, le=MAX_COST)
    priority: int = Field(0, ge=-1000, le=1000)
    access_level: Level | None = None


class GoalOut(Owned):
    id: int
    name: str
    conditions: dict[str, Any]
    cost: float
    priority: int
    created_at: datetime


class ActionIn(In):
    name: str = Name
    preconditions: dict[str, Any] = Field(default_factory=dict)
    effects: dict[str, Any] = Field(default_factory=dict)
    cost: float = Field(1, ge=0, le=MAX_COST)
    agent_type: str = Field("", max_length=64)
    access_level: Level | None = None


class ActionOut(Owned):
    id: int
    name: str
    preconditions: dict[str, Any]
    effects: dict[str, Any]
    cost: float
    agent_type: str
    created_at: datetime


class PlanIn(In):
    goal_id: RowId
    sequence: list[RowId] = Field(min_length=1, max_length=100, description="GOAP action ids, in order")
    access_level: Level | None = None


class PlanOut(Owned):
    id: int
    goal_id: int
    sequence: list[int]
    total_cost: float
    created_at: datetime


Phase = Literal["observe", "orient", "decide", "act"]


class OodaIn(In):
    phase: Phase = "observe"
    observations: list[Any] = Field(default_factory=list)
    access_level: Level | None = None


class OodaUpdate(In):
    """Only the fields sent change (the view dumps with exclude_unset). Each may
    be left out but never sent as null, which the table cannot hold; only
    `result` may be null."""

    phase: Phase = None
    observations: list[Any] = None
    orientation: dict[str, Any] = None
    decision: dict[str, Any] = None
    action: dict[str, Any] = None
    completed: StrictBool = None
    result: Any = None


class OodaOut(Owned):
    id: int
    phase: Phase
    observations: list[Any]
    orientation: dict[str, Any]
    decision: dict[str, Any]
    action: dict[str, Any]
    timestamp: datetime
    completed: bool
    result: Any
