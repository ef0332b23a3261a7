"""The learning math: pure functions, no Django, no database.

Every part of the product uses these definitions (docs/ARCHITECTURE.md,
"Learning definitions"), so a number means the same thing in the API, the
tracker and the reports. The scores and the reward are in scoring.py.
"""

import math
from dataclasses import dataclass

import numpy as np

from .scoring import REWARD_LIMIT

# --- configuration -------------------------------------------------------------

DEFAULT_CONFIG = {
    "learning_rate": 0.1,
    "discount_factor": 0.95,
    "exploration_rate": 0.3,
    "exploration_decay": 0.995,
    "min_exploration_rate": 0.01,
    "max_experiences": 1000,
}

# name -> (lowest, highest, lowest is allowed)
CONFIG_BOUNDS = {
    "learning_rate": (0.0, 1.0, False),
    "discount_factor": (0.0, 1.0, True),
    "exploration_rate": (0.0, 1.0, True),
    "exploration_decay": (0.0, 1.0, False),
    "min_exploration_rate": (0.0, 1.0, True),
    "max_experiences": (10, 100_000, True),
}


class ConfigError(ValueError):
    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate_config(config):
    """A complete, finite, in-range config, or ConfigError naming the field.

    Missing keys are an error, never a silent default: the original system
    produced NaN Q-values from a config key that was present but undefined.
    """
    if not isinstance(config, dict):
        raise ConfigError("config", "must be an object")
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ConfigError(unknown[0], "is not a learning setting")
    clean = {}
    for name, (low, high, low_allowed) in CONFIG_BOUNDS.items():
        if name not in config:
            raise ConfigError(name, "is missing")
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, "must be a number")
        if not math.isfinite(value):
            raise ConfigError(name, "must be finite")
        if value > high or value < low or (value == low and not low_allowed):
            bracket = "[" if low_allowed else "("
            raise ConfigError(name, f"must be in {bracket}{low}, {high}]")
        if name == "max_experiences":
            if int(value) != value:
                raise ConfigError(name, "must be a whole number")
            value = int(value)
        clean[name] = float(value) if name != "max_experiences" else value
    if clean["min_exploration_rate"] > clean["exploration_rate"] and clean["exploration_rate"] > 0:
        raise ConfigError("min_exploration_rate", "must not exceed exploration_rate")
    return clean


# --- states and actions ----------------------------------------------------------


def _step(value):
    """Clip to [0, 1] and round to one decimal (halves away from zero)."""
    clipped = min(1.0, max(0.0, float(value)))
    return math.floor(clipped * 10 + 0.5) / 10


def state_vector(complexity, capability_count, previous_attempts, available_resources, time_constraint_ms=None):
    """The five state features, each in [0, 1] on a 0.1 grid."""
    time = 1.0 if time_constraint_ms is None else min(time_constraint_ms / 300_000, 1.0)
    return (
        _step(complexity),
        _step(capability_count / 10),
        _step(previous_attempts / 10),
        _step(available_resources),
        _step(time),
    )


def state_key(vector):
    """"0.6,0.1,0.0,0.8,1.0", as the design writes it."""
    return ",".join(f"{value:.1f}" for value in vector)


def parse_state_key(key):
    return tuple(float(part) for part in key.split(","))


def next_attempt(previous_attempts, available_resources):
    """The next state when the agent does not report one: one more attempt,
    resources x 0.9."""
    return previous_attempts + 1, available_resources * 0.9


def neighbour_keys(vector, radius=2):
    """State keys within `radius` grid steps (L1) of `vector`, nearest first,
    excluding the state itself. Bounded: 60 keys at radius 2."""
    grid = np.rint(np.array(vector) * 10).astype(int)
    found = {}
    for first in range(5):
        for delta in (-2, -1, 1, 2):
            if abs(delta) <= radius:
                found.setdefault(abs(delta), []).append({first: delta})
    if radius >= 2:
        for first in range(5):
            for second in range(first + 1, 5):
                for d1 in (-1, 1):
                    for d2 in (-1, 1):
                        found[2].append({first: d1, second: d2})
    keys = []
    for distance in sorted(found):
        for change in found[distance]:
            point = grid.copy()
            for axis, delta in change.items():
                point[axis] += delta
            if ((point >= 0) & (point <= 10)).all():
                keys.append((distance, state_key(point / 10)))
    return keys


