"""The records of the simulated past (versions, A/B tests, mitigations,
rollbacks, shared patterns, alerts, the world) and small pure helpers."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from learning.core import engine
from learning.harness.simulator import STRATEGIES, FleetEnvironment
from learning.models import ABTestState, AlertState, MitigationState, SharedPatternStatus

# --- helpers ---------------------------------------------------------------------------------


def epsilon(learned):
    """The exploration rate after `learned` tasks from the default config:
    engine.decayed_epsilon, with the decay of `learned` tasks at once."""
    config = engine.DEFAULT_CONFIG
    return engine.decayed_epsilon(config["exploration_rate"], config["exploration_decay"] ** learned,
                                  config["min_exploration_rate"])


# engine.decayed_epsilon over arrays, element by element: the engine's numbers exactly.
decayed_epsilons = np.vectorize(engine.decayed_epsilon, otypes=[float])


def pattern_numbers(uses, wins):
    """A shared pattern's numbers from its source's uses and wins of it, as
    sharing publishes and refreshes them (engine.pattern_confidence, the
    Wilson lower bound)."""
    return {"confidence": engine.pattern_confidence(uses, wins) if uses else 0.0,
            "success_rate": wins / uses if uses else 0.0, "lower_bound": engine.wilson_lower_bound(wins, uses),
            "uses": uses}


def utc(at):
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(at, tz=UTC)


def aware(at):
    return None if at is None else utc(at)


def iso(at):
    return utc(at).isoformat()


# --- records of the simulated past ---------------------------------------------------------


@dataclass(eq=False)
class Version:
    number: int
    reason: str
    created_at: float
    task_count: int
    score: float
    learned: tuple          # (Q, visits, successes, learned count): what a restore brings back
    applied: dict           # task type index -> (strategy index, source)
    experiences: str        # JSON, newest first
    known_good: bool = False
    pinned: bool = False
    pk: int = None

    @property
    def label(self):
        return f"v{self.number}"


@dataclass(eq=False)
class Test:
    type_index: int
    task_type: str
    intent: str
    delta: float             # treatment success over control's
    control: int             # a strategy, or None: the agent's own policy
    treatment: int
    name: str
    hypothesis: str
    source: str
    created_by: str
    mde: float
    horizon: int
    created_at: float
    control_share: float = 0.5   # the real assignment probability (broken for "srm")
    slower: bool = False
    state: str = ABTestState.DRAFT
    verdict: dict = field(default_factory=dict)
    decision: str = ""
    previous_strategy: int = None
    version_before: Version = None
    reference_score: float = None
    reference_spread: float = 0.0
    degraded_checks: int = 0
    decided_at: float = None
    applied_at: float = None
    monitor_until: float = None
    finished_at: float = None
    degrade_at: float = None
    arms: list = field(default_factory=lambda: [[0, 0, 0, 0], [0, 0, 0, 0]])  # n, successes, total ms, error tasks
    treatment_scores: list = field(default_factory=list)
    transitions: list = field(default_factory=list)
    looks: list = field(default_factory=list)
    pk: int = None
    arm_pks: tuple = (None, None)

    @property
    def control_label(self):
        return "the learned policy" if self.control is None else STRATEGIES[self.control]

    def effect(self, at):
        """Its applied strategy's effect on the task type's success at `at`."""
        if self.degrade_at is not None and at >= self.degrade_at:
            # Enough for the test's monitoring (against the winning arm's score) to
            # revert it, too little for the agent's safeguard to roll it back first.
            return -0.15
        return 0.5 * max(self.delta, 0.0)  # a test's winner gains less once it serves every task


@dataclass(eq=False)
class MitigationRecord:
    type_index: int
    failure_class: int
    adjustment: str
    strategies: list          # the implicated strategies: only they are replaced
    tasks_before: int
    failures_before: int
    activated_at: float
    activated_after_task: int
    base: tuple               # the type's tasks and failures of the class when activated
    state: str = MitigationState.ACTIVE
    tasks_after: int = 0
    failures_after: int = 0
    concluded_at: float = None
    pk: int = None


@dataclass(eq=False)
class RollbackRecord:
    from_version: Version
    to_version: Version
    automatic: bool
    actor: str
    reason: str
    numbers: dict
    created_at: float
    task_index: int
    undo_of: "RollbackRecord" = None
    pk: int = None


@dataclass(eq=False)
class Shared:
    agent: str
    type_index: int
    task_type: str
    strategy: int
    published_slot: int
    published_at: float
    source_version: str
    numbers: dict            # the latest, as the sharing job refreshes them
    uuid: uuid.UUID
    published_numbers: dict = None
    status: str = SharedPatternStatus.ACTIVE
    quarantined_at: float = None
    quarantine_reason: str = ""
    quarantined_slot: int = None
    targets: list = field(default_factory=list)


@dataclass(eq=False)
class AlertRecord:
    agent: str
    kind: str
    severity: str
    summary: object          # text, or a function of the records' primary keys
    numbers: dict
    dedup: object
    created_at: float
    occurrences: int = 1
    last_seen_at: float = None
    state: str = AlertState.FIRING
    acknowledged_by: str = ""
    acknowledged_at: float = None
    note: str = ""
    resolved_at: float = None
    silenced_until: float = None
    pk: int = None


@dataclass
class World:
    seed: int
    now: float
    start: float
    slots: int
    env: FleetEnvironment
    capture_every: int
    loop_mde: float

