"""Drills: the fleet's statistical rules replayed on an agent's own logged
outcomes, to measure the error rates they achieve. Pure math, no Django.

Every drill resamples the agent's logs, so no live task is spent, and runs
the rule's real code (learning/core/stats.py):

- **A/A tests** (`aa_drill`): both arms draw from the same logged
  successes, and the A/B decision (`stats._judge`, which `decide` calls) looks
  after every cycle slot's tasks until its first verdict that is not
  "running". Any verdict is false: the rule is a two-sided test at 5 %, so
  about 5 % of A/A tests end in one, half of them naming a false winner. A
  task's success is all the decision reads, and drawing a 0/1 outcome with
  replacement from the log is a binomial draw at the logged success rate,
  which is how the counts between two looks are drawn (`stats.simulate_verdicts`).
- **Stable streams** (`stable_drill`): the safeguard's degradation rule
  (`stats.judge_windows`, which `judge` calls) every `check_every` tasks on
  streams resampled from the logged scores, against a reference measured the
  way the safeguard measures it (the mean of REFERENCE_TASKS tasks and its
  standard error). Any action (`consecutive` degraded checks in a row) is a
  false rollback.
- **Injected drops** (`drop_drill`): the same, with every task score after
  a random point lowered by 5, 10 or 20 points (of the 0-100 score the
  safeguard judges): how many tasks after the drop the action comes, and how
  often it never comes within the drill's horizon.
- **The fastest rule** (`fastest_rule`), on the same draws, for reference:
  a CUSUM per drop size given in hindsight the lowest threshold at which it
  never acts on the stable streams. It says how fast a drop can be caught on
  this agent's noise at all; a target it misses is out of reach.

The streams are a moving-block bootstrap (blocks of BLOCK consecutive logged
tasks): a world that drifts inside the log shows up as excess false alarms,
as it would live, where an independent resample would hide it.

Rates carry Wilson intervals; delays their quantiles and a bootstrap
interval for the median; every figure says how many drill runs it rests on.
"""

from dataclasses import asdict, dataclass

import numpy as np

from . import stats

BLOCK = 50  # tasks per resampled block
REFERENCE_TASKS = 200  # the safeguard's reference averages at most this many tasks (learning/safeguard.py)
STABLE_TASKS = 3_000  # one stable drill run: the target is no false rollback in this many tasks
DROP_POINTS = (5, 10, 20)
DROP_HORIZON = 300  # tasks after a drop within which the action must come, or it is a miss
DETECT_WITHIN = 60  # the target: a 10-point drop acted on within this many tasks
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rule:
    """The safeguard's settings the drills replay (learning.models.Safeguard)."""

    check_every: int = 10
    window: int = 20
    threshold_pct: float = 5.0
    z: float = 1.96
    consecutive: int = 3

    @property
    def nominal_delay(self):
        """The design's delay: the first check whose window lies wholly after
        the drop, and `consecutive` - 1 more, each `check_every` tasks apart."""
        return self.window + (self.consecutive - 1) * self.check_every


def wilson(hits, runs, z=Z95):
    """The Wilson score interval (low, high) for hits / runs; (0, 1) for no runs."""
    if runs == 0:
        return 0.0, 1.0
    share = hits / runs
    centre = share + z * z / (2 * runs)
    half = z * np.sqrt(share * (1 - share) / runs + z * z / (4 * runs * runs))
    scale = 1 + z * z / runs
    return max(0.0, float((centre - half) / scale)), min(1.0, float((centre + half) / scale))


def rate(hits, runs):
    """A measured rate as stored and shown: hits, runs, share and Wilson interval."""
    low, high = wilson(hits, runs)
    return {"hits": int(hits), "runs": int(runs), "rate": hits / runs if runs else None, "low": low, "high": high}


