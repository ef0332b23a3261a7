"""A simulated past for the 17 demo agents: FOR DEMOS AND BENCHMARKS ONLY.

`python manage.py seed_history` writes months of invented learning history
into the real tables, so the dashboard, the benchmark and the 30-day report
have a long history to show. No agent did this work. The product never shows
invented data on real pages, so run it only on a demo or benchmark database:
it refuses when learning history exists already, unless told to replace the
demo agents' history.

How the past is made (one seed makes it all; only "now" moves it in time):

* Every agent works through hourly cycle slots. Its tasks come from the
  simulated fleet's world (learning/harness/simulator.py): its team's task types, six
  buckets per type with a best strategy each. Its success rate drifts up over
  the period (towards and around the 20 % improvement target), with dips: a
  few incidents, and the degradations behind the rollbacks.
* Each task runs through the real learning definitions: epsilon-greedy choice
  with decaying epsilon, scoring.reward, engine.q_update of Q(s, a), pattern
  and failure-pattern counts, the composite score. A task's success depends
  on the agent's trend, on exploring away from the bucket's best strategy,
  and on the A/B test arm or applied strategy it ran with.
* The improvement loop runs at every slot the way learning/improvement.py
  does: mitigations for frequent failure classes of the strategies that
  cause them (activated, judged after 50 tasks), A/B tests against the
  applied strategy or else the learned policy (started by the loop when its
  off-policy estimate finds an opportunity, by an operator otherwise),
  looked at with learning/core/stats.py every slot, decided, applied, monitored
  with the safeguard's rule for 7 days, kept or reverted. Tests are given an
  intended effect (a real winner, no effect, a worse treatment, a slower
  one, a broken assignment that trips the sample ratio check); the outcome
  is whatever the statistics decide.
* State versions are captured every few days (the real job captures each slot
  and prunes; keeping one every few days is what a long history looks like
  after pruning), before applying a winner and before rollbacks. Payloads
  are real compressed states whose checksums restore exactly; the last
  version is the live state. Three agents are rolled back (one automatically
  after three degraded safeguard checks, two by an operator, one of those
  undone), which aborts or reverts their tests and quarantines what they
  shared since the version they returned to.
* Patterns are shared when they pass sharing.qualifies and imported on
  probation by the swarm; two newcomers join late in the period and their
  own tasks confirm or reject what they imported.

What is written: snapshots for every slot, a sample of the tasks as
performance metrics (--samples), the last 1,000 decisions and executions of
each agent, events of the last 30 days only (their TTL; --events in total:
the loop's notable events, one `learning:improvement` per snapshot, the rest
`learning:training` of sampled tasks), improvement cycles of the last 30
days (their retention), alerts in every state and the audit events of the
operators' actions. Snapshots cover a whole slot's tasks (the live tracker
also snapshots every 10 tasks). Decisions record how a strategy was chosen
but not a mitigation's adjustment, and the fleet's tests are decided one by
one (the live review also controls the false discovery rate across them).
"""

import hashlib
import itertools
import json
import math
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from learning import abtests, improvement, mitigations, safeguard, sharing, versions
from learning.core import engine, scoring, stats
from learning.harness.simulator import (
    CAPABILITY_LEVELS,
    COMPLEXITY_LEVELS,
    ERRORS,
    FAILURE_MIX,
    STRATEGIES,
    TEST_CASES,
    FleetEnvironment,
)
from learning.models import (
    ABArm,
    ABLook,
    ABTest,
    ABTestState,
    ABTransition,
    Alert,
    AlertState,
    AppliedStrategy,
    ArmRole,
    Decision,
    Execution,
    FailurePattern,
    ImportStatus,
    ImprovementCycle,
    LearnedPattern,
    LearningProfile,
    LiveCause,
    LiveVersion,
    Mitigation,
    MitigationState,
    PatternImport,
    QEntry,
    Rollback,
    Safeguard,
    SafeguardState,
    Severity,
    SharedPattern,
    SharedPatternStatus,
    Snapshot,
    StateVersion,
    Strategy,
    VersionReason,
)
from qefleet.memory import roles
from qefleet.memory.fleet import DEMO_TEAMS, SWARM, register_demo_fleet
from qefleet.memory.models import DAY, AccessLevel, Agent, AuditEvent, Event, Pattern, PerformanceMetric

HOUR = 3600.0
MAX_DAYS = Snapshot.RETENTION_DAYS  # older history would be pruned at once
EVENT_SECONDS = Event.DEFAULT_TTL


def events_since(now):
    """Where the generated events begin: their TTL back from `now`, less an
    hour, so that none expires while the run (or a slow database) finishes."""
    return now - EVENT_SECONDS + HOUR
CYCLE_SECONDS = ImprovementCycle.RETENTION_DAYS * DAY
EXPERIENCES = engine.DEFAULT_CONFIG["max_experiences"]
BASE_TASKS_PER_HOUR = 20
TASK_TYPE_SHARE = 0.9  # of an agent's tasks in its main task type, as in the simulator
EXPLORE_PENALTY = 0.2  # success lost when exploring away from the bucket's best strategy
RESCUED = 0.25  # share of a mitigated failure class's failures that the mitigation turns into successes


def _guard_default(name):
    return Safeguard._meta.get_field(name).default


GUARD_WINDOW = _guard_default("window")
GUARD_EVERY = _guard_default("check_every")
GUARD_THRESHOLD = _guard_default("threshold_pct")
GUARD_Z = _guard_default("confidence_z")
GUARD_CONSECUTIVE = _guard_default("consecutive")
KNOWN_GOOD_AFTER = _guard_default("known_good_after")

# The states of the world's tasks: complexity x required capabilities x
# previous attempts x available resources, 24 state keys per task type.
COMPLEXITY = tuple(COMPLEXITY_LEVELS.values())
CAPABILITIES = tuple(counts[0] for counts in CAPABILITY_LEVELS.values())
ATTEMPTS = (0, 1)
RESOURCES = (0.9, 0.5)
STATE_KEYS = [engine.state_key(engine.state_vector(c, k, a, r))
              for c in COMPLEXITY for k in CAPABILITIES for a in ATTEMPTS for r in RESOURCES]
NEXT_KEYS = [engine.state_key(engine.state_vector(c, k, *engine.next_attempt(a, r)))
             for c in COMPLEXITY for k in CAPABILITIES for a in ATTEMPTS for r in RESOURCES]
NEXT_STATE = np.array([STATE_KEYS.index(key) if key in STATE_KEYS else -1 for key in NEXT_KEYS])
STATES = len(STATE_KEYS)
ACTIONS = len(STRATEGIES)

# Failure classes (engine's), and what each strategy fails with (the simulator's mix).
CLASSES = tuple(engine.MITIGATIONS)
KIND_CLASS = {kind: CLASSES.index(engine.failure_class(*templates[0])) for kind, templates in ERRORS.items()}
MIX = [(np.cumsum([weight for weight in FAILURE_MIX[name].values()]) / sum(FAILURE_MIX[name].values()),
        np.array([KIND_CLASS[kind] for kind in FAILURE_MIX[name]])) for name in STRATEGIES]
MESSAGES = {KIND_CLASS[kind]: templates[0] for kind, templates in reversed(ERRORS.items())}

# What each test is set up to show (the statistics decide what it shows).
# An agent's first test takes the next intent of INTENTS, so even a short
# history has every outcome; later ones are drawn with INTENT_WEIGHTS.
INTENTS = ("kept", "inconclusive", "reverted", "control_wins", "srm", "kept", "guardrail", "aborted",
           "inconclusive", "kept")
INTENT_WEIGHTS = {"kept": 0.34, "inconclusive": 0.24, "control_wins": 0.15, "reverted": 0.1, "guardrail": 0.06,
                  "aborted": 0.07, "srm": 0.04}
ROLES = ("auto_rollback", "rollback_and_undo", "rollback_pending", "final_running", "final_running",
         "final_running", "final_monitoring")
# One newcomer in each of the two largest teams, where most patterns are shared
# in its task types: it joins late and bootstraps from what its swarm shared.
NEWCOMERS_JOIN = 0.7  # of the period
REGULAR_CUTOFF = 10 * DAY  # before a final test, so earlier ones are done (7 monitoring days and more)


class HistoryExists(Exception):
    pass


# --- exploration, over arrays ------------------------------------------------------------


def epsilon(learned):
    """The exploration rate after `learned` tasks from the default config."""
    config = engine.DEFAULT_CONFIG
    return max(config["min_exploration_rate"], config["exploration_rate"] * config["exploration_decay"] ** learned)


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

    def text(self):
        return f"undo of rollback {self.undo_of.pk}" if self.undo_of else self.reason


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


# --- one agent's past ------------------------------------------------------------------------


