"""Request and response shapes of the learning API (README, "The API in brief")."""

from typing import Any, Literal
from uuid import UUID

from ninja import Schema
from pydantic import Field, StrictBool

from qefleet.memory.schemas import In

from .core import stats

Probability = Field(ge=0, le=1)


class TaskIn(In):
    id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    complexity: float = Probability
    required_capabilities: list[str] = Field(default_factory=list, max_length=100)
    previous_attempts: int = Field(0, ge=0, le=1000)
    available_resources: float = Probability
    time_constraint_ms: int | None = Field(None, ge=0, le=86_400_000)
    context: dict[str, Any] | None = None


class RecommendationIn(In):
    task: TaskIn
    own_strategy: str | None = Field(None, min_length=1, max_length=64, description=(
        "The catalog strategy the agent intends to run. Used in shadow mode, where the agent's own choice is what "
        "runs (absent: the catalog default); must name an active strategy in any mode."))


class Alternative(Schema):
    strategy: str
    action_key: str
    confidence: float


class AbtestRef(Schema):
    id: int
    arm: Literal["control", "treatment"]


class RecommendationOut(Schema):
    decision_id: UUID
    strategy: str
    parallelization: float
    retry_policy: str
    action_key: str
    state_key: str
    confidence: float
    expected_improvement: float
    reasoning: str
    alternatives: list[Alternative]
    explored: bool
    propensity: float
    policy_version: str | None = Field(description="The live state version and the updates since it, e.g. v12+37.")
    abtest: AbtestRef | None = Field(None, description="Present when a running A/B test chose the strategy.")
    mode: Literal["active", "shadow"] = Field(description=(
        "shadow: the agent's own choice (or the catalog default) with propensity 1; the learned policy's choice is "
        "logged, not returned (README, \"Shadow mode\")."))


class ExecutedActionIn(In):
    strategy: str = Field(min_length=1, max_length=64)
    parallelization: float = Probability
    retry_policy: Literal["none", "fixed", "exponential", "adaptive"]


class ErrorIn(In):
    type: str = Field(min_length=1, max_length=100)
    message: str = Field("", max_length=2000)


class ResultIn(In):
    success: StrictBool
    execution_time_ms: int = Field(ge=0, le=86_400_000)
    errors: list[ErrorIn] = Field(default_factory=list, max_length=100)
    coverage: float | None = Field(None, ge=0, le=1)
    user_satisfaction: float | None = Field(None, ge=0, le=1)
    resource_efficiency: float | None = Field(None, ge=0, le=1)


class FeedbackIn(In):
    rating: float = Probability
    issues: list[str] = Field(default_factory=list, max_length=100)


class ExecutionIn(In):
    decision_id: UUID | None = None
    task: TaskIn
    action: ExecutedActionIn | None = Field(None, description="Required without decision_id.")
    result: ResultIn
    feedback: FeedbackIn | None = None
    next_task: TaskIn | None = None


class LearnedPatternOut(Schema):
    pattern: str
    uses: int
    success_rate: float
    confidence: float


class SafeguardOut(Schema):
    state: Literal["insufficient-data", "ok", "warning", "degraded"]
    consecutive_degraded: int
    change_pct: float | None


class ExecutionOut(Schema):
    execution_id: int
    reward: float
    previous_q_value: float
    q_value: float
    exploration_rate: float
    patterns: list[LearnedPatternOut]
    learning_enabled: bool
    safeguard: SafeguardOut
    rolled_back: bool


class FeedbackOut(Schema):
    execution_id: int
    satisfaction: float


class AppliedOut(Schema):
    task_type: str
    strategy: str
    source: str


class BorrowedSourceOut(Schema):
    source: str = Field(description="The decision's source as logged (`fallback`).")
    words: str
    decisions: int


class RegretOut(Schema):
    per_task: float = Field(description="Success-rate points lost per task against the fleet's best known strategy "
                                        "of each (task type, state), 0.05 = 5 points.")
    low: float = Field(description="95 % interval, sampling error only (README, \"Is it learning?\").")
    high: float
    tasks: int = Field(description="The window's tasks in cells where the fleet knows a best strategy.")
    cells: int
    min_strategy_tasks: int = Field(description="Tasks a strategy needs in a cell to count as known.")