# --- fleet learning: pooled values, back-off, exploration per cell -----------------
#
# The learner is a contextual bandit with Q-learning's update: the state is
# the task as the agent describes it, and the next state (one more attempt)
# is rarely visited, so gamma * max Q(s') is almost always 0. What limits it
# at a hundred tasks per agent is evidence, so the swarm's agents pool it:
# per (task type, abstract state) the swarm keeps one value per strategy,
# each agent's own Q-values take over as its own visits grow, and a state
# the agent has not seen borrows from the coarser levels instead of the
# catalog default.

# The abstract levels, finest first: the state's (complexity, capability)
# bucket without the resource, attempt and time split, then the task type.
TYPE_KEY = "*"
# Visits at which the agent's own value and its swarm's weigh the same:
# weight n / (n + EVIDENCE_PRIOR) for the agent's own.
EVIDENCE_PRIOR = 5
# A pooled value is an exponential mean of the outcomes' targets with this
# step, starting at 0: a strategy the swarm never tried in a cell ranks at
# 0, above one whose outcomes were mostly failures (negative rewards) and
# below one that mostly succeeds, so a strategy that looks bad gives way
# to an untried one; and the value follows its last ~1 / step outcomes, so
# a greedy choice that starts failing loses its place within some tasks
# instead of being held up by a long mean. A shorter memory learns faster
# and follows a poisoned team mate faster too (bench world, in-process:
# step 0.2 closed 0.80 of the gap but cost each team mate of one poisoned
# agent 5.2 tasks; step 0.1, 0.79 and 0.5 tasks; the running mean over 50
# it replaces, 0.69 and 0.6 tasks).
POOL_STEP = 0.1
# A pooled value restarts when the world changed under it: a one-sided
# CUSUM, the running sum of how far each outcome's target falls below the
# row's reference (the mean of its outcomes since it last restarted, over
# at most the last REFERENCE_SPAN), less SHORTFALL_SLACK per outcome (and
# never above 0), passing -SHORTFALL_LIMIT. The row then counts from 0
# again (its value, reference and current visits), so the agents' own
# values of that strategy, which weigh at most its current visits, yield
# to the swarm's fresh evidence, and the cell's exploration re-opens.
# The reference is a long mean, not the value: a value with step 0.1
# follows a change within a dozen outcomes, so a shortfall measured against
# it stops growing before a low limit is reached, and a low limit is
# passed by chance (slack 0.3 and limit 4 against the value restarted a
# row at the bench world's 85 % success once in about 140 outcomes: half a
# 20-minute demo's rows restarted in a world that does not change, and the
# thrown-away values degraded an agent until the safeguard rolled it
# back). Simulated reward streams of the bench world's outcomes (success
# +1.45, failure about -0.75, coverage on half), false restarts of a steady
# row and the outcomes it takes to catch its success falling 85 -> 45 %:
#   rule                      restarts once in (success 95 / 85 / 70 / 50 %)   caught: median, within 30
#   slack 0.3, limit 4, value 1,000 / 140 / 60 / 56                            5, 94 %
#   slack 0.5, limit 8, mean  over 100,000 / 8,300 / 2,000 / 2,200             15, 89 %
# In the 120-task bench the restarts are not what meets the changing
# world (with the ranking by the agent's own visits: without any, 0.54 of
# the gap; with these, 0.55): the value's short memory and the ranking are. They are for a long run, where an
# agent's own values, grown over thousands of tasks, outlast a change.
SHORTFALL_SLACK = 0.5
SHORTFALL_LIMIT = 8.0
REFERENCE_SPAN = 100
# A row must have RESTART_AFTER visits first: a reference of a few outcomes
# is no evidence of what the strategy was worth.
RESTART_AFTER = 10
# The greedy choice ranks by value plus this x UCB1's term (optimistic):
# a restarted strategy has few current visits, so the ranking tries it and
# its rivals again. Paired seeds, with restarts: 0.25 moved the project
# world 0.78 -> 0.82 (20 seeds) and the half-way world 0.44 -> 0.55 (5
# seeds; 0.53 over 10); 0.5 gives 0.81 and 0.56 over 10 (0.55: 0.57), and
# cost the agents-differ world 0.03 (0.64, against 0.67), all with the
# first restart rule and n the agent's own visits; with restarts against
# the long mean and n the swarm's current visits (backed_off), 0.5 gives
# 0.84, 0.57 and 0.71.
EXPLORATION_BONUS = 0.5
# Epsilon shrinks by this factor per visit the swarm has made to the cell
# the choice is made in (the state's bucket). A cell sees only a few dozen
# visits in a fleet's first 2,000 tasks: at 0.97 per visit 7 % of the
# fleet's late choices were still random; at 0.9 about 1 %, and a cell
# has had its ~3 random tries after a dozen visits.
CELL_EXPLORATION_DECAY = 0.9