class AgentPast:
    """Simulate one agent slot by slot: its tasks, its learning and its
    improvement loop, with the rollbacks its role asks for."""

    def __init__(self, world, index, agent_id, team, counts, role, intents, dips, training, samples):
        self.world = world
        self.rng = rng = np.random.default_rng([world.seed, index, 1])
        self.agent_id, self.team, self.role = agent_id, team, role
        self.types = FleetEnvironment.task_types(team)
        self.main = self.types.index(world.env.main_task_type(agent_id))
        types = len(self.types)
        self.best = np.zeros((types, len(COMPLEXITY), len(CAPABILITIES)), dtype=int)
        for t, name in enumerate(self.types):
            table = world.env.table(name)
            for c, complexity in enumerate(COMPLEXITY_LEVELS):
                for k, capabilities in enumerate(CAPABILITY_LEVELS):
                    arms = table[(complexity, capabilities)]
                    self.best[t, c, k] = STRATEGIES.index(max(arms, key=lambda name: arms[name].success))
        self.intents = iter(intents)
        self.dips = [list(dip) for dip in dips]
        self.training_wanted, self.samples_wanted = training, samples

        # The tasks, in report order; slot h holds tasks slot_lo[h]..slot_lo[h+1]-1.
        self.slot_lo = np.concatenate([[0], np.cumsum(counts)])
        n = self.n = int(self.slot_lo[-1])
        slot = np.repeat(np.arange(world.slots), counts)
        self.times = np.sort(world.start + HOUR * (slot + rng.random(n)))
        others = [t for t in range(types) if t != self.main] or [self.main]
        self.type = np.where(rng.random(n) < TASK_TYPE_SHARE, self.main,
                             np.array(others)[rng.integers(len(others), size=n)]).astype(np.int8)
        complexity, capabilities = rng.integers(len(COMPLEXITY), size=n), rng.integers(len(CAPABILITIES), size=n)
        attempts, resources = rng.random(n) < 0.1, rng.random(n) < 0.15
        self.state = (((complexity * 2 + capabilities) * 2 + attempts) * 2 + resources).astype(np.int8)
        self.best_strategy = self.best[self.type, complexity, capabilities].astype(np.int8)
        next_state = NEXT_STATE[self.state]
        self.group = (self.type.astype(np.int32) * STATES + self.state) * ACTIONS
        self.next_group = np.where(next_state >= 0, (self.type.astype(np.int32) * STATES + next_state) * ACTIONS, -1)

        # The agent's trend: success and speed improve over the period.
        span = world.slots * HOUR
        tau = rng.uniform(0.25, 0.6)
        first = self.times[0]
        progress = (1 - np.exp(-(self.times - first) / (world.start + span - first) / tau)) / (1 - math.exp(-1 / tau))
        # A newcomer works in today's world, where the fleet's success has grown.
        start = rng.uniform(0.74, 0.8) if role == "newcomer" else rng.uniform(0.68, 0.76)
        self.trend = start + rng.uniform(0.0, 0.04) * progress

        # Each task's draws, for whichever strategy and outcome it ends up with.
        self.draw = rng.random((5, n)).astype(np.float32)  # explore, arm, success, rescue, flaky error
        self.pick = rng.integers(ACTIONS, size=n).astype(np.int8)
        classes = rng.random((2, n))
        self.class_draw = np.zeros((2, ACTIONS, n), dtype=np.int8)  # first and second error's class per strategy
        for strategy, (cumulative, kinds) in enumerate(MIX):
            for which in (0, 1):
                position = np.searchsorted(cumulative, classes[which], side="right").clip(max=len(kinds) - 1)
                self.class_draw[which, strategy] = kinds[position]
        self.two_errors = rng.random(n) < 0.3
        normal = rng.standard_normal((4, n))
        self.base_ms = rng.uniform(14_000, 20_000) * (1 - 0.15 * progress) * np.exp(0.35 * normal[0])
        reported = rng.random((3, n)) < np.array([[0.5], [0.4], [0.33]])
        self.coverage_by_outcome = np.where(reported[0], np.round(np.clip(
            [0.6 + 0.1 * normal[1], 0.86 + 0.04 * normal[1]], 0, 1), 3), np.nan)  # [failed, succeeded]
        self.satisfaction_base = np.where(reported[1], 0.55 + 0.1 * progress + 0.1 * normal[2], np.nan)
        self.efficiency_base = np.where(reported[2], 0.5 + 0.08 * progress + 0.1 * normal[3], np.nan)

        # What each task turned out to be.
        self.strategy = np.zeros(n, dtype=np.int8)
        self.explored = np.zeros(n, dtype=bool)
        self.test_of = np.full(n, -1, dtype=np.int16)
        self.arm = np.full(n, -1, dtype=np.int8)
        self.fallback = np.zeros(n, dtype=np.int8)  # 0 learned, 1 applied, 2 fixed by an A/B test arm
        self.learning = np.zeros(n, dtype=bool)
        self.success = np.zeros(n, dtype=bool)
        self.ms = np.zeros(n, dtype=np.int32)
        self.errors = np.zeros(n, dtype=np.int8)
        self.classes = np.zeros(n, dtype=np.int8)   # a bit per failure class
        self.first_class = np.zeros(n, dtype=np.int8)
        self.coverage = np.full(n, np.nan, dtype=np.float32)
        self.satisfaction = np.full(n, np.nan, dtype=np.float32)
        self.efficiency = np.full(n, np.nan, dtype=np.float32)
        self.reward = np.zeros(n)
        self.score = np.zeros(n)
        self.eps = np.zeros(n, dtype=np.float32)
        self.propensity = np.zeros(n)
        self.rate_after = np.zeros(n, dtype=np.float32)  # the profile's exploration rate after the task
        self.q_before = np.zeros(n)
        self.q_after = np.zeros(n)
        self.uses_after = np.zeros(n, dtype=np.int32)
        self.successes_after = np.zeros(n, dtype=np.int32)
        # Running sums for windows of tasks: successes, ms, tasks with errors,
        # satisfaction and its reports, efficiency and its reports.
        self.sums = np.zeros((7, n + 1))
        self.done = 0

        # The learned state.
        size = types * STATES * ACTIONS
        self.q, self.visits, self.wins = [0.0] * size, [0] * size, [0] * size
        self.pattern_uses, self.pattern_wins = [0] * (types * ACTIONS), [0] * (types * ACTIONS)
        self.learned = 0
        self.applied = {}
        self.enabled = True
        self.changed = False
        self.baseline = self.baseline_at = None

        self.failures = np.zeros((types, len(CLASSES)), dtype=np.int64)      # failure patterns (while learning)
        self.type_tasks = np.zeros(types, dtype=np.int64)                    # every task, for mitigations
        self.type_failures = np.zeros((types, len(CLASSES)), dtype=np.int64)
        self.type_index = [[] for _ in range(types)]

        self.tests, self.running, self.monitoring = [], None, []
        self.next_test_at = first + rng.uniform(6, 30) * HOUR
        self.final = None
        end = world.start + span
        if role == "final_running":  # started late enough to be a fraction of the way to a typical horizon
            per_arm = TASK_TYPE_SHARE * counts[-24:].mean() / 2
            self.final = (end - min(14, max(2.2, rng.uniform(0.25, 0.45) * 200 / per_arm)) * HOUR, "running")
        elif role == "final_monitoring":
            self.final = (end - 3.5 * DAY, "monitoring")
        self.mitigations, self.latest_mitigation = [], {}
        self.versions, self.live, self.live_since = [], None, 0
        self.live_periods = []
        self.clean_since_live = True
        self.reference = None
        self.reference_score, self.reference_spread = None, 0.0
        self.watching = False
        self.degraded_run = 0
        self.rollbacks, self.alerts, self.audit, self.events = [], [], [], []
        self.shared, self.active_shared = [], {}
        self.cycles = []
        self.history_uses = np.zeros((world.slots + 1, types * ACTIONS), dtype=np.int64)
        self.history_wins = np.zeros((world.slots + 1, types * ACTIONS), dtype=np.int64)
        self.history_enabled = np.zeros(world.slots + 1, dtype=bool)
        self.history_enabled[0] = self.slot_lo[1] > 0
        self.agenda = []
        self.offsets = rng.uniform(1, 40, size=(world.slots + 1, 4))  # snapshot, capture, sharing, cycle
        self.offsets.sort(axis=1)
        self._plan_role(end)

    # --- the role's incidents ---------------------------------------------------------------

    def _plan_role(self, end):
        start, span = self.world.start, self.world.slots * HOUR
        if self.role == "auto_rollback":
            at = start + math.floor(0.4 * self.world.slots) * HOUR + 20 * 60
            self.dips.append([at, at + 8 * HOUR, 0.5])
            self.watching, self.watch_from = True, at
        elif self.role == "rollback_and_undo":
            at = start + math.floor(0.72 * self.world.slots) * HOUR + 15 * 60
            self.dips.append([at - 16 * HOUR, at, 0.12])
            self.agenda += [(at, "rollback", (at - 16 * HOUR, "score slipping for a day; back to the last "
                                              "known-good version while we look")),
                            (at + 2 * HOUR, "undo", None), (at + 3 * HOUR, "re_enable", roles.ADMIN)]
        elif self.role == "rollback_pending":
            at = max(end - 36 * HOUR, start + 0.5 * span) + 10 * 60
            self.dips.append([at - 8 * HOUR, at, 0.18])
            self.agenda.append((at, "rollback", (at - 8 * HOUR, "flaky results since this morning; learning "
                                                 "stays off until the staging database is fixed")))
        self.agenda.sort(key=lambda item: item[0])

    # --- the main loop ---------------------------------------------------------------------

    def run(self):
        world = self.world
        for h in range(world.slots):
            boundary = world.start + h * HOUR
            self._boundary(h, boundary)
            lo, hi, end = int(self.slot_lo[h]), int(self.slot_lo[h + 1]), boundary + HOUR
            while True:
                due = self.agenda[0][0] if self.agenda and self.agenda[0][0] < end else None
                upto = hi if due is None else max(lo, min(hi, int(np.searchsorted(self.times, due))))
                while lo < upto:
                    lo = self._tasks(lo, upto)
                if due is None:
                    break
                _, kind, detail = self.agenda.pop(0)
                self._agenda(kind, detail, due)
            self._slot_end(h + 1)
        self._boundary(world.slots, world.start + world.slots * HOUR)
        self._finish()
        return self

    def _boundary(self, h, at):
        """The scheduled jobs at the start of slot h: version capture, sharing, the improvement cycle."""
        snapshot, capture, share, cycle = self.offsets[h]
        if h and (h % self.world.capture_every == 0 or h == self.world.slots):
            self.capture(VersionReason.CYCLE, at + capture)
        if self.enabled and self.done and h < self.world.slots:
            self._share(h, at + share)
            self._cycle(h, at + cycle)

    def _slot_end(self, h):
        self.history_uses[h] = self.pattern_uses
        self.history_wins[h] = self.pattern_wins
        # An agent is registered (and can import) from the slot of its first task.
        self.history_enabled[h] = self.enabled and self.slot_lo[min(h + 1, self.world.slots)] > 0
        live = self.live
        if live is None or not self.enabled:
            return
        healthy = self.clean_since_live and not self._dip(self.world.start + h * HOUR)
        if healthy and self.done - self.live_since >= KNOWN_GOOD_AFTER:
            if not live.known_good or live is self.reference:
                live.known_good = True
                self.reference = live
                scores = self.policy_scores(self.live_since, self.done, safeguard.REFERENCE_TASKS)
                self.reference_score, self.reference_spread = float(scores.mean()), stats.standard_error(scores)

    def policy_scores(self, lo, hi, count):
        """Scores of the last `count` tasks the agent's own policy chose in
        lo..hi-1: the safeguard leaves tasks an A/B test fixed to the test."""
        lo = max(lo, hi - 20 * count)  # while both arms are fixed, the policy still runs the other task types
        return self.score[lo:hi][self.fallback[lo:hi] != 2][-count:]

    def _dip(self, at):
        return sum(depth for start, end, depth in self.dips if start <= at < end)

    # --- tasks -----------------------------------------------------------------------------

    def _effects(self, types, at):
        effect = np.zeros(len(types))
        for type_index, (_, source) in self.applied.items():
            if isinstance(source, tuple) and source[0] == "abtest":
                effect[types == type_index] += source[1].effect(at)
        return effect

    def _tasks(self, lo, hi):
        """Run tasks lo..hi-1; returns where it stopped (early after an automatic rollback)."""
        span = slice(lo, hi)
        count = hi - lo
        types = self.type[span]
        explore_draw, arm_draw, success_draw, rescue_draw, flaky_draw = self.draw[:, span]
        test = self.running if self.enabled else None
        arm = np.full(count, -1)
        if test is not None:
            covered = types == test.type_index
            arm[covered] = np.where(arm_draw[covered] < test.control_share, 0, 1)
        # Tasks an arm fixes to a strategy; a control that is the learned policy chooses as usual.
        forced = (arm == 1) | ((arm == 0) & (test is not None and test.control is not None))
        greedy = self.best_strategy[span].copy()
        for type_index, (strategy, _) in self.applied.items():
            greedy[types == type_index] = strategy
        config = engine.DEFAULT_CONFIG
        if self.enabled:  # the profile's rate before each task, decayed by every task learned from
            decays = self.learned + np.arange(count)
            rate = np.maximum(config["min_exploration_rate"],
                              config["exploration_rate"] * config["exploration_decay"] ** decays)
            rate_after = np.maximum(config["min_exploration_rate"], rate * config["exploration_decay"])
            eps = np.where(forced, 0.0, rate)
        else:
            eps, rate_after = np.zeros(count), np.full(count, epsilon(self.learned))
        explored = ~forced & (explore_draw < eps)
        strategy = np.where(explored, self.pick[span], greedy)
        # engine.choose's propensity, times the arm's share when the learned policy is an arm.
        propensity = eps / ACTIONS + (1 - eps) * (strategy == greedy)
        times = self.times[span]
        chance = self.trend[span] + self._effects(types, times[0])
        chance = chance - EXPLORE_PENALTY * (explored & (strategy != greedy))
        for start, end, depth in self.dips:
            chance = chance - depth * ((times >= start) & (times < end))
        if test is not None:
            control = strategy if test.control is None else test.control
            strategy = np.where(arm == 0, control, np.where(arm == 1, test.treatment, strategy))
            chance = chance + np.where(arm == 1, test.delta, 0.0)
            propensity = np.where(forced, 0.5, np.where(arm == 0, 0.5 * propensity, propensity))
        success = success_draw < np.clip(chance, 0.02, 0.98)
        positions = np.arange(lo, hi)
        first, second = self.class_draw[0, strategy, positions], self.class_draw[1, strategy, positions]
        for (type_index, class_index), record in self.latest_mitigation.items():
            if record.state in mitigations.APPLYING and record.adjustment != "none":
                success |= ((types == type_index) & (first == class_index) & np.isin(strategy, record.strategies)
                            & (rescue_draw < RESCUED))
        two = self.two_errors[span]
        errors = np.where(success, (flaky_draw < 0.04).astype(np.int8), 1 + two)
        classes = np.where(success, 0, (1 << first) | np.where(two, 1 << second, 0))
        ms = self.base_ms[span] * np.where(success, 1.0, 1.3)
        if test is not None and test.slower:
            ms = ms * np.where(arm == 1, 1.3, 1.0)
        ms = np.maximum(50, ms).astype(np.int64)
        coverage = self.coverage_by_outcome[success.astype(np.int64), positions]
        satisfaction = np.round(np.clip(self.satisfaction_base[span] + 0.1 * success, 0, 1), 3)
        efficiency = np.round(np.clip(self.efficiency_base[span] + 0.1 * success, 0, 1), 3)
        self.strategy[span], self.explored[span], self.arm[span] = strategy, explored, arm
        self.success[span], self.ms[span], self.errors[span], self.classes[span] = success, ms, errors, classes
        self.first_class[span] = first
        self.coverage[span], self.satisfaction[span], self.efficiency[span] = coverage, satisfaction, efficiency
        self.reward[span] = scoring.rewards(success, ms, errors, coverage)
        self.score[span] = scoring.task_scores(success, ms, errors, satisfaction, efficiency)
        self.eps[span], self.rate_after[span], self.propensity[span] = eps, rate_after, propensity
        self.learning[span] = self.enabled
        self.fallback[span] = np.where(forced, 2, np.where(np.isin(types, list(self.applied)), 1, 0))
        self.test_of[span] = np.where(arm >= 0, len(self.tests) - 1, -1)
        stop = self._learn(lo, hi)
        self._count(slice(lo, stop), test)
        return stop

    def _learn(self, lo, hi):
        """Q-updates task by task; the safeguard's checks while watching a dip."""
        q, visits, wins, uses, pattern_wins = self.q, self.visits, self.wins, self.pattern_uses, self.pattern_wins
        groups = (self.group[lo:hi] + self.strategy[lo:hi]).tolist()
        next_groups, reward = self.next_group[lo:hi].tolist(), self.reward[lo:hi].tolist()
        success = self.success[lo:hi].tolist()
        before, after = self.q_before, self.q_after
        learning = self.enabled
        config = engine.DEFAULT_CONFIG
        for offset, group in enumerate(groups):
            task = lo + offset
            value = q[group]
            before[task] = value
            pattern = group // (STATES * ACTIONS) * ACTIONS + group % ACTIONS
            if learning:
                nxt = next_groups[offset]
                best_next = max(q[nxt:nxt + ACTIONS]) if nxt >= 0 else 0.0
                value = engine.q_update(value, reward[offset], best_next, config["learning_rate"],
                                        config["discount_factor"])
                q[group] = value
                visits[group] += 1
                uses[pattern] += 1
                if success[offset]:
                    wins[group] += 1
                    pattern_wins[pattern] += 1
            after[task] = value
            self.uses_after[task], self.successes_after[task] = uses[pattern], pattern_wins[pattern]
            if self.watching and (task + 1) % GUARD_EVERY == 0 and self.times[task] >= self.watch_from \
                    and self._check(task):
                return task + 1
        return hi

    def _check(self, task):
        """The safeguard's check after `task`; True when it rolled back."""
        scores = self.policy_scores(0, task + 1, GUARD_WINDOW)
        if self.reference_score is None or len(scores) < GUARD_WINDOW:
            return False
        state, change = stats.judge(scores, self.reference_score, self.reference_spread, GUARD_THRESHOLD, GUARD_Z)
        self.degraded_run = self.degraded_run + 1 if state == SafeguardState.DEGRADED else 0
        if self.degraded_run < GUARD_CONSECUTIVE or not self.enabled or self.reference is None:
            return False
        self._count(slice(self.done, task + 1), self.running if self.enabled else None)
        numbers = {"window_score": round(float(scores.mean()), 4), "reference": round(self.reference_score, 4),
                   "change_pct": round(change, 2), "checks": self.degraded_run, "tasks": task + 1}
        at = float(self.times[task])
        self.roll_back(self.reference, at, automatic=True, actor="",
                       reason=f"{self.degraded_run} consecutive degraded checks", numbers=numbers)
        self.degraded_run = 0
        self.watching = False
        for dip in self.dips:
            if dip[0] <= at < dip[1]:
                dip[1] = at  # the known-good state is back
        self.agenda.append((at + self.rng.uniform(2, 5) * HOUR, "re_enable", roles.ADMIN))
        self.agenda.sort(key=lambda item: item[0])
        return True

    def _count(self, span, test):
        """Book tasks already run into the counters the loop reads."""
        if span.start >= span.stop or span.start < self.done:
            return
        self.done = span.stop
        learned = self.learning[span]
        self.learned += int(learned.sum())
        self.changed |= bool(learned.any())
        if self._dip(float(self.times[span.start])) or self._dip(float(self.times[span.stop - 1])):
            self.clean_since_live = False
        satisfaction, efficiency = self.satisfaction[span], self.efficiency[span]
        rated, measured = ~np.isnan(satisfaction), ~np.isnan(efficiency)
        values = np.vstack([self.success[span], self.ms[span], self.errors[span] > 0,
                            np.where(rated, satisfaction, 0.0), rated, np.where(measured, efficiency, 0.0), measured])
        self.sums[:, span.start + 1:span.stop + 1] = self.sums[:, span.start:span.start + 1] + values.cumsum(axis=1)
        types = self.type[span]
        bits = (self.classes[span][:, None] >> np.arange(len(CLASSES))) & 1
        for type_index in range(len(self.types)):
            mine = types == type_index
            self.type_tasks[type_index] += int(mine.sum())
            self.type_failures[type_index] += bits[mine].sum(axis=0)
            self.failures[type_index] += bits[mine & learned].sum(axis=0)
            self.type_index[type_index].extend((np.flatnonzero(mine) + span.start).tolist())
        if self.baseline is None and self.done >= 50:
            self.baseline = self.window(0, 50)["score"]
            self.baseline_at = float(self.times[49])
        if test is not None:
            arm = self.arm[span]
            for role in (0, 1):
                mine = arm == role
                counts = test.arms[role]
                counts[0] += int(mine.sum())
                counts[1] += int(self.success[span][mine].sum())
                counts[2] += int(self.ms[span][mine].sum())
                counts[3] += int((self.errors[span][mine] > 0).sum())
            test.treatment_scores.extend(self.score[span][arm == 1].tolist())

    # --- windows of tasks --------------------------------------------------------------------

    def window(self, lo, hi):
        """tracker.window_stats over tasks lo..hi-1 (0-based, already run), or None."""
        lo = max(0, lo)
        if hi <= lo:
            return None
        successes, ms, with_errors, satisfaction, rated, efficiency, measured = (
            (self.sums[:, hi] - self.sums[:, lo]).tolist())
        tasks = hi - lo
        success_rate, avg_ms, error_rate = successes / tasks, ms / tasks, with_errors / tasks
        satisfaction = satisfaction / rated if rated else None
        efficiency = efficiency / measured if measured else None
        return {"tasks": tasks, "success_rate": success_rate, "avg_ms": avg_ms, "error_rate": error_rate,
                "satisfaction": satisfaction, "efficiency": efficiency,
                "score": scoring.composite_score(success_rate, scoring.time_score(avg_ms), error_rate, satisfaction,
                                                efficiency)}

    def current(self, upto=None):
        """(score, improvement) as tracker.current_improvement sees them after task `upto`."""
        upto = self.done if upto is None else upto
        stats_ = self.window(upto - 50, upto)
        if stats_ is None:
            return None, None
        if self.baseline is None or upto < 50:
            return stats_["score"], None
        return stats_["score"], scoring.improvement(stats_["score"], self.baseline)

    # --- versions and rollbacks -----------------------------------------------------------

    def capture(self, reason, at):
        if reason == VersionReason.CYCLE and not self.changed:
            return None
        first = max(0, self.done - EXPERIENCES)
        newest_first = slice(self.done - 1, first - 1 if first else None, -1)
        experiences = [[task + 1, self.types[t], STATE_KEYS[s], STRATEGIES[a], r, NEXT_KEYS[s]]
                       for task, t, s, a, r in zip(range(self.done - 1, first - 1, -1),
                                                   self.type[newest_first].tolist(), self.state[newest_first].tolist(),
                                                   self.strategy[newest_first].tolist(),
                                                   self.reward[newest_first].tolist())]
        version = Version(number=len(self.versions) + 1, reason=reason, created_at=at, task_count=self.done,
                          score=self.current()[0], learned=(list(self.q), list(self.visits), list(self.wins),
                                                            self.learned),
                          applied=dict(self.applied), experiences=json.dumps(experiences, separators=(",", ":")))
        self.versions.append(version)
        self._make_live(version, at, LiveCause.CAPTURED)
        self.changed = False
        return version

    def _make_live(self, version, at, cause):
        if self.live_periods:
            self.live_periods[-1][2] = at
        self.live_periods.append([version, at, None, cause])
        self.live, self.live_since = version, self.done
        self.clean_since_live = True

    def restore(self, version, at):
        q, visits, wins, learned = version.learned
        self.q, self.visits, self.wins, self.learned = list(q), list(visits), list(wins), learned
        uses, pattern_wins = [0] * len(self.pattern_uses), [0] * len(self.pattern_wins)
        for group, count in enumerate(visits):
            pattern = group // (STATES * ACTIONS) * ACTIONS + group % ACTIONS
            uses[pattern] += count
            pattern_wins[pattern] += wins[group]
        self.pattern_uses, self.pattern_wins = uses, pattern_wins
        self.applied = dict(version.applied)
        self._make_live(version, at, LiveCause.RESTORED)
        self.changed = True  # the next scheduled capture differs from the latest version

    def roll_back(self, target, at, automatic, actor, reason, numbers, undo_of=None):
        """safeguard.roll_back: capture, restore, freeze, record, end experiments, quarantine."""
        before = self.capture(VersionReason.BEFORE_ROLLBACK, at)
        self.restore(target, at + 0.05)
        self.enabled = False
        record = RollbackRecord(before, target, automatic, actor, reason, numbers, at, self.done, undo_of)
        self.rollbacks.append(record)
        if self.running is not None:
            self._finish_test(self.running, ABTestState.ABORTED, f"aborted: {self.agent_id} was rolled back to "
                              f"{target.label}", at, decided=True)
        for test in [test for test in self.monitoring if test.applied_at > target.created_at]:
            self.monitoring.remove(test)
            self._transition(test, ABTestState.REVERTED, f"reverted: {self.agent_id} was rolled back to "
                             f"{target.label}", at, finished_at=at)
        for _, (kind, test) in self.applied.values():
            if kind == "abtest" and test.state == ABTestState.REVERTED:
                self._transition(test, ABTestState.MONITORING, f"applied again: {self.agent_id} returned to "
                                 f"{target.label}, which applies it", at, finished_at=None)
                self.monitoring.append(test)
        self._schedule_next_test(at)
        for mitigation in self.mitigations:  # mitigations.withdraw_since
            if mitigation.state in mitigations.APPLYING and mitigation.activated_at > target.created_at:
                mitigation.state, mitigation.concluded_at = MitigationState.WITHDRAWN, at
        for shared in [item for item in self.active_shared.values() if item.published_at > target.created_at]:
            shared.status, shared.quarantined_at = SharedPatternStatus.QUARANTINED, at
            shared.quarantine_reason = f"{self.agent_id} was rolled back to {target.label}"
            shared.quarantined_slot = int((at - self.world.start) // HOUR)
            shared.numbers = self._pattern_numbers(shared.type_index * ACTIONS + shared.strategy)
            del self.active_shared[shared.type_index * ACTIONS + shared.strategy]
        self.reference, self.reference_score, self.reference_spread = target, target.score, 0.0
        self.events.append((at, "learning:rollback", record))
        how = "automatically" if automatic else f"by {actor}"
        alert = self.raise_alert("safeguard:rollback", Severity.HIGH,
                                 f"{self.agent_id} rolled back {how} to {target.label}; learning is disabled",
                                 {**numbers, "from": before.label, "to": target.label},
                                 lambda: f"rollback:{record.pk}", at)
        healthy = self.done + GUARD_CONSECUTIVE * GUARD_EVERY
        if healthy < self.n:  # resolve_healthy after three ok checks, whether learning is on or not
            alert.state, alert.resolved_at = AlertState.RESOLVED, float(self.times[healthy])
            alert.note = "Resolved by healthy safeguard checks."
        return record

    def _agenda(self, kind, detail, at):
        if kind == "rollback":
            dip_start, reason = detail
            target = next((version for version in reversed(self.versions)
                           if version.known_good and version.created_at < dip_start), None)
            if target is None or not self.enabled:
                return
            record = self.roll_back(target, at, automatic=False, actor=roles.OPERATOR, reason=reason, numbers={})
            self.audit.append((at + 1, roles.OPERATOR, "rollback", f"agent:{self.agent_id}",
                               lambda: {"to": record.to_version.label, "from_": record.from_version.label,
                                        "reason": reason}))
        elif kind == "undo" and self.rollbacks and not self.enabled:  # the rollback happened and is live
            last = self.rollbacks[-1]
            record = self.roll_back(last.from_version, at, automatic=False, actor=roles.OPERATOR,
                                    reason="", numbers={}, undo_of=last)
            self.audit.append((at + 1, roles.OPERATOR, "undo_rollback", f"agent:{self.agent_id}",
                               lambda: {"rollback": last.pk, "to": record.to_version.label}))
        elif kind == "re_enable" and not self.enabled:
            self.enabled = True
            self.audit.append((at, detail, "re_enable_learning", f"agent:{self.agent_id}", dict))
        elif kind == "abort" and detail is self.running and self.enabled:
            why = "the staging environment was unstable while the test ran"
            self._finish_test(detail, ABTestState.ABORTED, f"aborted by {roles.OPERATOR}: {why}", at, decided=True)
            self.audit.append((at, roles.OPERATOR, "abort_abtest", lambda: f"abtest:{detail.pk}",
                               lambda: {"agent": self.agent_id, "reason": why}))

    # --- the improvement cycle -------------------------------------------------------------

    def _cycle(self, h, at):
        record = {"slot": h, "at": at, "decisions": []} if at > self.world.now - CYCLE_SECONDS else None
        decisions = record["decisions"] if record is not None else []
        score, change = self.current()
        inputs = {"performance": {"score": score, "improvement": change, "baseline": self.baseline,
                                  "tasks": self.done, "epsilon": epsilon(self.learned)}}
        self._evaluate_mitigations(at, decisions)
        self._activate_mitigations(at, decisions)
        frequent = [(t, c) for t in range(len(self.types)) for c in range(len(CLASSES))
                    if self.failures[t, c] >= 5]
        inputs["failure_patterns"] = [
            {"task_type": self.types[t], "failure_class": CLASSES[c], "frequency": int(self.failures[t, c]),
             "confidence": self._failure_confidence(t, c)}
            for t, c in sorted(frequent, key=lambda item: -self.failures[item])[:5]]
        inputs["opportunities"] = self._start_test(at, decisions)
        self._monitor(at, decisions)
        self._review(h, at, decisions)
        if record is not None:
            record["inputs"] = inputs
            record["duration_ms"] = float(self.rng.lognormal(math.log(30 + 15 * len(decisions)), 0.35))
            self.cycles.append(record)

    def _failure_confidence(self, type_index, class_index):
        uses = sum(self.pattern_uses[type_index * ACTIONS:(type_index + 1) * ACTIONS]) or 1
        return min(1.0, int(self.failures[type_index, class_index]) / uses)

    def _evaluate_mitigations(self, at, decisions):
        for record in self.mitigations:
            if record.state != MitigationState.ACTIVE:
                continue
            record.tasks_after = int(self.type_tasks[record.type_index]) - record.base[0]
            record.failures_after = int(self.type_failures[record.type_index, record.failure_class]) - record.base[1]
            if record.tasks_after >= mitigations.EVALUATE_AFTER:
                rate_before = record.failures_before / record.tasks_before if record.tasks_before else 0.0
                rate_after = record.failures_after / record.tasks_after
                record.state = MitigationState.EFFECTIVE if rate_after < rate_before else MitigationState.INEFFECTIVE
                record.concluded_at = at
                decisions.append({"kind": "mitigation_judged", "mitigation": record, "state": record.state,
                                  "rate_before": round(rate_before, 4), "rate_after": round(rate_after, 4)})

    def _activate_mitigations(self, at, decisions):
        """mitigations.activate: every frequent failure pattern without a mitigation in force."""
        for type_index in range(len(self.types)):
            for class_index in range(len(CLASSES)):
                if self.failures[type_index, class_index] < mitigations.MIN_FAILURES:
                    continue
                if self._failure_confidence(type_index, class_index) < mitigations.FREQUENT:
                    continue
                latest = self.latest_mitigation.get((type_index, class_index))
                if latest is not None and (latest.state in mitigations.APPLYING
                                           or latest.concluded_at >= at - mitigations.RETRY_AFTER.total_seconds()):
                    continue
                recent = np.array(self.type_index[type_index][-mitigations.BEFORE_WINDOW:])
                failed = (self.classes[recent] >> class_index) & 1 == 1
                name, adjustment = CLASSES[class_index], engine.ADJUSTMENTS[CLASSES[class_index]]
                tasks = np.bincount(self.strategy[recent], minlength=ACTIONS)
                failures = np.bincount(self.strategy[recent][failed], minlength=ACTIONS)
                implicated = [strategy for strategy in range(ACTIONS)
                              if failures[strategy] >= mitigations.MIN_IMPLICATING
                              and failures[strategy] / tasks[strategy] >= mitigations.FREQUENT]
                if adjustment != "none" and not implicated:
                    continue  # spread over every strategy: changing strategy would not help
                record = MitigationRecord(
                    type_index, class_index, adjustment, implicated, len(recent), int(failed.sum()), at, self.done,
                    (int(self.type_tasks[type_index]), int(self.type_failures[type_index, class_index])))
                self.mitigations.append(record)
                self.latest_mitigation[(type_index, class_index)] = record
                self.events.append((at, "learning:mitigation_applied", record))
                decisions.append({"kind": "mitigation_applied", "mitigation": record,
                                  "task_type": self.types[type_index], "failure_class": name,
                                  "adjustment": record.adjustment,
                                  "strategies": [STRATEGIES[strategy] for strategy in implicated]})
                if record.adjustment == "none":
                    self.raise_alert("failure:needs_operator", Severity.INFO,
                                     f"{self.agent_id}: frequent {name} failures in {self.types[type_index]} need an "
                                     "operator", {"task_type": self.types[type_index], "failure_class": name,
                                                  "frequency": int(self.failures[type_index, class_index])},
                                     f"failure:{self.agent_id}:{self.types[type_index]}:{name}", at)

    def _start_test(self, at, decisions):
        """improvement.start_tests, for the agent's main task type."""
        busy = self.running is not None or any(test.type_index == self.main for test in self.monitoring)
        if busy:
            return []
        if self.final is not None and at >= self.final[0]:
            intent, self.final = self.final[1], None
        elif self.next_test_at is not None and at >= self.next_test_at and (
                self.final is None or at < self.final[0] - REGULAR_CUTOFF):
            intent = next(self.intents)
        else:
            return []
        ty, task_type = self.main, self.types[self.main]
        control = self.applied[ty][0] if ty in self.applied else None
        why, treatment = self._opportunity(ty, control, at)
        control_label = "the learned policy" if control is None else STRATEGIES[control]
        treatment_name = STRATEGIES[treatment]
        if why is not None:
            source, created_by, mde = "loop", "improvement cycle", self.world.loop_mde
        else:
            source, created_by, mde = "admin", roles.OPERATOR, stats.DEFAULT_MDE
            why = f"An operator's question: is {treatment_name} better than {control_label} for {task_type}?"
        # abtests._base_rate: the control strategy's success rate, or the task type's under the policy.
        patterns = [control] if control is not None else range(ACTIONS)
        uses = sum(self.pattern_uses[ty * ACTIONS + strategy] for strategy in patterns)
        base_rate = sum(self.pattern_wins[ty * ACTIONS + strategy] for strategy in patterns) / uses \
            if uses >= 10 else 0.5
        horizon = stats.samples_per_arm(mde, stats.DEFAULT_POWER, base_rate=base_rate)
        rng = self.rng
        delta = {"kept": rng.uniform(0.10, 0.16), "reverted": rng.uniform(0.10, 0.16), "inconclusive": 0.0,
                 "control_wins": -rng.uniform(0.12, 0.18), "guardrail": rng.uniform(0.12, 0.16), "srm": 0.05,
                 "aborted": 0.02, "running": 0.0, "monitoring": 0.12}[intent]
        test = Test(ty, task_type, intent, delta, control, treatment,
                    f"{task_type}: {treatment_name} vs {'learned policy' if control is None else control_label}", why,
                    source, created_by, mde, horizon, at, control_share=0.62 if intent == "srm" else 0.5,
                    slower=intent == "guardrail")
        test.transitions.append(("", ABTestState.DRAFT, f"created by {source}", at))
        self._transition(test, ABTestState.RUNNING, f"horizon {horizon} tasks per arm (control success rate "
                         f"{base_rate:.2f})", at)
        self.tests.append(test)
        self.running = test
        if intent == "aborted":
            self.agenda.append((at + rng.uniform(4, 10) * HOUR, "abort", test))
            self.agenda.sort(key=lambda item: item[0])
        if source != "loop":
            return []
        control_name = None if control is None else STRATEGIES[control]
        decisions.append({"kind": "abtest_created", "abtest": test, "task_type": task_type, "control": control_name,
                          "treatment": treatment_name})
        return [{"task_type": task_type, "control": control_name, "candidate": treatment_name, "why": why}]

    def _opportunity(self, type_index, control, at):
        """improvement.find_opportunities for one task type: (why, candidate) when
        always using a strategy looks better off-policy than the type's latest
        tasks; otherwise (None, the best-looking candidate) for an operator's test."""
        first = max(0, self.done - improvement.EXPERIENCES)
        mine = np.flatnonzero(self.type[first:self.done] == type_index)[::-1] + first  # newest first
        strategies, successes, propensities = self.strategy[mine], self.success[mine], self.propensity[mine]
        current = float(successes[:improvement.RECENT].mean()) if len(mine) else 0.0
        recent = {(test.control, test.treatment) for test in self.tests
                  if test.type_index == type_index and test.created_at >= at - improvement.RETEST_AFTER.total_seconds()}
        estimates = []
        for candidate in range(ACTIONS):
            if candidate == control or (control, candidate) in recent:
                continue
            estimate, effective = stats.off_policy_value(strategies == candidate, successes, propensities)
            if estimate is not None:
                estimates.append((estimate, effective, candidate))
        found = [item for item in estimates if item[1] >= improvement.MIN_EVIDENCE
                 and item[0] - current >= improvement.SUCCESS_MARGIN]
        if not found:
            fallback = max(estimates) if estimates else (0, 0, (control or 0) + 1 if control != ACTIONS - 1 else 0)
            return None, fallback[2]
        estimate, effective, candidate = max(found)
        return (f"always using {STRATEGIES[candidate]} would succeed in about {estimate:.0%} of "
                f"{self.types[type_index]} tasks (off-policy estimate from {len(mine)} logged tasks, effective "
                f"sample {effective:.0f}) against {current:.0%} now; testing whether it is really better"), candidate

    def _schedule_next_test(self, at):
        """A pause after a test, longer in a longer history: about six tests per agent in 90 days."""
        self.next_test_at = at + self.rng.uniform(0.5, 1.5) * max(0.5, self.world.slots / 24 / 8) * DAY

    def _transition(self, test, to_state, reason, at, **fields):
        test.transitions.append((test.state, to_state, reason, at))
        test.state = to_state
        for name, value in fields.items():
            setattr(test, name, value)
        if to_state in abtests.EVENTS:
            self.events.append((at, abtests.EVENTS[to_state], (test, to_state, reason)))

    def _finish_test(self, test, state, reason, at, decided=False):
        fields = {"decision": reason, "finished_at": at}
        if decided:
            fields["decided_at"] = at
        self._transition(test, state, reason, at, **fields)
        if test is self.running:
            self.running = None
        self._schedule_next_test(at)

    def _review(self, h, at, decisions):
        """abtests.review for the agent's running test (one look per slot)."""
        test = self.running
        if test is None:
            return
        control, treatment = (stats.ArmStats(n, wins, float(ms), errors) for n, wins, ms, errors in test.arms)
        srm = stats.srm_p_value([control.n, treatment.n], [0.5, 0.5])
        verdict = stats.decide(control, treatment, test.horizon, previous_p=test.verdict.get("p_min", 1.0))
        test.looks.append((self.world.start + h * HOUR, control.n, treatment.n, verdict.interval[0],
                           verdict.interval[1], verdict.p_value, srm, verdict.outcome, at))
        test.verdict = {
            "outcome": verdict.outcome, "interval": [round(value, 4) for value in verdict.interval],
            "p_value": verdict.p_value,
            "p_min": min(verdict.p_value, test.verdict.get("p_min", 1.0)) if verdict.sequential
            else test.verdict.get("p_min", 1.0),
            "sequential": verdict.sequential, "blocked_by": list(verdict.blocked_by), "srm_p_value": srm,
            "control": control.to_dict(), "treatment": treatment.to_dict(),
        }
        test.decision = verdict.reason
        control_name = test.control_label
        if srm < stats.SRM_P and control.n + treatment.n >= abtests.SRM_MIN_SAMPLES:
            reason = abtests.mismatch(srm, control.n, treatment.n)
            self._finish_test(test, ABTestState.ABORTED, reason, at, decided=True)
            self.raise_alert("abtest:srm", Severity.WARNING, lambda: f"A/B test {test.pk} of {self.agent_id} aborted: "
                             "sample ratio mismatch", test.verdict, lambda: f"abtest:srm:{test.pk}", at)
            decisions.append({"kind": "abtest_decided", "abtest": test, "outcome": ABTestState.ABORTED})
            return
        if verdict.outcome == "running":
            return
        state, reason, to_apply = abtests.conclusion(verdict, control_name)
        if to_apply:
            self._transition(test, ABTestState.WINNER, reason, at, decision=reason, decided_at=at)
            self._apply(test, at)
            decisions.append({"kind": "abtest_decided", "abtest": test, "outcome": ABTestState.APPLIED})
            return
        self._finish_test(test, state, reason, at, decided=True)
        decisions.append({"kind": "abtest_decided", "abtest": test, "outcome": state})

    def _apply(self, test, at):
        before = self.capture(VersionReason.BEFORE_APPLY, at)
        previous = self.applied.get(test.type_index)
        self.applied[test.type_index] = (test.treatment, ("abtest", test))
        self.changed = True
        scores = np.array(test.treatment_scores)
        previous_name = STRATEGIES[previous[0]] if previous else "the learned policy"
        self._transition(test, ABTestState.APPLIED, f"{STRATEGIES[test.treatment]} applied for {test.task_type} "
                         f"(was {previous_name})", at, previous_strategy=previous[0] if previous else None,
                         version_before=before, applied_at=at,
                         reference_score=float(scores.mean()) if len(scores) else None,
                         reference_spread=stats.standard_error(scores) if len(scores) else 0.0)
        self._transition(test, ABTestState.MONITORING, f"watched for {ABTest.MONITOR_DAYS} days with the safeguard's "
                         "rule", at, monitor_until=at + ABTest.MONITOR_DAYS * DAY)
        if test.intent == "reverted":
            test.degrade_at = at + self.rng.uniform(8, 30) * HOUR
        self.running = None
        self.monitoring.append(test)

    def _monitor(self, at, decisions):
        """abtests.monitor: the safeguard's rule on each applied winner's task type."""
        for test in list(self.monitoring):
            first = int(np.searchsorted(self.times, test.applied_at))
            window = [task for task in self.type_index[test.type_index][-GUARD_WINDOW:] if task >= first]
            if test.reference_score is not None and len(window) >= GUARD_WINDOW:
                state, change = stats.judge(self.score[window], test.reference_score, test.reference_spread,
                                                GUARD_THRESHOLD, GUARD_Z)
                test.degraded_checks = test.degraded_checks + 1 if state == SafeguardState.DEGRADED else 0
                test.verdict = {**test.verdict, "monitoring": {
                    "state": str(state), "change_pct": round(change, 2), "checks": test.degraded_checks,
                    "at": _iso(at)}}
                if test.degraded_checks >= GUARD_CONSECUTIVE:
                    self._revert(test, f"degraded {change:+.1f}% against the winning arm's score on "
                                       f"{test.degraded_checks} checks in a row", at)
                    decisions.append({"kind": "applied_strategy", "abtest": test, "outcome": ABTestState.REVERTED})
                    continue
            if at >= test.monitor_until:
                self._transition(test, ABTestState.KEPT, f"healthy through {ABTest.MONITOR_DAYS} days of monitoring",
                                 at, finished_at=at)
                self.monitoring.remove(test)
                self._schedule_next_test(at)
                decisions.append({"kind": "applied_strategy", "abtest": test, "outcome": ABTestState.KEPT})

    def _revert(self, test, reason, at):
        source = self.applied.get(test.type_index, (None, None))[1]
        if source == ("abtest", test):
            if test.previous_strategy is not None:
                self.applied[test.type_index] = (test.previous_strategy, ("revert", test))
            else:
                del self.applied[test.type_index]
            self.changed = True
        self._transition(test, ABTestState.REVERTED, reason, at, finished_at=at)
        self.monitoring.remove(test)
        self._schedule_next_test(at)
        self.raise_alert("abtest:reverted", Severity.WARNING,
                         f"{self.agent_id}: {STRATEGIES[test.treatment]} reverted for {test.task_type}; {reason}",
                         test.verdict.get("monitoring", {}), lambda: f"abtest:reverted:{test.pk}", at)

    # --- sharing -----------------------------------------------------------------------

    def _pattern_numbers(self, pattern):
        uses, wins = self.pattern_uses[pattern], self.pattern_wins[pattern]
        return {"confidence": engine.pattern_confidence(uses, wins) if uses else 0.0,
                "success_rate": wins / uses if uses else 0.0, "lower_bound": engine.wilson_lower_bound(wins, uses),
                "uses": uses}

    def _share(self, h, at):
        """sharing.publish for this agent: share every qualifying pattern not shared yet."""
        for pattern, uses in enumerate(self.pattern_uses):
            if uses < sharing.SHARE_MIN_USES or pattern in self.active_shared:
                continue
            numbers = self._pattern_numbers(pattern)
            if numbers["confidence"] > sharing.SHARE_CONFIDENCE and numbers["lower_bound"] >= sharing.SHARE_LOWER_BOUND:
                type_index, strategy = divmod(pattern, ACTIONS)
                shared = Shared(self.agent_id, type_index, self.types[type_index], strategy, h, at,
                                self.live.label if self.live else "", numbers,
                                uuid.UUID(bytes=self.rng.bytes(16), version=4), published_numbers=dict(numbers))
                self.shared.append(shared)
                self.active_shared[pattern] = shared
                self.events.append((at, "learning:pattern_shared", shared))

    # --- alerts ------------------------------------------------------------------------

    def raise_alert(self, kind, severity, summary, numbers, dedup, at):
        for alert in self.alerts:
            if alert.dedup == dedup and alert.state != AlertState.RESOLVED and isinstance(dedup, str):
                alert.occurrences += 1
                alert.last_seen_at = at
                alert.numbers = numbers
                return alert
        alert = AlertRecord(self.agent_id, kind, severity, summary, numbers, dedup, at, last_seen_at=at)
        self.alerts.append(alert)
        return alert

    # --- the end state --------------------------------------------------------------------

    def _finish(self):
        for shared in self.active_shared.values():
            shared.numbers = self._pattern_numbers(shared.type_index * ACTIONS + shared.strategy)
        self._prune_versions()
        self._final_checks()
        self._snapshots()
        self._choose_samples()
        # What only the simulation needed; the writer reads the rest.
        del (self.draw, self.pick, self.class_draw, self.two_errors, self.base_ms, self.coverage_by_outcome,
             self.satisfaction_base, self.efficiency_base, self.trend, self.group, self.next_group,
             self.best_strategy, self.type_index, self.sums)

    def _prune_versions(self):
        """versions.prune: the latest KEEP_LATEST, plus known-good, pinned and live ones."""
        known = [version for version in self.versions if version.known_good]
        if known:
            middle = self.world.start + 0.33 * self.world.slots * HOUR
            min(known, key=lambda version: abs(version.created_at - middle)).pinned = True
        latest = set(self.versions[-StateVersion.KEEP_LATEST:])
        kept = [version for version in self.versions
                if version in latest or version.known_good or version.pinned or version is self.live]
        self.versions = kept
        self.live_periods = [period for period in self.live_periods if period[0] in set(kept)]

    def _final_checks(self):
        """The safeguard's checks over the kept executions: their responses and the final state."""
        first = max(0, self.n - EXPERIENCES)
        self.check_states = {}
        state, change, degraded, healthy = SafeguardState.INSUFFICIENT, None, 0, 0
        for task in range(first, self.n):
            if (task + 1) % GUARD_EVERY == 0:
                scores = self.policy_scores(0, task + 1, GUARD_WINDOW)
                if self.reference_score is None or len(scores) < GUARD_WINDOW:
                    state, change = SafeguardState.INSUFFICIENT, None
                else:
                    state, change = stats.judge(scores, self.reference_score, self.reference_spread,
                                                    GUARD_THRESHOLD, GUARD_Z)
                degraded = degraded + 1 if state == SafeguardState.DEGRADED else 0
                healthy = healthy + 1 if state == SafeguardState.OK else 0
            self.check_states[task] = {"state": str(state), "consecutive_degraded": degraded,
                                       "change_pct": None if change is None else round(change, 2)}
        self.guard = {"state": str(state), "change_pct": change, "consecutive_degraded": degraded,
                      "healthy_checks": healthy, "checked_at": float(self.times[-1])}

    def _snapshots(self):
        self.snapshots = []
        for h in range(self.world.slots):
            lo, hi = int(self.slot_lo[h]), int(self.slot_lo[h + 1])
            if hi == lo:
                continue  # a newcomer's slots before it joined
            window = self.window(lo, hi)
            at = self.world.start + (h + 1) * HOUR + self.offsets[h + 1][0]
            self.snapshots.append((lo + 1, hi, window, self.current(hi)[1], at))

    def _choose_samples(self):
        rng = np.random.default_rng([self.world.seed, self.n, 2])
        recent = np.flatnonzero(self.times > events_since(self.world.now))
        self.training = np.sort(rng.choice(recent, size=min(self.training_wanted, len(recent)), replace=False))
        self.samples = np.sort(rng.choice(self.n, size=min(self.samples_wanted, self.n), replace=False))


def _iso(at):
    return _datetime(at).isoformat()


def _datetime(at):
    return datetime.fromtimestamp(at, tz=dt_timezone.utc)


# --- the fleet -------------------------------------------------------------------------------


def demo_fleet():
    return [(agent_id, team) for team, members in DEMO_TEAMS.items() for agent_id in members]


def _allocate(total, weights):
    """Split `total` in proportion to `weights` (largest remainder), exactly."""
    weights = np.asarray(weights, dtype=float)
    shares = total * weights / weights.sum()
    counts = np.floor(shares).astype(np.int64)
    counts[np.argsort(-(shares - counts))[:total - counts.sum()]] += 1
    return counts


def plan(days, events, samples, seed, now):
    """The world, and each agent's task counts per slot, role, test intents and incidents."""
    fleet = demo_fleet()
    slots = days * 24
    end = math.floor((now - 120) / HOUR) * HOUR  # the last slot boundary, a little in the past
    start = end - slots * HOUR
    world = World(seed, now, start, slots, FleetEnvironment(dict(fleet), seed),
                  capture_every=round(min(2.5, max(1.0, days / 36)) * 24),
                  loop_mde=min(stats.MDE_RANGE[1], settings.ABTEST_MDE_POINTS / 100))
    rng = np.random.default_rng([seed, 0])
    boundaries = start + HOUR * np.arange(slots + 1)
    recent = boundaries[:-1] >= events_since(now)   # slots whose tasks all fall in the events' 30 days
    # Every snapshot of the 30 days gives an improvement event; training events
    # are drawn from the tasks of those days, so the fleet works fast enough for them.
    rate = max(BASE_TASKS_PER_HOUR, 1.1 * events / (len(fleet) * max(1, recent.sum())),
               1.1 * samples / (len(fleet) * slots))
    hour_of_day = (boundaries[:-1] // HOUR % 24).astype(int)
    busy = np.where((hour_of_day >= 8) & (hour_of_day < 20), 1.4, 0.6)
    counts = [np.maximum(1, rng.poisson(rate * rng.uniform(0.85, 1.15) * busy)) for _ in fleet]
    largest = sorted(DEMO_TEAMS, key=lambda team: -len(DEMO_TEAMS[team]))[:2]
    newcomers = [[agent for agent, _ in fleet].index(rng.choice(DEMO_TEAMS[team])) for team in largest]
    order = [int(index) for index in rng.permutation(len(fleet)) if index not in newcomers]
    roles_ = {index: role for index, role in zip(order, ROLES)}
    roles_.update((index, "newcomer") for index in newcomers)
    for index, role in roles_.items():
        if role == "newcomer":
            counts[index][:int(NEWCOMERS_JOIN * slots)] = 0
    capacity = np.array([int(c[recent].sum()) for c in counts])
    snapshots = sum(int(((c > 0) & (boundaries[1:] > events_since(now))).sum()) for c in counts)
    training = max(0, events - snapshots)
    if capacity.sum() < training:
        raise RuntimeError("The simulated fleet has too few tasks for the events asked for.")
    training_split = _allocate(training, capacity) if training else np.zeros(len(fleet), dtype=np.int64)
    sample_split = _allocate(samples, [c.sum() for c in counts]) if samples else np.zeros(len(fleet), dtype=np.int64)
    calm = [int(index) for index in order[len(ROLES):]]
    incidents = {}
    for index in calm[:4]:
        at = start + rng.uniform(0.15, 0.85) * slots * HOUR
        incidents[index] = [(at, at + rng.uniform(6, 24) * HOUR, rng.uniform(0.06, 0.1))]
    finals = [index for index in range(len(fleet)) if roles_.get(index, "").startswith("final")]
    regular = [index for index in range(len(fleet)) if index not in finals] + finals
    pasts = []
    for index, (agent_id, team) in enumerate(fleet):
        intents = _intents(INTENTS[regular.index(index) % len(INTENTS)], np.random.default_rng([seed, index, 5]))
        pasts.append(AgentPast(world, index, agent_id, team, counts[index], roles_.get(index), intents,
                               incidents.get(index, []), int(training_split[index]), int(sample_split[index])))
    return world, pasts


def _intents(first, rng):
    yield first
    names, weights = list(INTENT_WEIGHTS), list(INTENT_WEIGHTS.values())
    while True:
        yield names[rng.choice(len(names), p=weights)]


def _confidence_history(source, shared):
    """The shared pattern's refreshed confidence and success rate at each slot boundary."""
    pattern = shared.type_index * ACTIONS + shared.strategy
    uses, wins = source.history_uses[:, pattern], source.history_wins[:, pattern]
    confidence = np.array([engine.pattern_confidence(u, w) if u else 0.0 for u, w in zip(uses.tolist(), wins.tolist())])
    return confidence, np.where(uses > 0, wins / np.maximum(uses, 1), 0.0)


def share_imports(world, pasts):
    """sharing.import_shared and decide_probation over the fleet's history: [(agent, shared, status,
    confidence, imported_at, decided_at)]; the pattern_shared events learn their targets."""
    imports = []
    slots = world.slots + 1
    for source in pasts:
        for shared in source.shared:
            confidence, success_rate = _confidence_history(source, shared)
            until = shared.quarantined_slot if shared.quarantined_slot is not None else slots
            live = np.zeros(slots, dtype=bool)
            live[shared.published_slot:until] = True
            for other in pasts:
                if other is source:
                    continue
                if shared.task_type in other.types:
                    pattern = other.types.index(shared.task_type) * ACTIONS + shared.strategy
                    uses, wins = other.history_uses[:, pattern], other.history_wins[:, pattern]
                else:
                    uses = wins = np.zeros(slots, dtype=np.int64)
                eligible = live & other.history_enabled & (confidence > sharing.SHARE_CONFIDENCE)
                if not eligible.any():
                    continue
                slot = int(np.argmax(eligible))
                if uses[slot] >= sharing.SHARE_MIN_USES:
                    continue  # it has evidence of its own
                imported_at = shared.published_at + 1 if slot == shared.published_slot else (
                    world.start + slot * HOUR + source.offsets[slot][2] + 1)
                if slot == shared.published_slot:
                    shared.targets.append(other.agent_id)
                status, decided_at = ImportStatus.PROBATION, None
                first_confidence = float(confidence[slot]) * sharing.PROBATION_DISCOUNT
                value = first_confidence
                settled = np.flatnonzero((uses[slot:until] >= sharing.CONFIRM_USES))
                if len(settled):
                    at_slot = slot + int(settled[0])
                    own = wins[at_slot] / uses[at_slot]
                    decided_at = max(imported_at + 1, world.start + at_slot * HOUR + source.offsets[at_slot][2] + 2)
                    if own >= success_rate[at_slot] - sharing.CONFIRM_TOLERANCE:
                        status, value = ImportStatus.ACTIVE, float(confidence[at_slot])
                    else:
                        status = ImportStatus.REJECTED
                if shared.status == SharedPatternStatus.QUARANTINED:
                    status = ImportStatus.QUARANTINED
                imports.append((other.agent_id, shared, status, value, imported_at, decided_at))
    return imports


def quarantine_by_hand(world, pasts, audit):
    """An admin quarantines the fleet's first shared pattern still active at 70 % of the period."""
    at = world.start + 0.7 * world.slots * HOUR
    candidates = [(shared.published_at, source, shared) for source in pasts for shared in source.shared
                  if shared.published_at < at and shared.status == SharedPatternStatus.ACTIVE]
    if not candidates:
        return
    _, source, shared = min(candidates, key=lambda item: item[0])
    slot = int((at - world.start) // HOUR)
    shared.status, shared.quarantined_at, shared.quarantined_slot = SharedPatternStatus.QUARANTINED, at, slot
    shared.quarantine_reason = f"quarantined by {roles.ADMIN} from the admin"
    pattern = shared.type_index * ACTIONS + shared.strategy
    uses, wins = int(source.history_uses[slot, pattern]), int(source.history_wins[slot, pattern])
    shared.numbers = {"confidence": engine.pattern_confidence(uses, wins), "success_rate": wins / uses,
                      "lower_bound": engine.wilson_lower_bound(wins, uses), "uses": uses}
    audit.append((at, roles.ADMIN, "quarantine_shared_pattern", f"shared_pattern:{shared.uuid}",
                  {"pattern": f"{shared.task_type}:{STRATEGIES[shared.strategy]}", "source": shared.agent}))


NOTES = {
    "safeguard:rollback": "Rolled back by hand; checking whether the staging database is the cause.",
    "abtest:reverted": "Looking at the runs since the switch.",
    "abtest:srm": "The agent's task router dropped treatment reports; fixed in release 2.4.1.",
    "failure:needs_operator": "Fixture refresh scheduled with the team.",
}


def operators_at_work(world, pasts):
    """What operators did with the alerts (acknowledged, silenced, resolved), the
    scheduler alert of a cluster restart, and the audit trail of it all."""
    rng = np.random.default_rng([world.seed, 3])
    audit = [entry for past in pasts for entry in past.audit]
    alerts = [alert for past in pasts for alert in past.alerts]
    for past in pasts:
        for record in past.rollbacks:
            if record.automatic:
                continue
            alert = next(item for item in past.alerts if item.kind == "safeguard:rollback"
                         and item.created_at == record.created_at)
            at = record.created_at + rng.uniform(5, 15) * 60
            if alert.resolved_at is None or alert.resolved_at > at:
                _acknowledge(alert, at, NOTES["safeguard:rollback"], audit)
    for kind in ("abtest:reverted", "abtest:srm", "failure:needs_operator"):
        mine = sorted((alert for alert in alerts if alert.kind == kind), key=lambda alert: alert.created_at)
        for position, alert in enumerate(mine):
            at = min(world.now - 60, alert.created_at + rng.uniform(0.5, 20) * HOUR)
            age = position / len(mine)  # 0 for the oldest
            if kind == "abtest:reverted":
                action = "resolve" if position < len(mine) - 1 else "acknowledge"
            elif kind == "failure:needs_operator":
                action = "resolve" if age < 0.35 else "acknowledge" if age < 0.65 else (
                    "silence" if position % 2 else "leave")
            else:
                action = "acknowledge"
            if action == "resolve":
                _resolve(alert, max(at, alert.last_seen_at + 60), "Checked and dealt with; nothing more to do.", audit)
            elif action == "acknowledge":
                _acknowledge(alert, at, NOTES[kind], audit)
            elif action == "silence":
                alert.silenced_until = world.now + rng.uniform(1, 3) * DAY
                audit.append((at, roles.OPERATOR, "alert_silence", alert,
                              {"note": "", "until": _iso(alert.silenced_until)}))
    job = "qefleet.learning.improvement_cycle"
    at = world.start + 0.6 * world.slots * HOUR
    silent = _datetime(at - 2.2 * HOUR)
    stale = AlertRecord("", "schedule:stale", Severity.WARNING,
                        f"Scheduled job {job} is silent since {silent:%Y-%m-%d %H:%M} UTC (twice its 60-minute "
                        "interval); is a cluster running?", {"job": job, "reason": "silent"}, f"schedule:{job}", at,
                        occurrences=7, last_seen_at=at + 30 * 60)
    _resolve(stale, at + 40 * 60, "The task cluster was down for a host reboot; restarted.", audit)
    alerts.append(stale)
    return alerts, audit


def _acknowledge(alert, at, note, audit):
    """alerts.acknowledge of a firing alert; one the safeguard resolved later keeps its resolution."""
    alert.acknowledged_by, alert.acknowledged_at = roles.OPERATOR, at
    if alert.resolved_at is None:
        alert.state, alert.note = AlertState.ACKNOWLEDGED, note
    audit.append((at, roles.OPERATOR, "alert_acknowledge", alert, {"note": note, "until": None}))


def _resolve(alert, at, note, audit):
    alert.state, alert.resolved_at, alert.note = AlertState.RESOLVED, at, note
    audit.append((at, roles.OPERATOR, "alert_resolve", alert, {"note": note, "until": None}))


# --- writing ---------------------------------------------------------------------------------


def _aware(at):
    return None if at is None else _datetime(at)


def _none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def db_datetimes(epochs):
    """Epoch seconds as the database keeps Django's datetimes (on SQLite,
    Django's own text form, so lookups compare the same strings)."""
    text = np.datetime_as_string(np.round(np.asarray(epochs) * 1e6).astype("int64").astype("datetime64[us]"),
                                 unit="us").tolist()
    if connection.vendor == "postgresql":
        return [value.replace("T", " ") + "+00:00" for value in text]
    return [value.replace("T", " ").removesuffix(".000000") for value in text]


def insert_fast(model, fields, rows):
    """Insert value rows already in the database's form: COPY on PostgreSQL,
    versions.insert_rows (one executemany per batch) elsewhere; returns the count."""
    count = 0
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
        with connection.cursor() as cursor, cursor.cursor.copy(
                f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    rows = iter(rows)
    while batch := list(itertools.islice(rows, 20_000)):
        versions.insert_rows(model, fields, batch)
        count += len(batch)
    return count


def collation_ranks(strings):
    """{text: rank} in the order the database sorts text, so a generated
    state's rows are in the order versions.learned_state reads them back."""
    strings = sorted(set(strings))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT value FROM unnest(%s::text[]) AS value ORDER BY value", [strings])
            strings = [row[0] for row in cursor.fetchall()]
    return {text: rank for rank, text in enumerate(strings)}


def _json(value):
    return json.dumps(value, separators=(",", ":"))


class Writer:
    """Writes the simulated fleet table by table, each in one transaction."""

    def __init__(self, world, pasts, agents, strategies, events, say):
        self.world, self.pasts, self.agents, self.strategies = world, pasts, agents, strategies
        self.events_wanted, self.say = events, say
        self.counts = {}
        self.ranks = collation_ranks([*(t for past in pasts for t in past.types), *STATE_KEYS, *STRATEGIES])
        self.rng = np.random.default_rng([world.seed, 4])

    def step(self, name, write):
        started = time.perf_counter()
        with transaction.atomic():
            count = write()
        self.counts[name] = count
        self.say(f"  {name:<24} {count:>10,}  {time.perf_counter() - started:6.1f} s")

    def agent(self, past):
        return self.agents[past.agent_id]

    def strategy(self, index):
        return self.strategies[STRATEGIES[index]]

    def write(self, alerts, audit, imports):
        self.step("learning profiles", self.profiles)
        self.step("A/B tests", self.tests)
        self.step("A/B arms", self.arms)
        self.step("A/B transitions", self.transitions)
        self.step("A/B looks", self.looks)
        self.step("state versions", self.versions)
        self.step("live version periods", self.live_periods)
        self.step("Q entries", self.q_entries)
        self.step("learned patterns", self.patterns)
        self.step("applied strategies", self.applied)
        self.step("failure patterns", self.failure_patterns)
        self.step("mitigations", self.mitigations)
        self.step("safeguards", self.safeguards)
        self.step("rollbacks", self.rollbacks)
        self.step("decisions", self.decisions)
        self.step("executions", self.executions)
        self.step("snapshots", self.snapshots)
        self.step("alerts", lambda: self.alerts(alerts))
        self.step("audit events", lambda: self.audit(audit))
        self.step("shared patterns", self.shared)
        self.step("pattern imports", lambda: self.imports(imports))
        self.step("memory patterns", self.memory_patterns)
        self.step("improvement cycles", self.cycles)
        self.step("performance metrics", self.metrics)
        self.step("events", self.events)
        self.step("agent records", self.agent_records)
        return self.counts

    # --- learning state ----------------------------------------------------------------

    def profiles(self):
        self.profile = {}
        for past in self.pasts:
            self.profile[past.agent_id] = LearningProfile(
                agent=self.agent(past), enabled=past.enabled, exploration_rate=epsilon(past.learned),
                task_count=past.n, baseline_score=past.baseline, baseline_set_at=_aware(past.baseline_at),
                baseline_task=0)
        LearningProfile.objects.bulk_create(self.profile.values())
        return len(self.profile)

    def _tests(self):
        return [(past, test) for past in self.pasts for test in past.tests]

    def tests(self):
        pairs = self._tests()
        objects = [ABTest(
            agent=self.agent(past), task_type=test.task_type, name=test.name, hypothesis=test.hypothesis,
            state=test.state, source=test.source, created_by=test.created_by, mde=test.mde,
            power=stats.DEFAULT_POWER, horizon=test.horizon, verdict=test.verdict, decision=test.decision,
            previous_strategy=None if test.previous_strategy is None else self.strategy(test.previous_strategy),
            reference_score=test.reference_score, reference_spread=test.reference_spread,
            degraded_checks=test.degraded_checks, created_at=_aware(test.created_at),
            started_at=_aware(test.created_at), decided_at=_aware(test.decided_at), applied_at=_aware(test.applied_at),
            monitor_until=_aware(test.monitor_until), finished_at=_aware(test.finished_at)) for past, test in pairs]
        ABTest.objects.bulk_create(objects, batch_size=500)
        for (_, test), row in zip(pairs, objects):
            test.pk = row.pk
        return len(objects)

    def arms(self):
        rows = []
        for _, test in self._tests():
            for role, strategy, counts in ((ArmRole.CONTROL, test.control, test.arms[0]),
                                           (ArmRole.TREATMENT, test.treatment, test.arms[1])):
                rows.append(ABArm(test_id=test.pk, role=role,
                                  strategy=None if strategy is None else self.strategy(strategy), weight=0.5,
                                  n=counts[0], successes=counts[1], total_ms=counts[2], error_tasks=counts[3]))
        ABArm.objects.bulk_create(rows, batch_size=500)
        for (_, test), control, treatment in zip(self._tests(), rows[::2], rows[1::2]):
            test.arm_pks = (control.pk, treatment.pk)
        return len(rows)

    def transitions(self):
        rows = [ABTransition(test_id=test.pk, from_state=from_state, to_state=to_state, reason=reason, at=_aware(at))
                for _, test in self._tests() for from_state, to_state, reason, at in test.transitions]
        ABTransition.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    def looks(self):
        rows = [ABLook(test_id=test.pk, slot_start=_aware(slot), n_control=n_control, n_treatment=n_treatment,
                       low=low, high=high, p_value=p_value, srm_p_value=srm, outcome=outcome, at=_aware(at))
                for _, test in self._tests()
                for slot, n_control, n_treatment, low, high, p_value, srm, outcome, at in test.looks]
        ABLook.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    def state(self, past, learned, applied):
        """A learned state as versions.learned_state reads it from the tables."""
        q, visits, wins, count = learned
        ranks = self.ranks
        rows = []
        for group, seen in enumerate(visits):
            if seen:
                type_index, rest = divmod(group, STATES * ACTIONS)
                state_index, strategy = divmod(rest, ACTIONS)
                rows.append([past.types[type_index], STATE_KEYS[state_index], STRATEGIES[strategy], q[group], seen])
        rows.sort(key=lambda row: (ranks[row[0]], ranks[row[1]], ranks[row[2]]))
        uses, successes = {}, {}
        for group, seen in enumerate(visits):
            key = (past.types[group // (STATES * ACTIONS)], STRATEGIES[group % ACTIONS])
            uses[key] = uses.get(key, 0) + seen
            successes[key] = successes.get(key, 0) + wins[group]
        patterns = sorted(([task_type, name, uses[key], successes[key], engine.pattern_confidence(uses[key],
                                                                                              successes[key])]
                           for key in uses if uses[key] for task_type, name in [key]),
                          key=lambda row: (ranks[row[0]], ranks[row[1]]))
        applied_rows = sorted(([past.types[type_index], STRATEGIES[strategy], self.source(source)]
                               for type_index, (strategy, source) in applied.items()),
                              key=lambda row: ranks[row[0]])
        config = dict(engine.DEFAULT_CONFIG, exploration_rate=epsilon(count))
        return {"q": rows, "patterns": patterns, "applied": applied_rows, "config": config}

    @staticmethod
    def source(source):
        kind, test = source
        return f"abtest:{test.pk}" if kind == "abtest" else f"revert:abtest:{test.pk}"

    def versions(self):
        objects = []
        for past in self.pasts:
            for version in past.versions:
                state = self.state(past, version.learned, version.applied)
                payload = zlib.compress(
                    f'{{"state":{_json(state)},"experiences":{version.experiences},"score":{_json(version.score)},'
                    f'"tasks":{version.task_count}}}'.encode(), 6)
                objects.append((version, StateVersion(
                    agent=self.agent(past), number=version.number, reason=version.reason, task_count=version.task_count,
                    score=version.score, q_entries=len(state["q"]), checksum=versions.checksum(state), payload=payload,
                    size_bytes=len(payload), pinned=version.pinned, known_good=version.known_good,
                    created_at=_aware(version.created_at))))
        StateVersion.objects.bulk_create([row for _, row in objects], batch_size=100)
        for version, row in objects:
            version.pk = row.pk
        tests = [ABTest(pk=test.pk, version_before_id=test.version_before.pk)
                 for _, test in self._tests() if test.version_before is not None]
        ABTest.objects.bulk_update(tests, ["version_before"], batch_size=500)
        return len(objects)

    def live_periods(self):
        rows = [LiveVersion(agent=self.agent(past), version_id=version.pk, live_from=_aware(start),
                            live_until=_aware(end), cause=cause)
                for past in self.pasts for version, start, end, cause in past.live_periods]
        LiveVersion.objects.bulk_create(rows, batch_size=1000)
        for past in self.pasts:
            profile = self.profile[past.agent_id]
            profile.live_version_id, profile.live_since_task = past.live.pk, past.live_since
        LearningProfile.objects.bulk_update(self.profile.values(), ["live_version", "live_since_task"])
        return len(rows)

    def q_entries(self):
        rows = []
        for past in self.pasts:
            if (past.q, past.visits, past.wins, past.learned) != past.live.learned or past.applied != past.live.applied:
                raise RuntimeError(f"{past.agent_id}: the live version is not the live state.")
            for task_type, state_key, name, q, visits in self.state(past, past.live.learned, past.applied)["q"]:
                rows.append(QEntry(agent=self.agent(past), task_type=task_type, state_key=state_key,
                                   strategy=self.strategies[name], q_value=q, visits=visits))
        QEntry.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    def patterns(self):
        rows = []
        for past in self.pasts:
            learned = np.flatnonzero(past.learning)
            pattern = (past.type * ACTIONS + past.strategy)[learned]
            firsts = dict(zip(*np.unique(pattern, return_index=True)))
            lasts = dict(zip(*np.unique(pattern[::-1], return_index=True)))
            for task_type, name, uses, successes, confidence in self.state(past, past.live.learned, past.applied)[
                    "patterns"]:
                key = past.types.index(task_type) * ACTIONS + STRATEGIES.index(name)
                row = LearnedPattern(agent=self.agent(past), task_type=task_type, strategy=self.strategies[name],
                                     uses=uses, successes=successes, confidence=confidence,
                                     last_used_at=_aware(past.times[learned[len(pattern) - 1 - lasts[key]]]))
                row.first_used = _aware(past.times[learned[firsts[key]]])
                rows.append(row)
        LearnedPattern.objects.bulk_create(rows, batch_size=1000)
        for row in rows:  # created_at is auto_now_add: set when the pattern was first used
            row.created_at = row.first_used
        LearnedPattern.objects.bulk_update(rows, ["created_at"], batch_size=500)
        return len(rows)

    def applied(self):
        rows = []
        for past in self.pasts:
            for type_index, (strategy, (kind, test)) in past.applied.items():
                applied_at = test.applied_at if kind == "abtest" else test.finished_at
                rows.append(AppliedStrategy(agent=self.agent(past), task_type=past.types[type_index],
                                            strategy=self.strategy(strategy), source=self.source((kind, test)),
                                            applied_at=_aware(applied_at)))
        AppliedStrategy.objects.bulk_create(rows)
        return len(rows)

    def failure_patterns(self):
        rows = []
        for past in self.pasts:
            for type_index, class_index in zip(*np.nonzero(past.failures)):
                tasks = np.flatnonzero(past.learning & (past.type == type_index)
                                       & ((past.classes >> class_index) & 1 == 1))
                task, name = int(tasks[-1]), CLASSES[class_index]
                error_type, message = MESSAGES.get(int(past.first_class[task]), ("Error", "the run failed"))
                rows.append(FailurePattern(
                    agent=self.agent(past), task_type=past.types[type_index], failure_class=name,
                    frequency=int(past.failures[type_index, class_index]),
                    confidence=past._failure_confidence(type_index, class_index), mitigation=engine.MITIGATIONS[name],
                    last_message=message.format(budget=max(1, int(past.ms[task]) // 1000), worker=1 + task % 8,
                                                case=TEST_CASES[task % len(TEST_CASES)])[:500],
                    first_seen_at=_aware(past.times[tasks[0]]), last_seen_at=_aware(past.times[task])))
        FailurePattern.objects.bulk_create(rows)
        return len(rows)

    def mitigations(self):
        pairs = [(past, record) for past in self.pasts for record in past.mitigations]
        rows = [Mitigation(agent=self.agent(past), task_type=past.types[record.type_index],
                           failure_class=CLASSES[record.failure_class], adjustment=record.adjustment,
                           strategies=[STRATEGIES[strategy] for strategy in record.strategies], state=record.state,
                           tasks_before=record.tasks_before, failures_before=record.failures_before,
                           tasks_after=record.tasks_after, failures_after=record.failures_after,
                           activated_at=_aware(record.activated_at), activated_after_task=record.activated_after_task,
                           concluded_at=_aware(record.concluded_at)) for past, record in pairs]
        Mitigation.objects.bulk_create(rows, batch_size=500)
        for (_, record), row in zip(pairs, rows):
            record.pk = row.pk
        return len(rows)

    def safeguards(self):
        rows = [Safeguard(agent=self.agent(past), reference_score=past.reference_score,
                          reference_spread=past.reference_spread,
                          reference_version_id=past.reference.pk if past.reference else None,
                          state=past.guard["state"], consecutive_degraded=past.guard["consecutive_degraded"],
                          change_pct=past.guard["change_pct"], healthy_checks=past.guard["healthy_checks"],
                          checked_at=_aware(past.guard["checked_at"])) for past in self.pasts]
        Safeguard.objects.bulk_create(rows)
        return len(rows)

    def rollbacks(self):
        count = 0
        for past in self.pasts:
            for record in past.rollbacks:
                row = Rollback.objects.create(
                    agent=self.agent(past), from_version_id=record.from_version.pk,
                    to_version_id=record.to_version.pk, automatic=record.automatic, actor=record.actor,
                    reason=record.text(), numbers=record.numbers, created_at=_aware(record.created_at))
                record.pk = row.pk
                count += 1
        return count

    # --- the last tasks ----------------------------------------------------------------

    def decisions(self):
        self.decision_rows, self.decision_ids = [], {}
        for past in self.pasts:
            agent, first = self.agent(past), max(0, past.n - EXPERIENCES)
            tests = past.tests
            for task in range(first, past.n):
                decision_id = uuid.UUID(bytes=self.rng.bytes(16), version=4)
                self.decision_ids[(past.agent_id, task)] = decision_id
                arm = int(past.arm[task])
                arm_id = tests[past.test_of[task]].arm_pks[arm] if arm >= 0 else None
                ms = int(past.ms[task])
                self.decision_rows.append(Decision(
                    id=decision_id, agent=agent, task_id=f"{past.agent_id}-{task + 1:07d}",
                    task_type=past.types[past.type[task]], state_key=STATE_KEYS[past.state[task]],
                    strategy=self.strategy(int(past.strategy[task])), explored=bool(past.explored[task]),
                    propensity=float(past.propensity[task]), epsilon=float(past.eps[task]),
                    q_value=float(past.q_before[task]),
                    fallback=("", "applied", "abtest")[past.fallback[task]],
                    abtest_arm_id=arm_id, created_at=_aware(past.times[task] - ms / 1000 - 0.2)))
        Decision.objects.bulk_create(self.decision_rows, batch_size=1000)
        return len(self.decision_rows)

    def executions(self):
        rows, self.execution_ids = [], {}
        decisions = iter(self.decision_rows)
        for past in self.pasts:
            agent, first = self.agent(past), max(0, past.n - EXPERIENCES)
            triggers = {record.task_index - 1 for record in past.rollbacks if record.automatic}
            for task in range(first, past.n):
                decision = next(decisions)
                type_name, strategy = past.types[past.type[task]], STRATEGIES[past.strategy[task]]
                learning = bool(past.learning[task])
                uses, wins = int(past.uses_after[task]), int(past.successes_after[task])
                patterns = [{"pattern": f"{type_name}:{strategy}", "uses": uses, "success_rate": round(wins / uses, 4),
                             "confidence": round(engine.pattern_confidence(uses, wins), 4)}] if learning else []
                reward, before, after = (float(past.reward[task]), float(past.q_before[task]),
                                         float(past.q_after[task]))
                classes = int(past.classes[task])
                rows.append(Execution(
                    agent=agent, decision=decision, idempotency_key=str(decision.id),
                    request_digest=hashlib.sha256(f"{decision.id}:{task}".encode()).hexdigest(), sequence=task + 1,
                    task_id=decision.task_id, task_type=type_name, state_key=decision.state_key,
                    next_state_key=NEXT_KEYS[past.state[task]], strategy=decision.strategy,
                    success=bool(past.success[task]), execution_time_ms=int(past.ms[task]),
                    error_count=int(past.errors[task]),
                    failure_classes=",".join(sorted(name for bit, name in enumerate(CLASSES) if classes >> bit & 1)),
                    coverage=_none(float(past.coverage[task])), satisfaction=_none(float(past.satisfaction[task])),
                    efficiency=_none(float(past.efficiency[task])), reward=reward, previous_q=before, q_value=after,
                    response={"reward": round(reward, 6), "previous_q_value": round(before, 6),
                              "q_value": round(after, 6), "exploration_rate": round(float(past.rate_after[task]), 6),
                              "patterns": patterns, "learning_enabled": learning,
                              "safeguard": past.check_states[task], "rolled_back": task in triggers},
                    created_at=_aware(past.times[task])))
        Execution.objects.bulk_create(rows, batch_size=1000)
        for row in rows:
            self.execution_ids[(row.agent_id, row.sequence - 1)] = row.pk
        return len(rows)

    def snapshots(self):
        pairs = []
        for past in self.pasts:
            for first, last, window, change, at in past.snapshots:
                pairs.append((past, Snapshot(
                    agent=self.agent(past), first_task=first, last_task=last, tasks=window["tasks"],
                    success_rate=window["success_rate"], avg_execution_ms=window["avg_ms"],
                    error_rate=window["error_rate"], satisfaction=window["satisfaction"],
                    efficiency=window["efficiency"], score=window["score"], improvement=change,
                    created_at=_aware(at))))
        Snapshot.objects.bulk_create([row for _, row in pairs], batch_size=2000)
        self.snapshot_rows = pairs
        return len(pairs)

    # --- the operators' side -----------------------------------------------------------

    def alerts(self, alerts):
        rows = []
        for alert in alerts:
            rows.append(Alert(
                agent=self.agents.get(alert.agent), kind=alert.kind, severity=alert.severity, state=alert.state,
                dedup_key=alert.dedup() if callable(alert.dedup) else alert.dedup,
                summary=(alert.summary() if callable(alert.summary) else alert.summary)[:300], numbers=alert.numbers,
                occurrences=alert.occurrences, silenced_until=_aware(alert.silenced_until),
                acknowledged_by=alert.acknowledged_by, acknowledged_at=_aware(alert.acknowledged_at), note=alert.note,
                resolved_at=_aware(alert.resolved_at), created_at=_aware(alert.created_at),
                last_seen_at=_aware(alert.last_seen_at or alert.created_at)))
        Alert.objects.bulk_create(rows)
        for alert, row in zip(alerts, rows):
            alert.pk = row.pk
        return len(rows)

    def audit(self, audit):
        rows = []
        for at, actor, action, target, detail in sorted(audit, key=lambda item: item[0]):
            if isinstance(target, AlertRecord):
                target = f"alert:{target.pk}"
            elif callable(target):
                target = target()
            rows.append(AuditEvent(actor=actor, action=action, target=target,
                                   detail=detail() if callable(detail) else detail, at=_aware(at)))
        AuditEvent.objects.bulk_create(rows)
        return len(rows)

    def shared(self):
        rows = []
        for past in self.pasts:
            for shared in past.shared:
                numbers = shared.numbers
                rows.append(SharedPattern(
                    id=shared.uuid, source=self.agent(past), task_type=shared.task_type,
                    strategy=self.strategy(shared.strategy), confidence=numbers["confidence"],
                    success_rate=numbers["success_rate"], lower_bound=numbers["lower_bound"], uses=numbers["uses"],
                    source_version=shared.source_version, status=shared.status,
                    published_at=_aware(shared.published_at),
                    quarantined_at=_aware(shared.quarantined_at), quarantine_reason=shared.quarantine_reason))
        SharedPattern.objects.bulk_create(rows)
        return len(rows)

    def imports(self, imports):
        rows = [PatternImport(agent=self.agents[agent_id], shared_id=shared.uuid, status=status, confidence=confidence,
                              imported_at=_aware(imported_at), decided_at=_aware(decided_at))
                for agent_id, shared, status, confidence, imported_at, decided_at in imports]
        PatternImport.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    def memory_patterns(self):
        """Each agent's copies in the memory patterns table (7-day TTL), as
        services and sharing keep them: shared ones at swarm level."""
        rows = []
        for past in self.pasts:
            agent = self.agent(past)
            shared = {(item.task_type, STRATEGIES[item.strategy]): item for item in past.shared}
            for row in LearnedPattern.objects.filter(agent=agent).select_related("strategy"):
                item = shared.get((row.task_type, row.strategy.name))
                expires = row.last_used_at + timedelta(seconds=Pattern.DEFAULT_TTL)
                if expires <= timezone.now():
                    continue
                metadata = {"success_rate": round(row.success_rate, 4)}
                level = AccessLevel.PRIVATE
                if item is not None:
                    metadata.update(lower_bound=round(item.numbers["lower_bound"], 4), shared_id=str(item.uuid),
                                    source_version=item.source_version, status=item.status)
                    level = AccessLevel.SWARM if item.status == SharedPatternStatus.ACTIVE else AccessLevel.PRIVATE
                copy = Pattern(owner=agent, access_level=level, team=agent.team, swarm=agent.swarm, expires_at=expires,
                               pattern=row.key, confidence=row.confidence, usage_count=row.uses, metadata=metadata)
                copy.touched = row.last_used_at
                copy.first = row.created_at
                rows.append(copy)
        Pattern.objects.bulk_create(rows)
        for row in rows:  # auto_now fields: when the pattern was first and last used
            row.created_at, row.updated_at = row.first, row.touched
        Pattern.objects.bulk_update(rows, ["created_at", "updated_at"])
        return len(rows)

    def cycles(self):
        rows = []
        for past in self.pasts:
            for cycle in past.cycles:
                decisions = []
                for item in cycle["decisions"]:
                    item = dict(item)
                    if "abtest" in item:
                        item["abtest"] = item["abtest"].pk
                        if item["kind"] == "abtest_decided":
                            item["agent"] = past.agent_id
                    if "mitigation" in item:
                        item["mitigation"] = item["mitigation"].pk
                    decisions.append(item)
                started = _aware(cycle["at"])
                duration = cycle["duration_ms"]
                rows.append(ImprovementCycle(
                    agent=self.agent(past), slot_start=_aware(self.world.start + cycle["slot"] * HOUR),
                    trigger="schedule", steps=["performance", "failures", "opportunities", "applied"],
                    inputs=cycle["inputs"], decisions=decisions, started_at=started,
                    finished_at=_aware(cycle["at"] + duration / 1000), duration_ms=duration, created_at=started))
        ImprovementCycle.objects.bulk_create(rows, batch_size=1000)
        return len(rows)

    # --- the big tables ------------------------------------------------------------------

    def metrics(self):
        chosen = [(index, task) for index, past in enumerate(self.pasts) for task in past.samples.tolist()]
        times = np.array([self.pasts[index].times[task] for index, task in chosen])
        order = np.argsort(times, kind="stable")
        stamps = db_datetimes(times[order])

        def rows():
            for position, at in zip(order.tolist(), stamps):
                index, task = chosen[position]
                past = self.pasts[index]
                yield (past.agent_id, AccessLevel.PRIVATE.value, past.team, SWARM, "task_score",
                       float(past.score[task]), "score", at)

        return insert_fast(PerformanceMetric, ["owner", "access_level", "team", "swarm", "metric", "value", "unit",
                                               "timestamp"], rows())

    def events(self):
        """The last 30 days' events: the loop's notable ones, one learning:improvement
        per snapshot, and learning:training of sampled tasks up to the number asked."""
        since = events_since(self.world.now)
        notable = sorted(((at, index, position) for index, past in enumerate(self.pasts)
                          for position, (at, _, _) in enumerate(past.events) if at > since), reverse=True)
        notable = notable[:self.events_wanted]
        left = self.events_wanted - len(notable)
        snapshots = [(row.created_at.timestamp(), index, position) for index, past in enumerate(self.pasts)
                     for position, row in enumerate(self.snapshot_rows_of(index)) if row.created_at.timestamp() > since]
        snapshots = sorted(snapshots, reverse=True)[:left]
        left -= len(snapshots)
        candidates = [(index, task) for index, past in enumerate(self.pasts) for task in past.training.tolist()]
        if left > len(candidates):
            raise RuntimeError("Too few tasks in the last 30 days for the events asked for.")
        picked = [candidates[i] for i in self.rng.choice(len(candidates), size=left, replace=False).tolist()]
        chosen = ([(at, 0, index, position) for at, index, position in notable]
                  + [(at, 1, index, position) for at, index, position in snapshots]
                  + [(float(self.pasts[index].times[task]), 2, index, task) for index, task in picked])
        times = np.array([item[0] for item in chosen])
        order = np.argsort(times, kind="stable")
        chosen, moments = np.array([item[1:] for item in chosen], dtype=np.int64).reshape(-1, 3)[order], times[order]

        level = AccessLevel.SWARM.value

        def rows():
            for start in range(0, len(chosen), 50_000):
                part, at = chosen[start:start + 50_000], moments[start:start + 50_000]
                training = self.training_payloads(part)
                for (kind, index, ref), stamp, expires in zip(part.tolist(), db_datetimes(at),
                                                              db_datetimes(at + EVENT_SECONDS)):
                    past = self.pasts[index]
                    if kind == 2:
                        event_type, payload = "learning:training", training.pop()
                    else:
                        event_type, payload = (self.notable_payload(past, ref) if kind == 0 else
                                               self.improvement_payload(index, ref))
                        payload = _json(payload)
                    yield past.agent_id, level, past.team, SWARM, expires, event_type, payload, stamp

        return insert_fast(Event, ["owner", "access_level", "team", "swarm", "expires_at", "type", "payload",
                                   "timestamp"], rows())

    def training_payloads(self, part):
        """The learning:training payloads of a chunk's training events, last first
        (a fixed template: every value is a number, null or a plain name)."""
        payloads = [None] * len(part)
        for index, past in enumerate(self.pasts):
            mine = np.flatnonzero((part[:, 0] == 2) & (part[:, 1] == index))
            if not len(mine):
                continue
            tasks = part[mine, 2]
            columns = zip(
                mine.tolist(), tasks.tolist(), np.array(past.types)[past.type[tasks]].tolist(),
                np.array(STATE_KEYS)[past.state[tasks]].tolist(), np.array(STRATEGIES)[past.strategy[tasks]].tolist(),
                *(np.round(values[tasks].astype(float), 4).tolist()
                  for values in (past.reward, past.q_before, past.q_after, past.rate_after)))
            agent_pk = self.agent(past).pk
            for position, task, task_type, state, strategy, reward, before, after, rate in columns:
                execution = self.execution_ids.get((agent_pk, task), "null")
                decision = self.decision_ids.get((past.agent_id, task))
                decision = "null" if decision is None else f'"{decision}"'
                payloads[position] = (
                    f'{{"execution_id":{execution},"decision_id":{decision},'
                    f'"task_type":"{task_type}","state":"{state}","strategy":"{strategy}","reward":{reward!r},'
                    f'"q_before":{before!r},"q_after":{after!r},"epsilon":{rate!r}}}')
        return [payload for payload in reversed(payloads) if payload is not None]

    def snapshot_rows_of(self, index):
        if not hasattr(self, "_snapshots_by_agent"):
            self._snapshots_by_agent = {}
            for past, row in self.snapshot_rows:
                self._snapshots_by_agent.setdefault(past.agent_id, []).append(row)
        return self._snapshots_by_agent[self.pasts[index].agent_id]

    def improvement_payload(self, index, position):
        row = self.snapshot_rows_of(index)[position]
        return "learning:improvement", {
            "snapshot_id": row.pk, "score": round(row.score, 4),
            "improvement": None if row.improvement is None else round(row.improvement, 4), "tasks": row.last_task}

    def notable_payload(self, past, position):
        at, event_type, record = past.events[position]
        if event_type == "learning:rollback":
            return event_type, {"rollback_id": record.pk, "trigger": "automatic" if record.automatic else "manual",
                                "from": record.from_version.label, "to": record.to_version.label,
                                "degradation": record.numbers, "at": _iso(record.created_at)}
        if event_type == "learning:pattern_shared":
            numbers = record.published_numbers
            return event_type, {"pattern": f"{record.task_type}:{STRATEGIES[record.strategy]}", "source": record.agent,
                                "shared_id": str(record.uuid), "confidence": round(numbers["confidence"], 4),
                                "success_rate": round(numbers["success_rate"], 4),
                                "source_version": record.source_version, "targets": record.targets}
        if event_type == "learning:mitigation_applied":
            rate = record.failures_before / record.tasks_before if record.tasks_before else 0.0
            return event_type, {"mitigation_id": record.pk, "task_type": past.types[record.type_index],
                                "failure_class": CLASSES[record.failure_class], "adjustment": record.adjustment,
                                "strategies": [STRATEGIES[strategy] for strategy in record.strategies],
                                "failure_rate_before": round(rate, 4)}
        test, state, reason = record
        return event_type, {"abtest_id": test.pk, "task_type": test.task_type, "state": state, "reason": reason}

    def agent_records(self):
        agents = []
        for past in self.pasts:
            _, _, window, change, at = past.snapshots[-1]
            agent = self.agent(past)
            agent.performance = {
                "score": round(window["score"], 4), "improvement": None if change is None else round(change, 4),
                "baseline": past.baseline, "epsilon": round(epsilon(past.learned), 4), "tasks": past.n,
                "updated_at": _iso(at)}
            agent.last_heartbeat_at = _aware(float(past.times[-1]))
            agents.append(agent)
        Agent.objects.bulk_update(agents, ["performance", "last_heartbeat_at"])
        return len(agents)


# --- entry points ----------------------------------------------------------------------------


def has_history():
    return Execution.objects.exists() or Snapshot.objects.exists()


def clear_history(agents):
    """Delete the learning history of `agents`, with their events, metrics and
    pattern copies, and the fleet's scheduler alerts. The audit trail is
    append-only, so its records of earlier runs stay."""
    ids = [agent.pk for agent in agents]
    names = [agent.agent_id for agent in agents]
    with transaction.atomic():
        Execution.objects.filter(agent_id__in=ids).delete()
        Decision.objects.filter(agent_id__in=ids).delete()
        PatternImport.objects.filter(Q(agent_id__in=ids) | Q(shared__source_id__in=ids)).delete()
        SharedPattern.objects.filter(source_id__in=ids).delete()
        for model in (ABTest, Mitigation, ImprovementCycle, Snapshot, QEntry, LearnedPattern, FailurePattern,
                      AppliedStrategy, Rollback, Alert, Safeguard, LiveVersion, LearningProfile, StateVersion):
            model.objects.filter(agent_id__in=ids).delete()
        Alert.objects.filter(agent__isnull=True, kind="schedule:stale").delete()
        for model in (Event, Pattern):
            model.with_expired.filter(owner_id__in=names).delete()
        PerformanceMetric.objects.filter(owner_id__in=names).delete()


def generate(days=90, events=1_000_000, samples=200_000, seed=1, replace=False, say=print):
    """Fill the database with a simulated past of the demo fleet (see the
    module docstring); returns {table: rows written}."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS} (older history is pruned).")
    if events < 0 or samples < 0:
        raise ValueError("events and samples must not be negative.")
    started = time.perf_counter()
    register_demo_fleet()
    agents = {agent.agent_id: agent for agent in Agent.objects.filter(agent_id__in=[a for a, _ in demo_fleet()])}
    if has_history():
        if not replace:
            raise HistoryExists("The database already has learning history (executions or snapshots).")
        clear_history(agents.values())
        say(f"  deleted the demo agents' history in {time.perf_counter() - started:.1f} s")
    strategies = {item.name: item for item in Strategy.objects.filter(name__in=STRATEGIES)}
    missing = sorted(set(STRATEGIES) - set(strategies))
    if missing:
        raise ValueError(f"The strategy catalog lacks {', '.join(missing)}.")
    world, pasts = plan(days, events, samples, seed, timezone.now().timestamp())
    simulating = time.perf_counter()
    for past in pasts:
        past.run()
    say(f"  simulated {len(pasts)} agents over {days} days: {sum(past.n for past in pasts):,} tasks in "
        f"{time.perf_counter() - simulating:.1f} s")
    alerts, audit = operators_at_work(world, pasts)
    quarantine_by_hand(world, pasts, audit)
    imports = share_imports(world, pasts)
    writer = Writer(world, pasts, agents, strategies, events, say)
    counts = writer.write(alerts, audit, imports)
    for past in pasts:
        profile = LearningProfile.objects.with_live_version().get(agent=agents[past.agent_id])
        if versions.checksum(versions.learned_state(profile.agent, profile)) != profile.live_version.checksum:
            raise RuntimeError(f"{past.agent_id}: the live state does not match its live version.")
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts
