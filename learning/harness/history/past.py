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

import json
import math
import uuid

import numpy as np

from learning import abtests, improvement, mitigations, safeguard, sharing
from learning.core import engine, scoring, stats
from learning.harness.simulator import (
    CAPABILITY_LEVELS,
    COMPLEXITY_LEVELS,
    STRATEGIES,
    FleetEnvironment,
)
from learning.models import (
    ABTest,
    ABTestState,
    AlertState,
    LiveCause,
    MitigationState,
    SafeguardState,
    Severity,
    SharedPatternStatus,
    StateVersion,
    VersionReason,
)
from qefleet.memory import roles
from qefleet.memory.models import DAY

from . import constants
from .constants import (
    ACTIONS,
    CAPABILITIES,
    CLASSES,
    COMPLEXITY,
    EXPLORE_PENALTY,
    GUARD_CONSECUTIVE,
    GUARD_EVERY,
    GUARD_THRESHOLD,
    GUARD_WINDOW,
    GUARD_Z,
    HOUR,
    KNOWN_GOOD_AFTER,
    MIX,
    NEXT_KEYS,
    NEXT_STATE,
    REGULAR_CUTOFF,
    RESCUED,
    STATE_KEYS,
    STATES,
    TASK_TYPE_SHARE,
    events_since,
)
from .records import (
    AlertRecord,
    MitigationRecord,
    RollbackRecord,
    Shared,
    Test,
    Version,
    epsilon,
    iso,
)

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
        first = max(0, self.done - constants.EXPERIENCES)
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
        record = {"slot": h, "at": at, "decisions": []} if at > self.world.now - constants.CYCLE_SECONDS else None
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
                    "at": iso(at)}}
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
        first = max(0, self.n - constants.EXPERIENCES)
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