class PatternUseOut(Schema):
    imports: int = Field(description="Swarm patterns this agent imported.")
    imports_unused: int = Field(description="Of them, those no decision of this agent's window came from.")
    shared_imports: int = Field(description="Imports by swarm mates of patterns this agent shared.")
    shared_unused: int = Field(description="Of them, those no decision of the importer's window came from.")


class ThresholdsOut(Schema):
    min_outcomes: int
    min_changed_share: float
    max_default_share: float
    min_strategy_tasks: int = Field(description="Tasks a strategy needs in a (task type, state) to count as known.")


class LearningHealthOut(Schema):
    """"Is it learning?" over the agent's last `window_tasks` tasks."""

    window_tasks: int
    verdict: Literal["learning", "not-learning", "mostly-default", "too-early", "learning-off"]
    verdict_words: str
    outcomes: int = Field(description="Reported tasks in the window.")
    outcomes_changing_values: int = Field(description="Of them, those whose update moved the learned value.")
    changed_share: float | None
    states_seen: int = Field(description="(task type, state) pairs the window's tasks were in.")
    states_learned: int = Field(description="Of them, those this agent holds learned values for now.")
    coverage: float | None
    decisions: int = Field(description="The window's tasks that came with a logged decision.")
    own: int = Field(description="Decisions from the state's own learned values.")
    borrowed: int = Field(description="Decisions borrowed (a nearby state, the swarm's pooled values, an imported "
                                      "pattern) or set for it (an applied strategy, an A/B test's arm, its own "
                                      "choice in shadow); borrowed_sources names each.")
    default: int = Field(description="Decisions that fell back to the catalog default.")
    explored: int
    own_share: float | None
    borrowed_share: float | None
    default_share: float | None
    explored_share: float | None
    borrowed_sources: list[BorrowedSourceOut]
    regret: RegretOut | None
    patterns: PatternUseOut
    thresholds: ThresholdsOut


class WhatIfRefusal(Schema):
    reason: Literal["no_logs", "no_overlap", "too_few_effective_samples"]
    message: str
    effective_samples: float | None = None
    unsupported: float | None = None
    unlogged: float | None = None


class ShadowEstimate(Schema):
    value: float
    low: float = Field(description="95 % interval (bootstrap; the learned one widened for cells no log shows).")
    high: float


class ShadowOut(Schema):
    """An agent in shadow (learning/shadow.py): what it ran against what the learned policy would have chosen."""

    since: str
    decisions: int = Field(description="Recommendations answered in shadow since `since`.")
    reported: int = Field(description="Of them, those reported: the estimates' tasks.")
    agreement: float | None = Field(description="Share of shadow decisions where the learned choice was the "
                                                "agent's own.")
    estimator: Literal["doubly robust"] = Field(description=(
        "The learned policy's success rate is estimated doubly robustly, with a reward model from these tasks and "
        "the reference logs (its swarm's and its own from before shadow): the agent's own choices are "
        "deterministic, so importance weighting alone cannot estimate a policy that disagrees with them."))
    reference_tasks: int = Field(description="Logged tasks the reward model borrows from.")
    own: ShadowEstimate | None = Field(description="The agent's own success rate on its shadow tasks (observed).")
    learned: ShadowEstimate | None = Field(description="The learned policy's estimated success rate on them.")
    lift: ShadowEstimate | None = Field(description="learned − own, success-rate points as a fraction.")
    refused: WhatIfRefusal | None = Field(description="Why the logs cannot estimate the learned policy, if so.")
    margin: float = Field(description="The lower bound of `lift` must exceed this to promote (0.02 = 2 points).")
    min_decisions: int
    promotes: bool = Field(description="The rule is met: the next cycle slot promotes the agent to active.")
    rule_words: str


class LearningOut(Schema):
    agent_id: str
    enabled: bool
    mode: Literal["active", "shadow"]
    shadow: ShadowOut | None = Field(description="Present in shadow mode.")
    exploration_rate: float
    tasks: int
    q_entries: int
    patterns: int
    score: float | None
    baseline: float | None
    improvement: float | None
    target_achieved: bool
    policy_version: str | None
    safeguard: SafeguardOut | None
    applied_strategies: list[AppliedOut]
    learning_health: LearningHealthOut