def median_interval(values, rng, resamples=1000):
    """A percentile-bootstrap 95 % interval for the median of `values`."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return None, None
    medians = np.median(rng.choice(values, size=(resamples, len(values))), axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


# --- resampling ---------------------------------------------------------------------------


def block_streams(scores, runs, length, rng, block=BLOCK):
    """`runs` streams of `length` task scores, each a moving-block bootstrap
    of the logged `scores` (oldest first): random stretches of `block`
    consecutive tasks laid end to end."""
    scores = np.asarray(scores, dtype=float)
    block = max(1, min(block, len(scores)))
    blocks = -(-length // block)
    starts = rng.integers(0, len(scores) - block + 1, size=(runs, blocks))
    index = (starts[:, :, None] + np.arange(block)).reshape(runs, blocks * block)[:, :length]
    return scores[index]


def references(scores, runs, rng):
    """Per run, the reference the safeguard would hold: the mean and standard
    error of REFERENCE_TASKS resampled tasks."""
    sample = block_streams(scores, runs, min(REFERENCE_TASKS, len(scores)), rng)
    return sample.mean(axis=1), sample.std(axis=1, ddof=1) / np.sqrt(sample.shape[1])


def window_states(streams, ends, reference, spread, rule):
    """The rule's state codes (stats.STATE_CODES) of the windows of `rule.window`
    tasks ending just before the task positions `ends` (runs x checks)."""
    totals = np.concatenate([np.zeros((len(streams), 1)), np.cumsum(streams, axis=1)], axis=1)
    squares = np.concatenate([np.zeros((len(streams), 1)), np.cumsum(streams * streams, axis=1)], axis=1)
    n = rule.window
    sums = np.take_along_axis(totals, ends, 1) - np.take_along_axis(totals, ends - n, 1)
    sums_sq = np.take_along_axis(squares, ends, 1) - np.take_along_axis(squares, ends - n, 1)
    means = sums / n
    variances = np.maximum(sums_sq - n * means * means, 0.0) / (n - 1)
    return stats.judge_windows(
        means, np.sqrt(variances / n), reference[:, None], spread[:, None], rule.threshold_pct, rule.z
    )


def check_positions(rule, tasks):
    """The task counts at which the safeguard checks (every `check_every`
    tasks, once a full window exists), up to `tasks`."""
    first = -(-rule.window // rule.check_every) * rule.check_every
    return np.arange(first, tasks + 1, rule.check_every)


def actions(states, consecutive):
    """runs x checks booleans: where `consecutive` degraded checks in a row
    trigger the action (the counter restarts after each, as the safeguard's)."""
    fired = np.zeros(states.shape, dtype=bool)
    streak = np.zeros(len(states), dtype=int)
    for check in range(states.shape[1]):
        streak = np.where(states[:, check] == 2, streak + 1, 0)
        fired[:, check] = streak >= consecutive
        streak[fired[:, check]] = 0
    return fired


# --- the three drills ------------------------------------------------------------------------


def aa_drill(successes, tasks_per_look, runs, seed, mde=stats.DEFAULT_MDE, power=stats.DEFAULT_POWER):
    """`runs` A/A tests on the logged 0/1 `successes`, looked at every
    `tasks_per_look` tasks per arm (one cycle slot's share): the false
    winners (the rate itself, designed for about alpha/2 and at most alpha)
    and, under "verdicts", the tests that ended in any verdict, winner or
    loser (the rule's two-sided level, alpha)."""
    base_rate = float(np.mean(successes))
    horizon = stats.samples_per_arm(mde, power, base_rate=base_rate)
    look_every = max(1, min(int(tasks_per_look), horizon))
    shares = stats.simulate_verdicts(base_rate, base_rate, horizon, look_every, runs, seed)
    winners = round(shares["winner"] * runs)
    return {
        **rate(winners, runs),
        "verdicts": rate(winners + round(shares["loser"] * runs), runs),
        "horizon": horizon,
        "look_every": look_every,
        "base_rate": base_rate,
        "nominal": stats.ALPHA,
    }


@dataclass(frozen=True)
class Draws:
    """Resampled streams of task scores and the reference each run holds;
    `before` (drops only): the tasks of each run before its drop."""

    streams: np.ndarray
    reference: np.ndarray
    spread: np.ndarray
    rng: np.random.Generator
    before: np.ndarray = None


def stable_draws(scores, runs, seed, tasks=STABLE_TASKS):
    rng = np.random.default_rng(seed)
    streams = block_streams(scores, runs, tasks, rng)
    return Draws(streams, *references(scores, runs, rng), rng)


def drop_draws(scores, rule, points, runs, seed, horizon=DROP_HORIZON):
    """Streams whose every score falls by `points` / 100 after one full
    window of stable tasks, at a random point of the rule's check cycle."""
    rng = np.random.default_rng(seed)
    before = rule.window + rng.integers(0, rule.check_every, size=runs)
    length = rule.window + rule.check_every + horizon
    streams = block_streams(scores, runs, length, rng)
    streams -= np.where(np.arange(length) >= before[:, None], points / 100, 0.0)
    return Draws(streams, *references(scores, runs, rng), rng, before)


def stable_drill(scores, rule, runs, seed, tasks=STABLE_TASKS):
    """False rollbacks and warnings of the rule on `runs` stable streams of `tasks` tasks."""
    return stable_result(stable_draws(scores, runs, seed, tasks), rule)


def stable_result(draws, rule):
    runs, tasks = draws.streams.shape
    checks = check_positions(rule, tasks)
    states = window_states(draws.streams, np.broadcast_to(checks, (runs, len(checks))), draws.reference,
                           draws.spread, rule)
    fired = actions(states, rule.consecutive)
    rollbacks = int(fired.sum())
    return {
        "runs_with_rollback": rate(int(fired.any(axis=1).sum()), runs),
        "rollbacks": rollbacks,
        "tasks": runs * tasks,
        "per_1000_tasks": rollbacks * 1000 / (runs * tasks),
        "warnings": rate(int((states > 0).sum()), states.size),
        "degraded": rate(int((states == 2).sum()), states.size),
        "tasks_per_run": tasks,
        "nominal": 0,
    }


def drop_drill(scores, rule, points, runs, seed, horizon=DROP_HORIZON, within=DETECT_WITHIN):
    """Detection delay (tasks from the drop to the action) and misses of the
    rule when every task's score falls by `points` / 100 at a random point of
    the check cycle, after one full window of stable tasks."""
    return drop_result(drop_draws(scores, rule, points, runs, seed, horizon), rule, points, horizon, within)


def drop_result(draws, rule, points, horizon=DROP_HORIZON, within=DETECT_WITHIN):
    runs, length = draws.streams.shape
    checks = check_positions(rule, length)
    states = window_states(draws.streams, np.broadcast_to(checks, (runs, len(checks))), draws.reference,
                           draws.spread, rule)
    fired = actions(states, rule.consecutive)
    return {**delays_of(fired, checks, draws, horizon, within), "points": points, "nominal": rule.nominal_delay}


def delays_of(fired, positions, draws, horizon, within):
    """The delay figures of a rule that acted where `fired` (runs x positions,
    `positions` the task counts at which it could act) on drop draws."""
    runs = len(fired)
    since = positions - draws.before[:, None]
    fired = fired & (since > 0) & (since <= horizon)
    detected = fired.any(axis=1)
    delays = since[np.arange(runs), np.argmax(fired, axis=1)][detected]
    low, high = median_interval(delays, draws.rng)
    return {
        "runs": runs,
        "horizon": horizon,
        "missed": rate(int((~detected).sum()), runs),
        "within": rate(int((delays <= within).sum()), runs),
        "within_tasks": within,
        "median": float(np.median(delays)) if len(delays) else None,
        "median_low": low,
        "median_high": high,
        "p90": float(np.percentile(delays, 90)) if len(delays) else None,
        "delays": delays.astype(int).tolist(),
    }


# --- the fastest rule, for reference ---------------------------------------------------------


def cusum_paths(streams, reference, slack):
    """Page's CUSUM for a fall in the mean score, after every task:
    S = max(0, S + reference - score - slack), runs x tasks."""
    paths = np.empty_like(streams)
    level = np.zeros(len(streams))
    for task in range(streams.shape[1]):
        level = np.maximum(0.0, level + reference - streams[:, task] - slack)
        paths[:, task] = level
    return paths


def fastest_rule(stable, drops, horizon=DROP_HORIZON, within=DETECT_WITHIN):
    """How fast each drop can be caught on these draws at all. For each of
    `drops`, pairs of (drop points, Draws): Page's CUSUM tuned for that drop
    (the rule with the least worst-case mean delay at a given false-alarm
    rate, Moustakides 1986), its threshold set in hindsight just above the
    highest it reached on the `stable` draws, so that it never acts falsely
    there and acts as early as that allows; its delays on the drop's draws.
    When even it misses a target, the target needs quieter scores, not
    another setting of the safeguard."""
    results = []
    for points, draws in drops:
        slack = points / 200  # half the drop: the CUSUM's choice for a shift of that size
        threshold = float(cusum_paths(stable.streams, stable.reference, slack).max())
        paths = cusum_paths(draws.streams, draws.reference, slack)
        positions = np.arange(1, draws.streams.shape[1] + 1)
        delays = delays_of(paths > threshold, positions, draws, horizon, within)
        results.append({**delays, "points": points, "threshold": threshold})
    return {"drops": results}


def run_drills(successes, scores, tasks_per_look, rule, seed, aa_runs=120, stable_runs=20, drop_runs=200):
    """All three drills on one agent's logs, and the fastest rule on the same
    draws: {"aa", "stable", "drops", "fastest", "rule"}."""
    stable = stable_draws(scores, stable_runs, seed + 1)
    drops = [(points, drop_draws(scores, rule, points, drop_runs, seed + 2 + index))
             for index, points in enumerate(DROP_POINTS)]
    return {
        "aa": aa_drill(successes, tasks_per_look, aa_runs, seed),
        "stable": stable_result(stable, rule),
        "drops": [drop_result(draws, rule, points) for points, draws in drops],
        "fastest": fastest_rule(stable, drops),
        "rule": asdict(rule),
    }


# --- calibration ---------------------------------------------------------------------------------

# The settings searched, every combination: a longer window or a larger z
# quiets false alarms, more checks (closer, or fewer in a row) act sooner.
CALIBRATION_GRID = {
    "window": (20, 30, 40, 60, 100),
    "z": (1.96, 2.33, 2.58),
    "consecutive": (2, 3),
    "check_every": (5, 10),
}
MAX_WARNING_SHARE = 0.10


def calibrate(scores, rule, seed, stable_runs=10, drop_runs=100, detection_in_reach=True):
    """The safeguard setting that meets the targets on these logged scores:
    no false rollback in stable runs, at most MAX_WARNING_SHARE of checks
    warning, and 10-point drops acted on within DETECT_WITHIN tasks in at
    least 95 % of drills (the upper end of the Wilson interval). Among the
    settings that meet them, the one with the most drops caught in time, then
    the fewest warnings. When none meets them all (`meets` False): the one
    that catches the most among those that keep the first two targets, else
    the one that warns least among those without false rollbacks. The current rule
    stays when it meets them. Every candidate is drilled on the same draws
    (common random numbers), so they compare fairly."""
    candidates = [
        (rule, stable_drill(scores, rule, stable_runs, seed), drop_drill(scores, rule, 10, drop_runs, seed + 1))
    ]
    for window in CALIBRATION_GRID["window"]:
        for z in CALIBRATION_GRID["z"]:
            for consecutive in CALIBRATION_GRID["consecutive"]:
                for check_every in CALIBRATION_GRID["check_every"]:
                    candidate = Rule(check_every, window, rule.threshold_pct, z, consecutive)
                    stable = stable_drill(scores, candidate, stable_runs, seed)
                    drop = drop_drill(scores, candidate, 10, drop_runs, seed + 1)
                    candidates.append((candidate, stable, drop))

    def quiet(item):
        return item[1]["rollbacks"] == 0

    def calm(item):
        return quiet(item) and item[1]["warnings"]["rate"] <= MAX_WARNING_SHARE

    def meets(item):
        # A detection target out of reach is not one a setting can meet: the calm one that catches most wins.
        return calm(item) and (not detection_in_reach or item[2]["within"]["high"] >= 0.95)

    def rank(item):
        return (item[2]["within"]["rate"], -item[1]["warnings"]["rate"])

    meeting = [item for item in candidates if meets(item)]
    if meeting and meeting[0][0] == rule:
        meeting = meeting[:1]
    pool = meeting or [item for item in candidates if calm(item)]
    if pool:
        best, stable, drop = max(pool, key=rank)
    else:
        best, stable, drop = min(
            [item for item in candidates if quiet(item)] or candidates, key=lambda item: item[1]["warnings"]["rate"]
        )
    return {
        "rule": asdict(best),
        "meets": bool(meeting),
        "detection_in_reach": detection_in_reach,
        "changed": best != rule,
        "stable_rollbacks": stable["rollbacks"],
        "stable_tasks": stable["tasks"],
        "warnings": stable["warnings"],
        "within": drop["within"],
        "median_delay": drop["median"],
        "candidates": len(candidates),
    }
