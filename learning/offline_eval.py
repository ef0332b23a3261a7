"""What-if: a candidate policy's success rate and composite score on the
tasks already logged, estimated offline (learning.core.offline).

The logs are the decisions that carry a propensity (recommendations) and
were reported (executions); a task an agent ran on its own choice has no
propensity and is left out, and counted. Contexts are (task type, state
key), the learner's own; actions are the strategies of the catalog.

Candidate policies, each a (rows, strategies) table of probabilities:

- `Fixed`: always one strategy for one task type, what an A/B test's
  treatment would apply (the logs are then that task type's).
- `VersionPolicy`: what a rollback to a stored version would bring back:
  its applied strategies, else the greedy strategy of its Q-values in the
  state (or the nearest state of the task type it visited), else the catalog
  default; exploring with the version's exploration rate.
- `CurrentPolicy`: the live learned state, with another exploration rate.

The greedy choice here leaves out what only the request path knows (A/B
arms, swarm-imported patterns, active mitigations): the estimate is of the
learned policy itself.
"""

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

import numpy as np
from django.utils import timezone

from qefleet.memory.errors import Invalid
from qefleet.memory.models import Agent

from .core import engine, offline, scoring, stats
from .models import AppliedStrategy, Execution, QEntry, StateVersion, Strategy
from .versions import decode

MAX_ROWS = 20_000          # the most recent logged tasks evaluated at once
DEFAULT_WINDOW_DAYS = 30


# --- the logs ------------------------------------------------------------------------


@dataclass
class LoggedTasks:
    agent_ids: np.ndarray
    task_types: np.ndarray
    state_keys: np.ndarray
    strategy_ids: np.ndarray
    propensities: np.ndarray
    success: np.ndarray
    score: np.ndarray
    without_propensity: int
    since: object
    first_at: object  # the earliest logged task's time (None without any)

    def __len__(self):
        return len(self.strategy_ids)

    def success_logs(self, strategies):
        """learning.core.offline.Logs with success as the reward: contexts
        coded by (task type, state key), actions by position in `strategies`
        (the score goes beside it, in offline.evaluate_each)."""
        codes = {}
        contexts = [codes.setdefault(key, len(codes)) for key in zip(self.task_types, self.state_keys)]
        position = {strategy.pk: index for index, strategy in enumerate(strategies)}
        actions = np.array([position[pk] for pk in self.strategy_ids], dtype=int)
        return offline.Logs.build(contexts, actions, self.propensities, self.success.astype(float),
                                  max(len(codes), 1), len(strategies))


def logged_tasks(agents, task_type=None, days=DEFAULT_WINDOW_DAYS, limit=MAX_ROWS, after=None, before=None):
    """The most recent reported decisions of `agents` (a queryset) over the
    last `days` (and `after` a moment, and before `before`), optionally of
    one task type."""
    since = timezone.now() - timedelta(days=days)
    if after is not None:
        since = max(since, after)
    executions = Execution.objects.filter(agent__in=agents, created_at__gte=since)
    if before is not None:
        executions = executions.filter(created_at__lt=before)
    if task_type:
        executions = executions.filter(task_type=task_type)
    without = executions.filter(decision__isnull=True).count()
    values = list(
        executions.filter(decision__isnull=False).order_by("-created_at")[:limit].values_list(
            "agent__agent_id", "decision__task_type", "decision__state_key", "decision__strategy_id",
            "decision__propensity", "success", "execution_time_ms", "error_count", "satisfaction", "efficiency",
            "created_at"))
    columns = list(zip(*values)) if values else [()] * 11
    agent_ids, types, keys, strategy_ids, propensities, success, ms, errors, satisfaction, efficiency, times = columns

    def optional(column):
        return np.array([np.nan if value is None else value for value in column], dtype=float)

    success = np.array(success, dtype=bool)
    score = scoring.task_scores(success, np.array(ms, dtype=float), np.array(errors, dtype=float),
                                optional(satisfaction), optional(efficiency)) if values else np.zeros(0)
    return LoggedTasks(np.array(agent_ids, dtype=object), np.array(types, dtype=object),
                       np.array(keys, dtype=object), np.array(strategy_ids, dtype=int),
                       np.array(propensities, dtype=float), success, score, without, since, min(times, default=None))


