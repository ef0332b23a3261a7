"""One agent's past, slot by slot: AgentPast sets up its tasks and draws,
runs them through the real learning definitions and keeps the counters and
windows the loop reads. Its improvement loop is in loop.py, its versions,
safeguard and rollbacks in rollbacks.py (mixins, one concern each)."""

import math

import numpy as np

from learning import mitigations
from learning.core import engine, scoring
from learning.harness.simulator import CAPABILITY_LEVELS, COMPLEXITY_LEVELS, STRATEGIES, FleetEnvironment
from learning.models import AlertState, VersionReason

from .constants import (
    ACTIONS,
    BASELINE_WINDOW,
    CAPABILITIES,
    CLASSES,
    COMPLEXITY,
    EXPLORE_PENALTY,
    GUARD_EVERY,
    HOUR,
    MIX,
    NEXT_STATE,
    RESCUED,
    STATES,
    TASK_TYPE_SHARE,
    events_since,
)
from .loop import ImprovementLoop
from .records import AlertRecord, decayed_epsilons, epsilon
from .rollbacks import Rollbacks

# --- one agent's past ------------------------------------------------------------------------


class AgentPast(ImprovementLoop, Rollbacks):
    """Simulate one agent slot by slot: its tasks, its learning and its
    improvement loop, with the rollbacks its role asks for. The loop is
    ImprovementLoop's (loop.py); versions, the safeguard and rollbacks are
    Rollbacks' (rollbacks.py); both work on this class's state."""

    def __init__(self, world, index, agent_id, team, counts, role, intents, dips, training, samples):
        self.world = world
        self.rng = np.random.default_rng([world.seed, index, 1])
        self.agent_id, self.team, self.role = agent_id, team, role
        self.types = FleetEnvironment.task_types(team)
        self.main = self.types.index(world.env.main_task_type(agent_id))
        self.best = self._best_strategies()
        self.intents = iter(intents)
        self.dips = [list(dip) for dip in dips]
        self.training_wanted, self.samples_wanted = training, samples
        # The draws come in a fixed order: the same seed makes the same past.
        self._draw_tasks(counts)
        progress = self._draw_trend()
        self._draw_outcomes(progress)
        self._results()
        self._learned_state()
        self._loop_state(counts)
        self._versions_state()
        self.alerts, self.audit, self.events = [], [], []
        self.history_uses = np.zeros((world.slots + 1, len(self.types) * ACTIONS), dtype=np.int64)
        self.history_wins = np.zeros((world.slots + 1, len(self.types) * ACTIONS), dtype=np.int64)
        self.history_enabled = np.zeros(world.slots + 1, dtype=bool)
        self.history_enabled[0] = self.slot_lo[1] > 0
        self.offsets = self.rng.uniform(1, 40, size=(world.slots + 1, 4))  # snapshot, capture, sharing, cycle
        self.offsets.sort(axis=1)
        self._plan_role(world.start + world.slots * HOUR)

    # --- setting up: the tasks and their draws ------------------------------------------------

    def _best_strategies(self):
        """The best strategy of each task type's buckets (complexity x capabilities) in the world."""
        best = np.zeros((len(self.types), len(COMPLEXITY), len(CAPABILITIES)), dtype=int)
        for t, name in enumerate(self.types):
            table = self.world.env.table(name)
            for c, complexity in enumerate(COMPLEXITY_LEVELS):
                for k, capabilities in enumerate(CAPABILITY_LEVELS):
                    arms = table[(complexity, capabilities)]
                    best[t, c, k] = STRATEGIES.index(max(arms, key=lambda name: arms[name].success))
        return best

    def _draw_tasks(self, counts):
        """The tasks, in report order (slot h holds tasks slot_lo[h]..slot_lo[h+1]-1): when, which task
        type and which state each is, and where its Q-value and its next state's are."""
        world, rng, types = self.world, self.rng, len(self.types)
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

    def _draw_trend(self):
        """The agent's trend: its success grows over the period; returns the progress (0 to 1) at each task."""
        world, rng = self.world, self.rng
        span = world.slots * HOUR
        tau = rng.uniform(0.25, 0.6)
        first = self.times[0]
        progress = (1 - np.exp(-(self.times - first) / (world.start + span - first) / tau)) / (1 - math.exp(-1 / tau))
        # A newcomer works in today's world, where the fleet's success has grown.
        start = rng.uniform(0.74, 0.8) if self.role == "newcomer" else rng.uniform(0.68, 0.76)
        self.trend = start + rng.uniform(0.0, 0.04) * progress
        return progress

    def _draw_outcomes(self, progress):
        """Each task's draws, for whichever strategy and outcome it ends up with."""
        rng, n = self.rng, self.n
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

    def _results(self):
        """What each task turned out to be, filled in as the tasks run."""
        n = self.n
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

    def _learned_state(self):
        """The learned state (Q-values, visits and wins per task type, state and
        strategy; patterns' uses and wins), and the counters the loop reads."""
        types = len(self.types)
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

    # --- the main loop ---------------------------------------------------------------------

    def run(self):
        """Every slot: its scheduled jobs, its tasks, the operators' actions as they fall due."""
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
        """What the fleet-level steps read of slot h's end, and whether the live version is known good."""
        self.history_uses[h] = self.pattern_uses
        self.history_wins[h] = self.pattern_wins
        # An agent is registered (and can import) from the slot of its first task.
        self.history_enabled[h] = self.enabled and self.slot_lo[min(h + 1, self.world.slots)] > 0
        self._mark_known_good(h)

    # --- tasks -----------------------------------------------------------------------------

    def _effects(self, types, at):
        """The applied A/B winners' effects on each task type's success at `at`."""
        effect = np.zeros(len(types))
        for type_index, (_, source) in self.applied.items():
            if isinstance(source, tuple) and source[0] == "abtest":
                effect[types == type_index] += source[1].effect(at)
        return effect

    def _tasks(self, lo, hi):
        """Run tasks lo..hi-1; returns where it stopped (early after an automatic rollback)."""
        span = slice(lo, hi)
        types = self.type[span]
        test = self.running if self.enabled else None
        arm, forced = self._arms(span, test)
        strategy, explored, greedy, eps, rate_after = self._choose(span, forced)
        # engine.choose's propensity, times the arm's share when the learned policy is an arm.
        propensity = eps / ACTIONS + (1 - eps) * (strategy == greedy)
        chance = self._chance(span, explored & (strategy != greedy))
        if test is not None:
            control = strategy if test.control is None else test.control
            strategy = np.where(arm == 0, control, np.where(arm == 1, test.treatment, strategy))
            chance = chance + np.where(arm == 1, test.delta, 0.0)
            propensity = np.where(forced, 0.5, np.where(arm == 0, 0.5 * propensity, propensity))
        self._outcomes(span, strategy, chance, slowed=arm == 1 if test is not None and test.slower else None)
        self.strategy[span], self.explored[span], self.arm[span] = strategy, explored, arm
        self.eps[span], self.rate_after[span], self.propensity[span] = eps, rate_after, propensity
        self.learning[span] = self.enabled
        self.fallback[span] = np.where(forced, 2, np.where(np.isin(types, list(self.applied)), 1, 0))
        self.test_of[span] = np.where(arm >= 0, len(self.tests) - 1, -1)
        stop = self._learn(lo, hi)
        self._count(slice(lo, stop), test)
        return stop

    def _arms(self, span, test):
        """Each task's arm of the running test (-1: none), and whether the arm
        fixes its strategy (a control that is the learned policy chooses as usual)."""
        arm = np.full(span.stop - span.start, -1)
        if test is not None:
            covered = self.type[span] == test.type_index
            arm[covered] = np.where(self.draw[1, span][covered] < test.control_share, 0, 1)
        forced = (arm == 1) | ((arm == 0) & (test is not None and test.control is not None))
        return arm, forced

    def _choose(self, span, forced):
        """Epsilon-greedy choice around the bucket's best strategy (or the applied
        one): (strategy, explored, greedy, epsilon, rate after) of each task."""
        types = self.type[span]
        greedy = self.best_strategy[span].copy()
        for type_index, (strategy, _) in self.applied.items():
            greedy[types == type_index] = strategy
        count = span.stop - span.start
        config = engine.DEFAULT_CONFIG
        if self.enabled:  # the profile's rate before each task, decayed by every task learned from
            decay, floor = config["exploration_decay"], config["min_exploration_rate"]
            rate = decayed_epsilons(config["exploration_rate"], decay ** (self.learned + np.arange(count)), floor)
            rate_after = decayed_epsilons(rate, decay, floor)
            eps = np.where(forced, 0.0, rate)
        else:
            eps, rate_after = np.zeros(count), np.full(count, epsilon(self.learned))
        explored = ~forced & (self.draw[0, span] < eps)
        strategy = np.where(explored, self.pick[span], greedy)
        return strategy, explored, greedy, eps, rate_after

    def _chance(self, span, penalised):
        """Each task's chance of success before its test arm's effect: the agent's
        trend, its applied winners' effects, less exploring away from the best
        strategy (`penalised`) and the dips."""
        times = self.times[span]
        chance = self.trend[span] + self._effects(self.type[span], times[0])
        chance = chance - EXPLORE_PENALTY * penalised
        for start, end, depth in self.dips:
            chance = chance - depth * ((times >= start) & (times < end))
        return chance

    def _outcomes(self, span, strategy, chance, slowed):
        """Each task's success, errors, time and reported figures, its reward
        (scoring.rewards) and score (scoring.task_scores); `slowed`: the tasks
        of a slower treatment arm, or None."""
        types = self.type[span]
        _, _, success_draw, rescue_draw, flaky_draw = self.draw[:, span]
        success = success_draw < np.clip(chance, 0.02, 0.98)
        positions = np.arange(span.start, span.stop)
        first, second = self.class_draw[0, strategy, positions], self.class_draw[1, strategy, positions]
        for (type_index, class_index), record in self.latest_mitigation.items():
            if record.state in mitigations.APPLYING and record.adjustment != "none":
                success |= ((types == type_index) & (first == class_index) & np.isin(strategy, record.strategies)
                            & (rescue_draw < RESCUED))
        two = self.two_errors[span]
        errors = np.where(success, (flaky_draw < 0.04).astype(np.int8), 1 + two)
        classes = np.where(success, 0, (1 << first) | np.where(two, 1 << second, 0))
        ms = self.base_ms[span] * np.where(success, 1.0, 1.3)
        if slowed is not None:
            ms = ms * np.where(slowed, 1.3, 1.0)
        ms = np.maximum(50, ms).astype(np.int64)
        coverage = self.coverage_by_outcome[success.astype(np.int64), positions]
        satisfaction = np.round(np.clip(self.satisfaction_base[span] + 0.1 * success, 0, 1), 3)
        efficiency = np.round(np.clip(self.efficiency_base[span] + 0.1 * success, 0, 1), 3)
        self.success[span], self.ms[span], self.errors[span], self.classes[span] = success, ms, errors, classes
        self.first_class[span] = first
        self.coverage[span], self.satisfaction[span], self.efficiency[span] = coverage, satisfaction, efficiency
        self.reward[span] = scoring.rewards(success, ms, errors, coverage)
        self.score[span] = scoring.task_scores(success, ms, errors, satisfaction, efficiency)

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
        if self.baseline is None and self.done >= BASELINE_WINDOW:
            self.baseline = self.window(0, BASELINE_WINDOW)["score"]
            self.baseline_at = float(self.times[BASELINE_WINDOW - 1])
        if test is not None:
            self._count_arms(span, test)

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
        stats_ = self.window(upto - BASELINE_WINDOW, upto)
        if stats_ is None:
            return None, None
        if self.baseline is None or upto < BASELINE_WINDOW:
            return stats_["score"], None
        return stats_["score"], scoring.improvement(stats_["score"], self.baseline)

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
            shared.numbers = self.pattern_numbers(shared.type_index * ACTIONS + shared.strategy)
        self._prune_versions()
        self._final_checks()
        self._snapshots()
        self._choose_samples()
        # What only the simulation needed; the writer reads the rest.
        del (self.draw, self.pick, self.class_draw, self.two_errors, self.base_ms, self.coverage_by_outcome,
             self.satisfaction_base, self.efficiency_base, self.trend, self.group, self.next_group,
             self.best_strategy, self.type_index, self.sums)

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