def bucket_key(vector):
    """"0.5,0.6": the state's complexity and capability features only."""
    return f"{vector[0]:.1f},{vector[1]:.1f}"


def abstract_keys(vector):
    """The pooled levels of a state, finest first: (bucket key, TYPE_KEY)."""
    return bucket_key(vector), TYPE_KEY


def evidence_weight(visits, prior=EVIDENCE_PRIOR):
    """How much the agent's own value counts against its swarm's: n / (n + prior)."""
    return visits / (visits + prior)


def backed_off(own, pooled, prior=EVIDENCE_PRIOR):
    """Values per action to choose by, and the visits behind them.

    `own` is the agent's (values, visits) per action in the state; `pooled`
    its swarm's (values, visits) per level, finest first. The swarm's values
    are those of the finest level with any visits (the bucket, else the task
    type: a back-off, not a blend, since a task type's best strategy changes
    from bucket to bucket); an action that level never saw is worth 0, the
    pooled mean's start. The agent's own value blends over the swarm's by
    its own visits, at most the swarm's current visits of the action,
    weight n / (n + prior); where the swarm knows nothing of the action, the
    agent's value stands alone. Returns (values, the visits behind them: the
    swarm's current ones, which hold the agent's own, else the agent's).
    The ranking's bonus counts these: counting the agent's own visits of
    the fine state, a handful each, kept rivals it had tried twice ahead
    of a best valued 0.6 higher on hundreds, for thousands of tasks."""
    own_values, own_visits = np.asarray(own[0], dtype=float), np.asarray(own[1], dtype=int)
    swarm_values, swarm_visits = np.zeros(len(own_values)), np.zeros(len(own_values), dtype=int)
    for values, visits in pooled:
        if np.asarray(visits).sum() > 0:
            swarm_values, swarm_visits = np.asarray(values, dtype=float), np.asarray(visits, dtype=int)
            break
    # The agent's visits count no more than the swarm's current ones: where
    # the swarm's value restarted (the world changed), the agent's older
    # evidence is as stale as the swarm's was.
    n = np.where(swarm_visits > 0, np.minimum(own_visits, swarm_visits), own_visits).astype(float)
    weight = np.where(swarm_visits > 0, n / (n + prior), (n > 0).astype(float))
    values = weight * own_values + (1 - weight) * swarm_values
    return values, np.where(swarm_visits > 0, swarm_visits, own_visits)


def optimistic(values, visits, bonus=EXPLORATION_BONUS):
    """The values the greedy choice ranks by: each plus UCB1's term,
    bonus x sqrt(ln(N + 1) / (n + 1)), n the visits behind the value and N
    their sum over the state's actions. A strategy with little current
    evidence gets tried before one as good on paper with much, so a cell's
    best is found by the ranking, not only by the random tries. The values
    themselves (reasoning, confidence, Q) stay as learned."""
    n = np.asarray(visits, dtype=float)
    return np.asarray(values, dtype=float) + bonus * np.sqrt(np.log(n.sum() + 1) / (n + 1))


def pooled_step(value, target, step=POOL_STEP):
    """A pooled value after one more outcome: value + step x (target - value),
    from 0 at the first."""
    return value + step * (target - value)