# --- candidate policies ----------------------------------------------------------------


@dataclass(frozen=True)
class Fixed:
    task_type: str
    strategy: Strategy
    logs_after = None
    in_sample = False

    def describe(self):
        return f"always {self.strategy.name} for {self.task_type}"

    def table(self, tasks, strategies):
        return offline.fixed_action(len(tasks), len(strategies), strategies.index(self.strategy))


class _LearnedPolicy:
    """Greedy over a learned state, explored with probability `epsilon`.
    Subclasses give `epsilon` and `learned(agent_ids)`: {agent id: (applied
    {task type: strategy id}, q {(task type, state key): {strategy id: Q}})}."""

    def table(self, tasks, strategies):
        position = {strategy.pk: index for index, strategy in enumerate(strategies)}
        default = position[Strategy.default().pk]
        states = self.learned(sorted(set(tasks.agent_ids)))
        cache = {}
        mask = np.zeros((len(tasks), len(strategies)), dtype=bool)
        for row, key in enumerate(zip(tasks.agent_ids, tasks.task_types, tasks.state_keys)):
            if key not in cache:
                applied, q = states.get(key[0], ({}, {}))
                cache[key] = _greedy(applied, q, key[1], key[2], position, default)
            mask[row, cache[key]] = True
        return offline.epsilon_greedy(mask, self.epsilon)


def _greedy(applied, q, task_type, state_key, position, default):
    """The positions of the greedy strategies, as the learner picks them."""
    if applied.get(task_type) in position:
        return [position[applied[task_type]]]
    values = q.get((task_type, state_key))
    if values is None:
        vector = engine.parse_state_key(state_key)
        values = next((q[(task_type, near)] for _, near in engine.neighbour_keys(vector)
                       if (task_type, near) in q), None)
    if not values:
        return [default]
    # Strategies without an entry in a state count as Q 0, as in the request path.
    full = {pk: values.get(pk, 0.0) for pk in position}
    best = max(full.values())
    return [position[pk] for pk, value in full.items() if value == best]


@dataclass(frozen=True)
class VersionPolicy(_LearnedPolicy):
    """Evaluated on the tasks after its capture only: the tasks that shaped
    its Q-values would flatter its greedy choices (they favour what got
    lucky there)."""

    version: StateVersion
    in_sample = False

    @property
    def logs_after(self):
        return self.version.created_at

    @property
    def epsilon(self):
        return float(self._state["config"].get("exploration_rate", 0.0))

    @cached_property
    def _state(self):
        return decode(self.version)["state"]

    def describe(self):
        return f"{self.version.agent.agent_id}'s {self.version.label} (a rollback's policy)"

    def learned(self, agent_ids):
        state = self._state
        ids = dict(Strategy.objects.values_list("name", "pk"))
        q = {}
        for task_type, state_key, name, value, _visits in state["q"]:
            if name in ids:
                q.setdefault((task_type, state_key), {})[ids[name]] = value
        applied = {task_type: ids.get(name) for task_type, name, _source in state["applied"]}
        return {self.version.agent.agent_id: (applied, q)}


@dataclass(frozen=True)
class CurrentPolicy(_LearnedPolicy):
    """Its Q-values learned from the very tasks it is evaluated on, so the
    estimate leans optimistic (`in_sample`); a version's is not."""

    epsilon: float
    logs_after = None
    in_sample = True

    def describe(self):
        return f"the current learned policy with exploration {self.epsilon:.3f}"

    def learned(self, agent_ids):
        states = {agent_id: ({}, {}) for agent_id in agent_ids}
        for agent_id, task_type, strategy_id in AppliedStrategy.objects.filter(
                agent__agent_id__in=agent_ids).values_list("agent__agent_id", "task_type", "strategy_id"):
            states[agent_id][0][task_type] = strategy_id
        for agent_id, task_type, state_key, strategy_id, value in QEntry.objects.filter(
                agent__agent_id__in=agent_ids).values_list(
                "agent__agent_id", "task_type", "state_key", "strategy_id", "q_value"):
            states[agent_id][1].setdefault((task_type, state_key), {})[strategy_id] = value
        return states