class ABTestIn(In):
    agent: str = Field(min_length=1, max_length=64)
    task_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    control: str | None = Field(None, min_length=1, max_length=64,
                                description="A catalog strategy; absent: the agent's own learned policy.")
    treatment: str = Field(min_length=1, max_length=64, description="The strategy tested against it.")
    name: str = Field("", max_length=200)
    hypothesis: str = Field("", max_length=2000)
    mde: float = Field(0.10, ge=stats.MDE_RANGE[0], le=stats.MDE_RANGE[1],
                       description="Minimum detectable effect in success rate (0.10 = 10 points).")
    power: float = Field(0.80, ge=stats.POWER_RANGE[0], le=stats.POWER_RANGE[1])
    control_weight: float = Field(0.5, ge=stats.CONTROL_WEIGHT_RANGE[0], le=stats.CONTROL_WEIGHT_RANGE[1],
                                  description="Share of tasks assigned to the control.")
    start: StrictBool = True


class ArmOut(Schema):
    role: Literal["control", "treatment"]
    strategy: str | None = Field(description="None: the agent's own learned policy.")
    label: str
    weight: float
    n: int
    success_rate: float
    mean_ms: float
    error_rate: float
    score: float


class TransitionOut(Schema):
    from_state: str | None
    to_state: str
    reason: str
    at: str


class ABTestOut(Schema):
    id: int
    agent: str
    task_type: str
    name: str
    hypothesis: str
    state: str
    source: str
    created_by: str
    mde: float
    power: float
    horizon: int | None
    arms: list[ArmOut]
    verdict: dict[str, Any]
    decision: str
    previous_strategy: str | None
    transitions: list[TransitionOut]
    created_at: str
    started_at: str | None
    decided_at: str | None
    applied_at: str | None
    monitor_until: str | None
    finished_at: str | None


class ABTestPage(Schema):
    items: list[ABTestOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


# --- what-if (offline evaluation) ---------------------------------------------------------


class WhatIfIn(In):
    policy: Literal["fixed", "version", "current"] = Field(
        description="fixed: always `strategy` for `task_type`; version: the greedy policy of the agent's stored "
                    "`version`; current: the agent's live learned policy at `exploration_rate`.")
    agent: str | None = Field(None, min_length=1, max_length=64, description="One agent (needed for version and "
                                                                            "current); absent: `team` or the swarm.")
    team: str | None = Field(None, min_length=1, max_length=64)
    task_type: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    strategy: str | None = Field(None, min_length=1, max_length=64)
    version: int | None = Field(None, ge=1)
    exploration_rate: float | None = Field(None, ge=0, le=1)
    days: int = Field(30, ge=1, le=365, description="The window of logged tasks.")


class WhatIfEstimate(Schema):
    value: float
    low: float
    high: float


class WhatIfMetric(Schema):
    snips: WhatIfEstimate
    doubly_robust: WhatIfEstimate
    logged: WhatIfEstimate
    lift: WhatIfEstimate
    effective_samples: float
    rows: int
    unsupported: float
    level: float


class WhatIfOut(Schema):
    policy: str
    task_type: str | None
    days: int
    rows: int
    without_propensity: int
    since: str
    in_sample: bool = Field(description="The policy learned from the tasks it is evaluated on: leans optimistic.")
    success: WhatIfMetric | None = None
    score: WhatIfMetric | None = None
    effective_samples: float | None = None
    tasks_per_day: float | None = None
    refused: WhatIfRefusal | None = None
class StatisticsHealthOut(Schema):
    """An agent's newest statistics drills (learning/drills.py): each rule's measured rate beside its nominal one."""

    agent: str
    drill_run: int
    drilled_at: str
    trigger: str
    seed: int
    logged_tasks: int
    seconds: float
    in_band: bool = Field(description="No rule out of its band (a target out of reach at the agent's noise is not).")
    state: str = Field(description="in-band, out-of-band (a rule to change), or out-of-reach (a target no "
                       "rule meets at this agent's noise, so nothing to change).")
    health: list[dict[str, Any]]
    figures: dict[str, Any]
    calibration: dict[str, Any] | None


class FleetStatisticsHealthOut(Schema):
    fleet: dict[str, Any]
    agents: list[StatisticsHealthOut]