def pooled_update(row, target, step=POOL_STEP, slack=SHORTFALL_SLACK, limit=SHORTFALL_LIMIT,
                  restart_after=RESTART_AFTER, span=REFERENCE_SPAN):
    """A pooled row after one more outcome: (value, reference, current
    visits, shortfall), from the row as it was (all 0 before the first).

    The shortfall is min(0, shortfall + target - reference + slack); past
    -limit, on a row with at least `restart_after` current visits, the row
    restarts as if new (the outcome is its first). services writes this as
    one SQL statement (learning/services.py, _pool_upsert_sql), so
    concurrent agents lose none."""
    value, reference, current_visits, shortfall = row
    drop = shortfall + target - reference + slack
    if current_visits >= restart_after and drop < -limit:
        return pooled_step(0.0, target, step), target, 1, 0.0
    reference += (target - reference) / min(current_visits + 1, span)
    return pooled_step(value, target, step), reference, current_visits + 1, min(0.0, drop)


def cell_epsilon(epsilon, cell_visits, floor, decay=CELL_EXPLORATION_DECAY):
    """The exploration rate where the choice is made: the agent's epsilon
    x decay per visit the cell has had, never below the floor (unless the
    agent's epsilon is below it: 0 turns exploration off)."""
    return min(epsilon, max(floor, epsilon * decay ** cell_visits))


def action_key(strategy, parallelization, retry_policy):
    return f"{strategy}:{parallelization:.1f}:{retry_policy}"


# --- Q-update ----------------------------------------------------------------------

def q_update(q, reward_value, max_next_q, learning_rate, discount_factor):
    """One tabular Q-learning step: Q + alpha * (r + gamma * max Q(s') - Q)."""
    updated = q + learning_rate * (reward_value + discount_factor * max_next_q - q)
    if not math.isfinite(updated):
        raise ValueError("A Q-update produced a non-finite value.")
    return updated


def decayed_epsilon(epsilon, decay, floor):
    return max(floor, epsilon * decay)


# --- choosing an action ------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    index: int          # into the action list
    explored: bool      # picked by the random branch
    propensity: float   # probability this policy picks this action for this state
    greedy: tuple       # indexes of the best actions


def choose(q_values, epsilon, rng, greedy=None):
    """Epsilon-greedy over `q_values` (one per action).

    With probability epsilon any action is drawn uniformly; otherwise one of
    the best (`greedy`, default: the argmax ties) is drawn uniformly. The
    propensity is the exact probability of the result under this policy, so
    decisions can be evaluated offline.
    """
    q = np.asarray(q_values, dtype=float)
    count = len(q)
    if greedy is None:
        greedy = tuple(int(i) for i in np.flatnonzero(q == q.max()))
    if rng.random() < epsilon:
        index = int(rng.integers(count))
        explored = True
    else:
        index = greedy[int(rng.integers(len(greedy)))]
        explored = False
    propensity = epsilon / count + ((1 - epsilon) / len(greedy) if index in greedy else 0.0)
    return Choice(index, explored, propensity, tuple(greedy))


def confidence(q, visits):
    """How far to trust an action's Q-value, in [0, 1].

    The value part maps Q from the reward range [-2, 2] onto [0, 1]; the
    evidence part, visits / (visits + 5), pulls it towards 0.5 (no opinion)
    until the action has been tried a few times.
    """
    value = min(1.0, max(0.0, (q + REWARD_LIMIT) / (2 * REWARD_LIMIT)))
    evidence = visits / (visits + 5)
    return 0.5 + (value - 0.5) * evidence


def expected_improvement(q_chosen, q_values, visits):
    """How much better the chosen action is expected to do than the state's
    visit-weighted average, as a share of the reward range (0..1)."""
    q = np.asarray(q_values, dtype=float)
    n = np.asarray(visits, dtype=float)
    if n.sum() == 0:
        return 0.0
    average = float((q * n).sum() / n.sum())
    return max(0.0, (q_chosen - average) / (2 * REWARD_LIMIT))


# --- patterns and failures ---------------------------------------------------------


def wilson_lower_bound(successes, trials, z=1.96):
    """The lower end of the Wilson score interval for a success rate."""
    if trials == 0:
        return 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (centre - margin) / denominator


def pattern_confidence(uses, successes):
    """The design's rule (0.5 on discovery, +0.01 per use, at most 0.95),
    capped by the Wilson lower bound of the success rate, so a pattern that
    keeps failing never becomes confident."""
    by_use = min(0.95, 0.5 + 0.01 * (uses - 1))
    return min(by_use, wilson_lower_bound(successes, uses))