# --- the evaluation --------------------------------------------------------------------------


def evaluate(agents, policy, days=DEFAULT_WINDOW_DAYS, seed=0, replicates=offline.REPLICATES):
    """The policy's estimated success rate and composite score on the logs of
    `agents` (a queryset), or the reason the logs cannot tell."""
    task_type = policy.task_type if isinstance(policy, Fixed) else None
    tasks = logged_tasks(agents, task_type, days, after=policy.logs_after)
    strategies = list(Strategy.objects.order_by("pk"))
    answer = {
        "policy": policy.describe(), "task_type": task_type, "days": days, "rows": len(tasks),
        "without_propensity": tasks.without_propensity, "since": tasks.since.isoformat(),
        "in_sample": policy.in_sample,
    }
    target = policy.table(tasks, strategies) if len(tasks) else np.zeros((0, len(strategies)))
    try:
        logs = tasks.success_logs(strategies)
        results = offline.evaluate_each(logs, target, {"success": logs.rewards, "score": tasks.score}, seed=seed,
                                        replicates=replicates)
    except offline.NotCovered as refused:
        answer["refused"] = refused.as_dict()
        return answer
    answer.update({metric: result.as_dict() for metric, result in results.items()})
    answer["effective_samples"] = answer["success"]["effective_samples"]
    # Traffic over the time the logs span (an agent a day old has a day of
    # them, not a month), at least an hour so a burst does not look like a flood.
    covered_days = (timezone.now() - tasks.first_at).total_seconds() / 86_400
    answer["tasks_per_day"] = round(len(tasks) / max(covered_days, 1 / 24), 2)
    return answer


def abtest_outlook(answer, mde=stats.DEFAULT_MDE, power=stats.DEFAULT_POWER, control_weight=0.5):
    """Beside "start A/B test": the expected effect on success (the lift's
    interval) and the days to the test's horizon at the logged traffic of
    the task type. None when the evaluation was refused."""
    if "refused" in answer:
        return None
    base_rate = answer["success"]["logged"]["value"]
    horizon = stats.samples_per_arm(mde, power, base_rate=min(max(base_rate, 0.0), 1.0))
    per_day = answer["tasks_per_day"]
    smaller_arm = min(control_weight, 1 - control_weight)
    days = horizon / (per_day * smaller_arm) if per_day > 0 else None
    return {"lift": answer["success"]["lift"], "horizon": horizon,
            "days_to_horizon": None if days is None else round(days, 1),
            "hours_to_horizon": None if days is None else round(days * 24, 1)}


def agents_in_scope(agent=None, team=None, swarm=None):
    """The agents a what-if covers: one agent, a team, or the fleet (a
    system agent's: its swarm)."""
    agents = Agent.objects.filter(is_system=False)
    if swarm is not None:
        agents = agents.filter(swarm=swarm)
    if agent is not None:
        return agents.filter(pk=agent.pk)
    if team:
        return agents.filter(team=team)
    return agents


def policy_for(kind, agent=None, task_type=None, strategy=None, version=None, exploration_rate=None):
    """The candidate policy a request names, or Invalid naming the field."""
    if kind == "fixed":
        if not task_type:
            raise Invalid("A fixed strategy is for one task type.", "task_type")
        if not strategy:
            raise Invalid("Name the strategy to apply.", "strategy")
        found = Strategy.objects.filter(name=strategy).first()
        if found is None:
            raise Invalid(f"Unknown strategy {strategy!r}.", "strategy")
        return Fixed(task_type, found)
    if agent is None:
        raise Invalid(f"A {kind} policy is one agent's.", "agent")
    if kind == "version":
        if version is None:
            raise Invalid("Name the version (its number).", "version")
        found = StateVersion.objects.filter(agent=agent, number=version).select_related("agent").first()
        if found is None:
            raise Invalid(f"{agent.agent_id} has no version v{version} (it may have been pruned).", "version")
        return VersionPolicy(found)
    if exploration_rate is None:
        raise Invalid("Give the exploration rate to evaluate.", "exploration_rate")
    return CurrentPolicy(float(exploration_rate))
