"""Is an agent learning? The arithmetic of the diagnostics: pure, no Django.

The input is a window of an agent's (or the fleet's) reported tasks, grouped
by (agent, task type, state key, strategy, decision source, explored) with
counts (`TaskGroup`); the learning app builds it in one SQL aggregate. From
it:

- outcomes that moved the learned value (Q after != Q before): a learner
  that learns moves its value on every outcome, so this is ~100 % while
  learning is on;
- state coverage: the states the window's tasks were in, and how many of
  them have a learned value of the agent's own now;
- where the decisions came from: the state's own values, something borrowed
  or set for it (borrowed values: a nearby state, the swarm's pooled values,
  a swarm pattern, or any new source the engine adds; set for it: an applied
  strategy, an A/B arm, its own choice in shadow), or the catalog default;
  and how many explored;
- the regret against the best the fleet knows (`regret`);
- a verdict in words (`verdict`), which the dashboard badge and the
  "stopped learning" alert share.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

# A decision's `fallback` says where its greedy choice came from. These two
# values are fixed; every other value is a borrowed source.
OWN = ""
DEFAULT = "default"
# The sources in words. An unknown value (a source the engine adds later)
# is still counted as borrowed, and named by its value.
SOURCE_WORDS = {
    OWN: "its own learned values for the state",
    "pooled": "its swarm's pooled values for the state's bucket",
    "pooled-type": "its swarm's pooled values for the task type",
    "nearest": "a nearby state's learned values",
    "applied": "the strategy applied for the task type",
    "shared": "a pattern imported from its swarm",
    "abtest": "an A/B test's arm",
    "shadow": "the agent's own choice (shadow mode)",
    DEFAULT: "the catalog default",
}

# Borrowed sources that are no learned values at all but a choice made for
# the agent: "borrowed" counts them, and the words must not call them learned.
SET_FOR_IT = ("applied", "abtest", "shadow")

# The verdict's evidence and thresholds (README, "Is it learning?").
MIN_OUTCOMES = 30  # outcomes in the window before any verdict (a newcomer is "too early")
MIN_CHANGED_SHARE = 0.5  # below: outcomes arrive but the values do not move
MAX_DEFAULT_SHARE = 0.5  # above: most decisions fall back to the catalog default
# A strategy counts as known to the fleet in a (task type, state) cell after this many tasks there.
MIN_STRATEGY_TASKS = 10
Z95 = 1.96

LEARNING, NOT_LEARNING, MOSTLY_DEFAULT, TOO_EARLY, LEARNING_OFF = (
    "learning",
    "not-learning",
    "mostly-default",
    "too-early",
    "learning-off",
)
VERDICT_WORDS = {
    LEARNING: "learning",
    NOT_LEARNING: "not learning",
    MOSTLY_DEFAULT: "mostly default",
    TOO_EARLY: "too early to tell",
    LEARNING_OFF: "learning off",
}


def source_words(source):
    return SOURCE_WORDS.get(source, f"borrowed values ({source})")


def source_kind(source):
    """ "own", "default" or "borrowed"; None for a task reported without a decision."""
    if source is None:
        return None
    return "own" if source == OWN else "default" if source == DEFAULT else "borrowed"


class TaskGroup(NamedTuple):
    """Tasks of one agent in one (task type, state) with one strategy, one
    decision source (None: reported without a decision) and one exploration
    flag, with what they did."""

    agent: object
    task_type: str
    state_key: str
    strategy: object
    source: str | None
    explored: bool | None
    tasks: int
    successes: int
    changed: int  # outcomes whose update moved the Q-value
    learned: bool  # the agent holds a Q-value for this state now


def _share(part, whole):
    return part / whole if whole else None


@dataclass(frozen=True)
class Regret:
    """Success the window's tasks lost against the best strategy the fleet
    knows in their (task type, state), per task, with a 95 % interval."""

    per_task: float  # success-rate points per task (0.05 = 5 points)
    low: float
    high: float
    tasks: int  # the tasks it covers: those in cells where the fleet knows a best strategy
    cells: int


@dataclass
class LearningHealth:
    outcomes: int = 0
    changed: int = 0
    successes: int = 0
    decisions: int = 0
    own: int = 0
    borrowed: int = 0
    default: int = 0
    explored: int = 0
    borrowed_by_source: dict = field(default_factory=dict)
    states_seen: int = 0
    states_learned: int = 0
    regret: Regret | None = None

    @property
    def changed_share(self):
        return _share(self.changed, self.outcomes)

    @property
    def coverage(self):
        return _share(self.states_learned, self.states_seen)

    @property
    def own_share(self):
        return _share(self.own, self.decisions)

    @property
    def borrowed_share(self):
        return _share(self.borrowed, self.decisions)

    @property
    def default_share(self):
        return _share(self.default, self.decisions)

    @property
    def explored_share(self):
        return _share(self.explored, self.decisions)


def health(groups: Iterable[TaskGroup], best=None) -> LearningHealth:
    """The figures of a set of task groups (one agent's, or the fleet's);
    with `best` (from `best_known`) the regret too."""
    groups = list(groups)
    result = LearningHealth()
    states = {}
    for group in groups:
        result.outcomes += group.tasks
        result.changed += group.changed
        result.successes += group.successes
        key = (group.agent, group.task_type, group.state_key)
        states[key] = states.get(key, False) or group.learned
        kind = source_kind(group.source)
        if kind is None:
            continue
        result.decisions += group.tasks
        result.explored += group.tasks if group.explored else 0
        setattr(result, kind, getattr(result, kind) + group.tasks)
        if kind == "borrowed":
            result.borrowed_by_source[group.source] = result.borrowed_by_source.get(group.source, 0) + group.tasks
    result.states_seen, result.states_learned = len(states), sum(states.values())
    if best is not None:
        result.regret = regret(groups, best)
    return result


def best_known(groups: Iterable[TaskGroup], min_tasks=MIN_STRATEGY_TASKS):
    """{(task type, state key): (success rate, tasks, successes, strategy)}: per cell, the
    strategy with the highest observed success rate among those the fleet ran
    at least `min_tasks` times there (ties: the one with more tasks)."""
    counts = {}
    for group in groups:
        key = (group.task_type, group.state_key, group.strategy)
        tasks, successes = counts.get(key, (0, 0))
        counts[key] = (tasks + group.tasks, successes + group.successes)
    best = {}
    for (task_type, state_key, strategy), (tasks, successes) in counts.items():
        if tasks < min_tasks:
            continue
        candidate = (successes / tasks, tasks, successes, strategy)
        current = best.get((task_type, state_key))
        if current is None or candidate[:2] > current[:2]:
            best[(task_type, state_key)] = candidate
    return best


def _smoothed_variance(successes, tasks):
    """Binomial variance of a rate with one success and one failure added,
    so 0/n and n/n do not claim to be exact."""
    p = (successes + 1) / (tasks + 2)
    return p * (1 - p) / tasks


def regret(groups: Iterable[TaskGroup], best):
    """Success lost per task against the fleet's best known strategy of each
    (task type, state) cell, over the tasks in cells that have one; None when
    no task is in such a cell.

    Per cell, lost = tasks x best rate - successes. The interval adds the
    sampling variances of the best rate (over its tasks) and of the agent's
    own rate in the cell, as if independent (the agent's tasks may be among
    the best's: then it is a little wide). It leaves out the winner's curse:
    the highest of several observed rates is biased up when strategies are
    close, so the estimate leans high where the fleet has little evidence.
    """
    cells = {}
    for group in groups:
        if (group.task_type, group.state_key) not in best:
            continue
        key = (group.agent, group.task_type, group.state_key)
        tasks, successes = cells.get(key, (0, 0))
        cells[key] = (tasks + group.tasks, successes + group.successes)
    total = sum(tasks for tasks, _ in cells.values())
    if not total:
        return None
    lost = variance = 0.0
    for (_, task_type, state_key), (tasks, successes) in cells.items():
        rate, best_tasks, best_successes, _ = best[(task_type, state_key)]
        lost += tasks * rate - successes
        variance += tasks**2 * _smoothed_variance(best_successes, best_tasks)
        variance += tasks**2 * _smoothed_variance(successes, tasks)
    per_task, spread = lost / total, Z95 * math.sqrt(variance) / total
    return Regret(per_task, per_task - spread, per_task + spread, total, len(cells))


def verdict(figures: LearningHealth, enabled=True):
    """One of LEARNING, NOT_LEARNING, MOSTLY_DEFAULT, TOO_EARLY, LEARNING_OFF.

    Values that do not move come first: a learner stuck on the default whose
    values do not move either is not learning at all."""
    if not enabled:
        return LEARNING_OFF
    if figures.outcomes < MIN_OUTCOMES:
        return TOO_EARLY
    if figures.changed_share < MIN_CHANGED_SHARE:
        return NOT_LEARNING
    if figures.decisions >= MIN_OUTCOMES and figures.default_share > MAX_DEFAULT_SHARE:
        return MOSTLY_DEFAULT
    return LEARNING