# Checked in this order: the first class whose words appear wins.
FAILURE_CLASSES = {
    "timeout": ("timeout", "timed out", "deadline", "time limit"),
    "memory": ("memory", "oom", "heap", "out of mem"),
    "network": ("network", "connection", "socket", "dns", "unreachable", "refused", "econn"),
    "permission": ("permission", "forbidden", "denied", "unauthorized", "eacces", "401", "403"),
    "parsing": ("parse", "syntax", "json", "decode", "unexpected token"),
    "validation": ("validation", "invalid", "assert", "schema", "expected"),
}

MITIGATIONS = {
    "timeout": "Applied when frequent: a retrying strategy with lower parallelization. Also raise the task's "
               "time budget or split it.",
    "memory": "Applied when frequent: a strategy with lower parallelization. Also lower the batch size.",
    "network": "Applied when frequent: a strategy with exponential or adaptive retry. Also check the service "
               "dependencies the task needs.",
    "validation": "Needs an operator: check inputs and fixtures; refresh test data or the contract under test.",
    "parsing": "Needs an operator: validate the input format before the task; pin the parser or schema version.",
    "permission": "Needs an operator: check the credentials and scopes the task runs with.",
    "other": "Needs an operator: inspect recent failures of this class; no targeted mitigation is known yet.",
}


def failure_class(error_type, message=""):
    """One of timeout, memory, validation, network, parsing, permission, other."""
    text = f"{error_type} {message}".lower()
    for name, words in FAILURE_CLASSES.items():
        if any(word in text for word in words):
            return name
    return "other"


# --- trends ------------------------------------------------------------------------


def trend(times, values):
    """Least-squares slope of `values` per unit of `times` (0 with < 2 points)."""
    if len(times) < 2:
        return 0.0
    x = np.asarray(times, dtype=float)
    y = np.asarray(values, dtype=float)
    x = x - x.mean()
    denominator = float((x * x).sum())
    return 0.0 if denominator == 0 else float((x * (y - y.mean())).sum() / denominator)


# --- mitigations ----------------------------------------------------------------------

# What each failure class changes in a recommendation for a task type where it
# is frequent. Classes mapped to "none" need a person (credentials, inputs,
# schemas): no strategy fixes them, so the loop alerts instead.
ADJUSTMENTS = {
    "timeout": "more_retries",
    "memory": "less_parallel",
    "network": "backoff_retry",
    "validation": "none",
    "parsing": "none",
    "permission": "none",
    "other": "none",
}

RETRYING = ("fixed", "exponential", "adaptive")
BACKOFF = ("exponential", "adaptive")


def _fits(adjustment, action, chosen):
    parallelization, retry_policy = action
    if adjustment == "less_parallel":
        return parallelization < chosen[0]
    if adjustment == "more_retries":
        return retry_policy in RETRYING and parallelization < chosen[0]
    if adjustment == "backoff_retry":
        return retry_policy in BACKOFF and chosen[1] not in BACKOFF
    return False


def mitigated_choice(adjustment, actions, chosen, q_values, implicated, visits=None):
    """The action to use instead of `chosen` under one adjustment.

    `actions` are (parallelization, retry_policy) pairs; `implicated` holds
    the indexes of the actions whose tasks fail with the class. Only an
    implicated choice moves, to the best-valued action that satisfies the
    adjustment, is not implicated itself and has a learned value no lower
    than the choice's (ties: the nearest parallelization): a mitigation may
    trade failures of one class for others, never expected reward. With
    `visits`, an action never tried has no learned value, so it replaces
    only a choice that has none either. When no action qualifies, the
    choice stays.
    """
    if chosen not in implicated:
        return chosen
    current = actions[chosen]
    learned = visits is None or visits[chosen] > 0

    def no_worse(i):
        if not learned:
            return True
        return (visits is None or visits[i] > 0) and q_values[i] >= q_values[chosen]

    candidates = [i for i, action in enumerate(actions)
                  if i not in implicated and _fits(adjustment, action, current) and no_worse(i)]
    if not candidates:
        return chosen
    return max(candidates, key=lambda i: (q_values[i], -abs(actions[i][0] - current[0])))
