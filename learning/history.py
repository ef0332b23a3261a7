"""A simulated past for the 17 demo agents: FOR DEMOS AND BENCHMARKS ONLY.

`python manage.py seed_history` writes months of invented learning history
into the real tables, so the dashboard, the benchmark and the 30-day report
have a long history to show. No agent did this work. The product never shows
invented data on real pages, so run it only on a demo or benchmark database:
it refuses when learning history exists already, unless told to replace the
demo agents' history.

How the past is made (one seed makes it all; only "now" moves it in time):

* Every agent works through hourly cycle slots. Its tasks come from the
  simulated fleet's world (learning/simulator.py): its team's task types, six
  buckets per type with a best strategy each. Its success rate drifts up over
  the period (towards and around the 20 % improvement target), with dips: a
  few incidents, and the degradations behind the rollbacks.
* Each task runs through the real learning definitions: epsilon-greedy choice
  with decaying epsilon, engine.reward, engine.q_update of Q(s, a), pattern
  and failure-pattern counts, the composite score. A task's success depends
  on the agent's trend, on exploring away from the bucket's best strategy,
  and on the A/B test arm or applied strategy it ran with.
* The improvement loop runs at every slot the way learning/improvement.py
  does: mitigations for frequent failure classes (activated, judged after 50
  tasks), A/B tests started, looked at with learning/stats.py every slot,
  decided, applied, monitored with the safeguard's rule for 7 days, kept or
  reverted. Tests are given an intended effect (a real winner, no effect, a
  worse treatment, a slower one, a broken assignment that trips the sample
  ratio check); the outcome is whatever the statistics decide.
* State versions are captured every few days (the real job captures each slot
  and prunes; keeping one every few days is what a long history looks like
  after pruning), before applying a winner and before rollbacks. Payloads
  are real compressed states whose checksums restore exactly; the last
  version is the live state. Three agents are rolled back (one automatically
  after three degraded safeguard checks, two by an operator, one of those
  undone), which aborts or reverts their tests and quarantines what they
  shared since the version they returned to.
* Patterns are shared when they pass sharing.qualifies, imported on
  probation by the swarm and confirmed or rejected by the importers' own
  tasks.

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
from datetime import datetime
from datetime import timezone as dt_timezone

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from qefleet.memory import roles
from qefleet.memory.fleet import DEMO_TEAMS, SWARM, register_demo_fleet
from qefleet.memory.models import DAY, AccessLevel, Agent, AuditEvent, Event, Pattern, PerformanceMetric

from . import abtests, engine, safeguard, sharing, stats, versions
from .models import (
    ABArm,
    ABLook,
    ABTest,
    ABTestState,
    ABTransition,
    AlertState,
    Alert,
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
from .simulator import CAPABILITY_LEVELS, COMPLEXITY_LEVELS, ERRORS, FAILURE_MIX, STRATEGIES, TEST_CASES, FleetEnvironment

HOUR = 3600.0
MAX_DAYS = Snapshot.RETENTION_DAYS  # older history would be pruned at once
EVENT_SECONDS = Event.DEFAULT_TTL
CYCLE_SECONDS = ImprovementCycle.RETENTION_DAYS * DAY
EXPERIENCES = engine.DEFAULT_CONFIG["max_experiences"]
BASE_TASKS_PER_HOUR = 20
TASK_TYPE_SHARE = 0.9  # of an agent's tasks in its main task type, as in the simulator
EXPLORE_PENALTY = 0.2  # success lost when exploring away from the bucket's best strategy


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

# What each test is set up to show (the statistics decide what it shows):
# the treatment's success over the control's, and its later effect.
INTENTS = ("kept", "inconclusive", "reverted", "control_wins", "srm", "kept", "guardrail", "aborted",
           "inconclusive", "kept")
ROLES = ("auto_rollback", "rollback_and_undo", "rollback_pending", "final_running", "final_running",
         "final_running", "final_monitoring")
REGULAR_CUTOFF = 10 * DAY  # before a final test, so earlier ones are done (7 monitoring days and more)


class HistoryExists(Exception):
    pass


# --- the definitions, over arrays ------------------------------------------------------------


def task_scores(success, execution_ms, had_errors, satisfaction, efficiency):
    """engine.composite_score of single tasks over arrays (NaN: not reported),
    as safeguard.task_score scores one task."""
    weights = engine.SCORE_WEIGHTS
    total = (weights["success"] * success + weights["time"] * np.maximum(0.0, 1.0 - execution_ms / engine.TIME_SCALE_MS)
             + weights["errors"] * (1.0 - had_errors))
    weight = np.full(len(total), weights["success"] + weights["time"] + weights["errors"])
    for name, values in (("satisfaction", satisfaction), ("efficiency", efficiency)):
        present = ~np.isnan(values)
        total = total + np.where(present, weights[name] * np.nan_to_num(values), 0.0)
        weight = weight + present * weights[name]
    return total / weight


def rewards(success, execution_ms, errors, coverage):
    """engine.reward over arrays, for reports without feedback (NaN coverage: not reported)."""
    value = (np.where(success, 1.0, -1.0) + 0.5 * np.maximum(0.0, 1.0 - execution_ms / engine.TIME_SCALE_MS)
             - 0.1 * errors)
    value = value + np.where(np.isnan(coverage), 0.0, 2.0 * (np.nan_to_num(coverage) - 0.8))
    return np.clip(value, -engine.REWARD_LIMIT, engine.REWARD_LIMIT)


def epsilon(learned):
    """The exploration rate after `learned` tasks from the default config."""
    config = engine.DEFAULT_CONFIG
    return max(config["min_exploration_rate"], config["exploration_rate"] * config["exploration_decay"] ** learned)


def _mean(values):
    return None if len(values) == 0 or np.isnan(values).all() else float(np.nanmean(values))


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
    control: int
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
    state: str = ABTestState.RUNNING
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

    def effect(self, at):
        """Its applied strategy's effect on the task type's success at `at`."""
        if self.degrade_at is not None and at >= self.degrade_at:
            return -0.3
        return 0.5 * max(self.delta, 0.0)


@dataclass(eq=False)
class MitigationRecord:
    type_index: int
    failure_class: int
    adjustment: str
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
                             np.array(others)[rng.integers(len(others), size=n)]).astype(np.int64)
        complexity, capabilities = rng.integers(len(COMPLEXITY), size=n), rng.integers(len(CAPABILITIES), size=n)
        attempts, resources = rng.random(n) < 0.1, rng.random(n) < 0.15
        self.state = ((complexity * 2 + capabilities) * 2 + attempts) * 2 + resources
        self.best_strategy = self.best[self.type, complexity, capabilities]
        next_state = NEXT_STATE[self.state]
        self.group = (self.type * STATES + self.state) * ACTIONS
        self.next_group = np.where(next_state >= 0, (self.type * STATES + next_state) * ACTIONS, -1)
        self.uniform = rng.random((8, n))   # explore, pick, arm, success, rescue, class, second class, flaky
        self.pick = rng.integers(ACTIONS, size=n)
        self.normal = rng.standard_normal((4, n))  # duration, coverage, satisfaction, efficiency
        self.reported = rng.random((3, n)) < np.array([[0.5], [0.4], [0.33]])
        self.two_errors = rng.random(n) < 0.3

        # The agent's trend: success and speed improve over the period.
        span = world.slots * HOUR
        tau = rng.uniform(0.25, 0.6)
        self.progress = (1 - np.exp(-(self.times - world.start) / span / tau)) / (1 - math.exp(-1 / tau))
        self.trend = rng.uniform(0.68, 0.76) + rng.uniform(0.07, 0.15) * self.progress
        self.trend_ms = rng.uniform(14_000, 20_000) * (1 - 0.15 * self.progress)

        # What each task turned out to be.
        self.strategy = np.zeros(n, dtype=np.int64)
        self.explored = np.zeros(n, dtype=bool)
        self.test_of = np.full(n, -1, dtype=np.int64)
        self.arm = np.full(n, -1, dtype=np.int64)
        self.success = np.zeros(n, dtype=bool)
        self.ms = np.zeros(n, dtype=np.int64)
        self.errors = np.zeros(n, dtype=np.int64)
        self.classes = np.zeros(n, dtype=np.int64)   # bit per failure class
        self.first_class = np.zeros(n, dtype=np.int64)
        self.greedy = np.zeros(n, dtype=np.int64)
        self.coverage = np.full(n, np.nan)
        self.satisfaction = np.full(n, np.nan)
        self.efficiency = np.full(n, np.nan)
        self.reward = np.zeros(n)
        self.score = np.zeros(n)
        self.eps = np.zeros(n)
        self.rate_after = np.zeros(n)  # the profile's exploration rate after the task
        self.learning = np.zeros(n, dtype=bool)
        self.fallback = np.zeros(n, dtype=np.int64)  # 0 learned, 1 applied, 2 A/B test
        self.q_before = np.zeros(n)
        self.q_after = np.zeros(n)
        self.uses_after = np.zeros(n, dtype=np.int64)
        self.successes_after = np.zeros(n, dtype=np.int64)
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
        self.failure_seen = {}                                               # (type, class) -> first, last, message
        self.type_tasks = np.zeros(types, dtype=np.int64)                    # every task, for mitigations
        self.type_failures = np.zeros((types, len(CLASSES)), dtype=np.int64)
        self.type_index = [[] for _ in range(types)]

        self.tests, self.running, self.monitoring = [], None, []
        self.next_test_at = world.start + rng.uniform(6, 30) * HOUR
        self.final = None
        end = world.start + span
        if role == "final_running":
            self.final = (end - rng.uniform(6, 14) * HOUR, "running")
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
        self.history_enabled[0] = True
        self.agenda = []
        self.offsets = rng.uniform(1, 40, size=(world.slots + 1, 4))  # snapshot, capture, sharing, cycle
        self.offsets.sort(axis=1)
        self._plan_role(end)

    # --- the role's incidents ---------------------------------------------------------------

    def _plan_role(self, end):
        rng, start, span = self.rng, self.world.start, self.world.slots * HOUR
        if self.role == "auto_rollback":
            at = start + math.floor(0.4 * self.world.slots) * HOUR + 20 * 60
            self.dips.append([at, at + 8 * HOUR, 0.35])
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
        if self.enabled and h < self.world.slots:
            self._share(h, at + share)
            self._cycle(h, at + cycle)

    def _slot_end(self, h):
        self.history_uses[h] = self.pattern_uses
        self.history_wins[h] = self.pattern_wins
        self.history_enabled[h] = self.enabled
        live = self.live
        if live is None or not self.enabled:
            return
        healthy = self.clean_since_live and not self._dip(self.world.start + h * HOUR)
        if healthy and self.done - self.live_since >= KNOWN_GOOD_AFTER:
            if not live.known_good or live is self.reference:
                live.known_good = True
                self.reference = live
                scores = self.score[max(self.live_since, self.done - safeguard.REFERENCE_TASKS):self.done]
                self.reference_score, self.reference_spread = float(scores.mean()), safeguard.standard_error(scores)

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
        test = self.running if self.enabled else None
        arm = np.full(count, -1)
        if test is not None:
            covered = types == test.type_index
            arm[covered] = np.where(self.uniform[2, span][covered] < test.control_share, 0, 1)
        greedy = self.best_strategy[span].copy()
        for type_index, (strategy, _) in self.applied.items():
            greedy[types == type_index] = strategy
        config = engine.DEFAULT_CONFIG
        if self.enabled:  # the profile's rate before each task, decayed by every task learned from
            rate = np.maximum(config["min_exploration_rate"],
                              config["exploration_rate"] * config["exploration_decay"] ** (self.learned + np.arange(count)))
            rate_after = np.maximum(config["min_exploration_rate"], rate * config["exploration_decay"])
            eps = np.where(arm >= 0, 0.0, rate)
        else:
            eps, rate_after = np.zeros(count), np.full(count, epsilon(self.learned))
        explored = (arm < 0) & (self.uniform[0, span] < eps)
        strategy = np.where(explored, self.pick[span], greedy)
        if test is not None:
            strategy[arm == 0], strategy[arm == 1] = test.control, test.treatment
        times = self.times[span]
        dip = sum(depth * ((times >= start) & (times < end)) for start, end, depth in self.dips)
        chance = self.trend[span] - dip + self._effects(types, times[0])
        chance = chance - EXPLORE_PENALTY * (explored & (strategy != greedy))
        if test is not None:
            chance = chance + np.where(arm == 1, test.delta, 0.0)
        success = self.uniform[3, span] < np.clip(chance, 0.02, 0.98)
        first, second = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
        for index, (cumulative, classes) in enumerate(MIX):
            mine = strategy == index
            first[mine] = classes[np.searchsorted(cumulative, self.uniform[5, span][mine], side="right").clip(
                max=len(classes) - 1)]
            second[mine] = classes[np.searchsorted(cumulative, self.uniform[6, span][mine], side="right").clip(
                max=len(classes) - 1)]
        rescued = np.zeros(count, dtype=bool)
        for (type_index, class_index), record in self.latest_mitigation.items():
            if record.state in (MitigationState.ACTIVE, MitigationState.EFFECTIVE) and record.adjustment != "none":
                rescued |= (types == type_index) & (first == class_index)
        success |= rescued & (self.uniform[4, span] < 0.5)
        two = self.two_errors[span]
        errors = np.where(success, (self.uniform[7, span] < 0.04).astype(np.int64), 1 + two)
        classes = np.where(success, 0, (1 << first) | np.where(two, 1 << second, 0))
        ms = self.trend_ms[span] * np.exp(0.35 * self.normal[0, span]) * np.where(success, 1.0, 1.3)
        if test is not None and test.slower:
            ms = ms * np.where(arm == 1, 1.3, 1.0)
        ms = np.maximum(50, ms).astype(np.int64)
        reported_coverage, reported_satisfaction, reported_efficiency = self.reported[:, span]
        progress = self.progress[span]
        coverage = np.where(reported_coverage, np.round(np.clip(np.where(
            success, 0.86 + 0.04 * self.normal[1, span], 0.6 + 0.1 * self.normal[1, span]), 0, 1), 3), np.nan)
        satisfaction = np.where(reported_satisfaction, np.round(np.clip(
            0.55 + 0.1 * progress + 0.1 * success + 0.1 * self.normal[2, span], 0, 1), 3), np.nan)
        efficiency = np.where(reported_efficiency, np.round(np.clip(
            0.5 + 0.08 * progress + 0.1 * success + 0.1 * self.normal[3, span], 0, 1), 3), np.nan)
        self.strategy[span], self.explored[span], self.arm[span], self.greedy[span] = strategy, explored, arm, greedy
        self.first_class[span] = first
        self.success[span], self.ms[span], self.errors[span], self.classes[span] = success, ms, errors, classes
        self.coverage[span], self.satisfaction[span], self.efficiency[span] = coverage, satisfaction, efficiency
        self.reward[span] = rewards(success, ms, errors, coverage)
        self.score[span] = task_scores(success, ms, errors > 0, satisfaction, efficiency)
        self.eps[span] = eps
        self.rate_after[span] = rate_after
        self.learning[span] = self.enabled
        self.fallback[span] = np.where(arm >= 0, 2, np.where(np.isin(types, list(self.applied)), 1, 0))
        self.test_of[span] = np.where(arm >= 0, len(self.tests) - 1, -1)
        stop = self._learn(lo, hi)
        done = slice(lo, stop)
        self._count(done, test)
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
        scores = self.score[task + 1 - GUARD_WINDOW:task + 1]
        if self.reference_score is None or len(scores) < GUARD_WINDOW:
            return False
        state, change = safeguard.judge(scores, self.reference_score, self.reference_spread, GUARD_THRESHOLD, GUARD_Z)
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
        types = self.type[span]
        bits = (self.classes[span][:, None] >> np.arange(len(CLASSES))) & 1
        for type_index in range(len(self.types)):
            mine = types == type_index
            self.type_failures[type_index] += bits[mine].sum(axis=0)
            self.failures[type_index] += bits[mine & learned].sum(axis=0)
        for class_index in np.flatnonzero(bits[learned].any(axis=0)):
            for type_index in np.unique(types[learned & (bits[:, class_index] == 1)]):
                tasks = np.flatnonzero(learned & (bits[:, class_index] == 1) & (types == type_index)) + span.start
                key = (int(type_index), int(class_index))
                first = self.failure_seen.get(key, (float(self.times[tasks[0]]),))[0]
                self.failure_seen[key] = (first, float(self.times[tasks[-1]]), int(tasks[-1]))
        np.add.at(self.type_tasks, types, 1)
        for type_index in range(len(self.types)):
            self.type_index[type_index].extend((np.flatnonzero(types == type_index) + span.start).tolist())
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
        """tracker.window_stats over tasks lo..hi-1 (0-based), or None."""
        lo = max(0, lo)
        if hi <= lo:
            return None
        span = slice(lo, hi)
        success_rate = float(self.success[span].mean())
        avg_ms = float(self.ms[span].mean())
        error_rate = float((self.errors[span] > 0).mean())
        satisfaction, efficiency = _mean(self.satisfaction[span]), _mean(self.efficiency[span])
        return {"tasks": hi - lo, "success_rate": success_rate, "avg_ms": avg_ms, "error_rate": error_rate,
                "satisfaction": satisfaction, "efficiency": efficiency,
                "score": engine.composite_score(success_rate, engine.time_score(avg_ms), error_rate, satisfaction,
                                                efficiency)}

    def current(self, upto=None):
        """(score, improvement) as tracker.current_improvement sees them after task `upto`."""
        upto = self.done if upto is None else upto
        stats_ = self.window(upto - 50, upto)
        if stats_ is None:
            return None, None
        if self.baseline is None or upto < 50:
            return stats_["score"], None
        return stats_["score"], engine.improvement(stats_["score"], self.baseline)

    # --- versions and rollbacks -----------------------------------------------------------

    def capture(self, reason, at):
        if reason == VersionReason.CYCLE and not self.changed:
            return None
        first = max(0, self.done - EXPERIENCES)
        experiences = [[task + 1, self.types[t], STATE_KEYS[s], STRATEGIES[a], r, NEXT_KEYS[s]] for task, t, s, a, r in zip(
            range(self.done - 1, first - 1, -1), self.type[first:self.done][::-1].tolist(),
            self.state[first:self.done][::-1].tolist(), self.strategy[first:self.done][::-1].tolist(),
            self.reward[first:self.done][::-1].tolist())]
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
        self.next_test_at = at + self.rng.uniform(24, 72) * HOUR
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
            self.audit.append((at + 1, roles.OPERATOR, "rollback", record,
                               lambda: {"to": record.to_version.label, "from_": record.from_version.label,
                                        "reason": reason}))
        elif kind == "undo":
            last = self.rollbacks[-1]
            record = self.roll_back(last.from_version, at, automatic=False, actor=roles.OPERATOR,
                                    reason="", numbers={}, undo_of=last)
            self.audit.append((at + 1, roles.OPERATOR, "undo_rollback", record,
                               lambda: {"rollback": last.pk, "to": record.to_version.label}))
        elif kind == "re_enable":
            self.enabled = True
            self.audit.append((at, detail, "re_enable_learning", None, dict))
        elif kind == "abort" and detail is self.running and self.enabled:
            self._finish_test(detail, ABTestState.ABORTED, "aborted by operator: the staging environment was "
                              "unstable while the test ran", at, decided=True)

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
            if record.tasks_after >= 50:
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
                if self.failures[type_index, class_index] < 5:
                    continue
                if self._failure_confidence(type_index, class_index) < 0.10:
                    continue
                latest = self.latest_mitigation.get((type_index, class_index))
                if latest is not None and (latest.state in (MitigationState.ACTIVE, MitigationState.EFFECTIVE)
                                           or latest.concluded_at >= at - 7 * DAY):
                    continue
                recent = self.type_index[type_index][-100:]
                bit = 1 << class_index
                name = CLASSES[class_index]
                record = MitigationRecord(
                    type_index, class_index, engine.ADJUSTMENTS[name], len(recent),
                    int(sum(1 for task in recent if self.classes[task] & bit)), at, self.done,
                    (int(self.type_tasks[type_index]), int(self.type_failures[type_index, class_index])))
                self.mitigations.append(record)
                self.latest_mitigation[(type_index, class_index)] = record
                self.events.append((at, "learning:mitigation_applied", record))
                decisions.append({"kind": "mitigation_applied", "mitigation": record,
                                  "task_type": self.types[type_index], "failure_class": name,
                                  "adjustment": record.adjustment})
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
        ty = self.main
        uses = self.pattern_uses[ty * ACTIONS:(ty + 1) * ACTIONS]
        wins = self.pattern_wins[ty * ACTIONS:(ty + 1) * ACTIONS]
        control = self.applied[ty][0] if ty in self.applied else int(np.argmax(uses))
        rate = [wins[s] / uses[s] if uses[s] else 0.0 for s in range(ACTIONS)]
        q_mean = []
        for s in range(ACTIONS):
            groups = [(ty * STATES + state) * ACTIONS + s for state in range(STATES)]
            total = sum(self.visits[g] for g in groups)
            q_mean.append(sum(self.q[g] * self.visits[g] for g in groups) / total if total else 0.0)
        candidates = [s for s in range(ACTIONS) if s != control and 5 <= uses[s] < uses[control]] or [
            s for s in range(ACTIONS) if s != control]
        treatment = max(candidates, key=lambda s: (rate[s] - rate[control], q_mean[s] - q_mean[control]))
        gain, q_gain = rate[treatment] - rate[control], q_mean[treatment] - q_mean[control]
        task_type, control_name, treatment_name = self.types[ty], STRATEGIES[control], STRATEGIES[treatment]
        why = (f"{treatment_name} succeeded in {rate[treatment]:.0%} of {uses[treatment]} tasks against "
               f"{rate[control]:.0%} of {uses[control]} for {control_name} (Q-value {q_gain:+.2f}); testing whether "
               f"it is really better for {task_type}")
        if gain >= 0.05 or q_gain >= 0.10:
            source, created_by, mde = "loop", "improvement cycle", self.world.loop_mde
        else:
            source, created_by, mde = "admin", roles.OPERATOR, stats.DEFAULT_MDE
            why = f"An operator's question: is {treatment_name} better than {control_name} for {task_type}?"
        base_rate = rate[control] if uses[control] >= 10 else 0.5
        horizon = stats.samples_per_arm(mde, stats.DEFAULT_POWER, base_rate=base_rate)
        rng = self.rng
        delta = {"kept": rng.uniform(0.10, 0.16), "reverted": rng.uniform(0.10, 0.16), "inconclusive": 0.0,
                 "control_wins": -rng.uniform(0.12, 0.18), "guardrail": rng.uniform(0.12, 0.16), "srm": 0.05,
                 "aborted": 0.02, "running": 0.03, "monitoring": 0.18}[intent]
        test = Test(ty, task_type, intent, delta, control, treatment, f"{task_type}: {treatment_name} vs {control_name}",
                    why, source, created_by, mde, horizon, at, control_share=0.62 if intent == "srm" else 0.5,
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
        decisions.append({"kind": "abtest_created", "abtest": test, "task_type": task_type, "control": control_name,
                          "treatment": treatment_name})
        return [{"task_type": task_type, "current": control_name, "candidate": treatment_name, "why": why}]

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
        self.next_test_at = at + self.rng.uniform(12, 72) * HOUR

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
        control_name = STRATEGIES[test.control]
        if srm < stats.SRM_P and control.n + treatment.n >= abtests.SRM_MIN_SAMPLES:
            reason = (f"aborted: sample ratio mismatch (chi-square p = {srm:.2g}) between the arms' "
                      f"{control.n} and {treatment.n} tasks; assignment or reporting is broken")
            self._finish_test(test, ABTestState.ABORTED, reason, at, decided=True)
            self.raise_alert("abtest:srm", Severity.WARNING, lambda: f"A/B test {test.pk} of {self.agent_id} aborted: "
                             "sample ratio mismatch", test.verdict, lambda: f"abtest:srm:{test.pk}", at)
            decisions.append({"kind": "abtest_decided", "abtest": test, "outcome": ABTestState.ABORTED})
            return
        if verdict.outcome == "running":
            return
        if verdict.outcome == "inconclusive":
            state, reason = ABTestState.INCONCLUSIVE, f"{verdict.reason}; {control_name} stays"
        elif verdict.outcome == "loser":
            state = ABTestState.WINNER
            reason = f"control wins: {verdict.reason.partition(': ')[2]}; {control_name} stays"
        elif verdict.blocked_by:
            state, reason = ABTestState.WINNER, (
                f"{verdict.reason}; not applied: the {' and '.join(verdict.blocked_by)} guardrail"
                f"{'s' if len(verdict.blocked_by) > 1 else ''} failed")
        else:
            self._transition(test, ABTestState.WINNER, verdict.reason, at, decision=verdict.reason, decided_at=at)
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
                         reference_spread=safeguard.standard_error(scores) if len(scores) else 0.0)
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
                state, change = safeguard.judge(self.score[window], test.reference_score, test.reference_spread,
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
                self.next_test_at = at + self.rng.uniform(12, 72) * HOUR
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
        self.next_test_at = at + self.rng.uniform(12, 72) * HOUR
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
                scores = self.score[max(0, task + 1 - GUARD_WINDOW):task + 1]
                if self.reference_score is None or len(scores) < GUARD_WINDOW:
                    state, change = SafeguardState.INSUFFICIENT, None
                else:
                    state, change = safeguard.judge(scores, self.reference_score, self.reference_spread,
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
            window = self.window(lo, hi)
            at = self.world.start + (h + 1) * HOUR + self.offsets[h + 1][0]
            self.snapshots.append((lo + 1, hi, window, self.current(hi)[1], at))

    def _choose_samples(self):
        rng = np.random.default_rng([self.world.seed, self.n, 2])
        recent = np.flatnonzero(self.times > self.world.now - EVENT_SECONDS)
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
                  capture_every=max(1, round(min(2.5, max(0.5, days / 36)) * 24)),
                  loop_mde=min(0.9, settings.ABTEST_MDE_POINTS / 100))
    rng = np.random.default_rng([seed, 0])
    boundaries = start + HOUR * np.arange(slots + 1)
    recent = boundaries[:-1] >= now - EVENT_SECONDS   # slots whose tasks all fall in the events' 30 days
    # Every snapshot of the 30 days gives an improvement event; training events
    # are drawn from the tasks of those days, so the fleet works fast enough for them.
    training = max(0, events - len(fleet) * int((boundaries[1:] > now - EVENT_SECONDS).sum()))
    rate = max(BASE_TASKS_PER_HOUR, 1.1 * training / (len(fleet) * max(1, recent.sum())),
               1.1 * samples / (len(fleet) * slots))
    hour_of_day = (boundaries[:-1] // HOUR % 24).astype(int)
    busy = np.where((hour_of_day >= 8) & (hour_of_day < 20), 1.4, 0.6)
    counts = [np.maximum(1, rng.poisson(rate * rng.uniform(0.85, 1.15) * busy)) for _ in fleet]
    capacity = np.array([int(c[recent].sum()) for c in counts])
    if capacity.sum() < training:
        raise RuntimeError("The simulated fleet has too few tasks for the events asked for.")
    training_split = _allocate(training, capacity) if training else np.zeros(len(fleet), dtype=np.int64)
    sample_split = _allocate(samples, [c.sum() for c in counts]) if samples else np.zeros(len(fleet), dtype=np.int64)
    order = rng.permutation(len(fleet))
    roles_ = {int(index): role for index, role in zip(order, ROLES)}
    calm = [int(index) for index in order[len(ROLES):]]
    incidents = {}
    for index in calm[:4]:
        at = start + rng.uniform(0.15, 0.85) * slots * HOUR
        incidents[index] = [(at, at + rng.uniform(6, 24) * HOUR, rng.uniform(0.06, 0.1))]
    regular = [index for index in range(len(fleet)) if roles_.get(index, "").startswith("final")]
    regular = [index for index in range(len(fleet)) if index not in regular] + regular
    pasts = []
    for index, (agent_id, team) in enumerate(fleet):
        first = regular.index(index)
        intents = itertools.cycle(INTENTS[first % len(INTENTS):] + INTENTS[:first % len(INTENTS)])
        pasts.append(AgentPast(world, index, agent_id, team, counts[index], roles_.get(index), intents,
                               incidents.get(index, []), int(training_split[index]), int(sample_split[index])))
    return world, pasts


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
    audit = []
    for past in pasts:
        for at, actor, action, record, detail in past.audit:
            audit.append((at, actor, action, f"agent:{past.agent_id}", detail))
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
