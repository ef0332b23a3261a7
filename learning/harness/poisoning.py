"""A poisoned agent's cost to its team mates, and false alarms where nothing changes.

Both run the project world (simulator.py) in this process through the
learning path the API serves (quality.ServiceTransport: services.recommend
and services.report_execution, the safeguard's checks and rollbacks
included), each run on a fleet and swarm of its own.

Team mates' cost (`paired_run`, `measure_poisoning`): per seed, the same
world twice, clean and with one agent, the fleet's first (test-generator,
team core-testing), poisoned on its tasks POISON_START to POISON_START +
POISON_LENGTH - 1 of TASKS_EACH (the protocol of the study the issue
cites: 300 tasks, poison on 61-120).
The world's draws are the same in both runs (its streams and outcomes do
not depend on the fleet's prefix), and so are the exploration draws, seeded
per task (TaskSeededTransport): the runs make the same choices until the
poison reaches one. An agent's cost is its expected success (the hidden
success probability of each chosen strategy, free of coin-flip noise)
summed over its tasks, clean less poisoned. The team mates are the poisoned
agent's team: the fleet is one swarm, but a team's task types are its own,
and pooled values are per task type. The other teams' cost is reported too,
as a check: it is 0 unless something leaks across task types.

Whole-fleet poisoning (`whole_fleet_run`): every agent poisoned on the same
tasks; the safeguard should roll agents back once the poison is over and
their learned state is wrong.

A stable world (`stable_run`): no poison, many tasks per agent. Every
rollback is a false one; pooled rows that restarted are counted too (a
restart throws a good value away where the world never changed).
"""

import zlib

import numpy as np

from learning import services
from learning.core import engine
from learning.models import PooledValue, Rollback
from qefleet.memory.fleet import DEMO_TEAMS, SWARM

from .quality import WINDOW, ServiceTransport
from .simulator import FleetEnvironment, Poison, Simulation, demo_agent_ids, prepare_fleet

AGENTS = 17
# The paired runs simulate the poisoned agent's team alone, the first demo
# agents: no other team shares its task types, so their runs are the same
# with or without the poison (0.00 tasks each in the 17-agent runs), and a
# seed costs a third of the 17-agent runs.
TEAM_AGENTS = len(next(iter(DEMO_TEAMS.values())))
TASKS_EACH = 300
POISON_START = 61
POISON_LENGTH = 60
# The target: a poisoned agent costs each team mate at most this many tasks of success.
MATE_COST_TARGET = 3.0
# The whole fleet is poisoned later: the simulator runs no improvement cycle,
# so an agent's first version is captured at its task 105 and the safeguard
# has no reference before its task 160; a poison on 61-120 is never judged.
WHOLE_FLEET_START = 201


class TaskSeededTransport(ServiceTransport):
    """The service path with each recommendation's exploration draws seeded
    by (seed, task id). One generator for a whole run, as quality.run_world
    uses, is consumed differently as soon as one choice differs (a random
    try draws once more than a greedy choice among one), after which every
    agent's draws differ; seeded per task, two runs of a world draw alike
    for the same task whatever happened before."""

    def __init__(self, seed):
        super().__init__()
        self.seed = seed

    def send(self, method, path, body, token):
        if not path.endswith("/recommendations"):
            return super().send(method, path, body, token)
        with services.seeded_exploration([self.seed, zlib.crc32(body["task"]["id"].encode())]):
            return super().send(method, path, body, token)


class RecordedSimulation(Simulation):
    """A Simulation that keeps each agent's records task by task (success,
    reward, expected success, oracle, random, explored; Simulation.step)."""

    def __post_init__(self):
        super().__post_init__()
        self.records = {}

    def step(self, agent):
        record = super().step(agent)
        self.records.setdefault(agent.agent_id, []).append(record)
        return record

    def expected(self):
        """{agent: its expected success per task}."""
        return {agent: [record[2] for record in records] for agent, records in self.records.items()}


class RestartCounter:
    """Counts the restarts of a swarm's pooled rows from snapshots of their
    visits, and logs each (the fleet's task count at the snapshot, the row,
    its visits). Between two snapshots a row restarted when its current
    visits grew less than its visits did; it cannot restart twice within
    engine.RESTART_AFTER visits, so snapshots at most that many tasks apart
    count every restart."""

    def __init__(self, swarm):
        self.swarm = swarm
        self.restarts = 0
        self.log = []
        self._seen = {}

    def snapshot(self, progress=None):
        for pk, task_type, key, strategy, visits, current in PooledValue.objects.filter(swarm=self.swarm).values_list(
                "pk", "task_type", "abstract_key", "strategy__name", "visits", "current_visits"):
            before_visits, before_current = self._seen.get(pk, (0, 0))
            if current < before_current + visits - before_visits:
                self.restarts += 1
                self.log.append({"task": progress["done"] if progress else None, "task_type": task_type,
                                 "abstract_key": key, "strategy": strategy, "visits": visits})
            self._seen[pk] = (visits, current)


def run_fleet(seed, label, agents, tasks_each, poisoned=(), start=POISON_START, length=POISON_LENGTH, on_progress=None,
         every=None):
    """One run of the project world on a fleet of its own ("<label><seed>-"):
    the simulation (its records and history keyed by the agent ids without
    the prefix), its summary and the fleet's prefix. `poisoned` names the
    agents (without the prefix) poisoned on their tasks start..start + length - 1."""
    prefix = f"{label}{seed}-"
    fleet = prepare_fleet(agents, label="poisoning", prefix=prefix)
    poison = Poison(frozenset(prefix + name for name in poisoned), start, length) if poisoned else None
    world = FleetEnvironment({agent.agent_id: agent.team for agent in fleet}, seed, poison=poison, prefix=prefix)
    simulation = RecordedSimulation(TaskSeededTransport(seed), fleet, world, agents * tasks_each, window=WINDOW,
                                    on_progress=on_progress, every=every)
    summary = simulation.run()
    simulation.records = {agent_id.removeprefix(prefix): rows for agent_id, rows in simulation.records.items()}
    simulation.history = {agent_id.removeprefix(prefix): rows for agent_id, rows in simulation.history.items()}
    return simulation, summary, prefix


def success_cost(clean, poisoned, agents):
    """Per agent of `agents`: its expected success summed over its tasks in
    the clean run less the same in the poisoned run (`clean` and `poisoned`
    map each agent to its expected success per task)."""
    return {agent: float(np.sum(clean[agent]) - np.sum(poisoned[agent])) for agent in agents}


def _rollbacks(prefix):
    """The fleet's rollbacks, oldest first: who, at which of its tasks, and
    the safeguard's numbers (window score, reference, change)."""
    return [{"agent": row.agent.agent_id.removeprefix(prefix), "automatic": row.automatic, **row.numbers}
            for row in Rollback.objects.filter(agent__agent_id__startswith=prefix).select_related("agent")
            .order_by("created_at", "pk")]


def paired_run(seed, agents=TEAM_AGENTS, tasks_each=TASKS_EACH, start=POISON_START, length=POISON_LENGTH):
    """One seed's clean and poisoned runs: each team mate's cost, the
    poisoned agent's own (its whole run and the poisoned stretch), the other
    teams' and both runs' rollbacks."""
    clean, _, clean_prefix = run_fleet(seed, "pc", agents, tasks_each)
    world = clean.environment
    names = [agent.agent_id.removeprefix(clean_prefix) for agent in clean.agents]
    target = names[0]
    team = world.agents[clean_prefix + target]
    mates = [name for name in names[1:] if world.agents[clean_prefix + name] == team]
    others = [name for name in names if world.agents[clean_prefix + name] != team]
    poisoned, _, poisoned_prefix = run_fleet(seed, "pp", agents, tasks_each, poisoned=(target,), start=start,
                                             length=length)
    clean_expected, poisoned_expected = clean.expected(), poisoned.expected()
    mate_costs = success_cost(clean_expected, poisoned_expected, mates)
    stretch = slice(start - 1, start - 1 + length)
    return {
        "seed": seed, "poisoned": target, "team": team, "mates": mate_costs,
        "mate_cost": float(np.mean(list(mate_costs.values()))) if mates else float("nan"),
        "poisoned_cost": success_cost(clean_expected, poisoned_expected, [target])[target],
        "poisoned_cost_during": success_cost({target: clean_expected[target][stretch]},
                                             {target: poisoned_expected[target][stretch]}, [target])[target],
        "others_cost": success_cost(clean_expected, poisoned_expected, others),
        "rollbacks_clean": _rollbacks(clean_prefix), "rollbacks_poisoned": _rollbacks(poisoned_prefix),
    }


def _interval(values):
    """Mean and a 95 % interval over seeds (normal approximation: mean +- 1.96 standard errors)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, [mean - half, mean + half]


def whole_fleet_run(seed, agents=AGENTS, tasks_each=TASKS_EACH, start=WHOLE_FLEET_START, length=POISON_LENGTH):
    """Every agent poisoned on the same tasks: the safeguard's rollbacks and
    each agent's detection and recovery (simulator.poisoning_report)."""
    _, summary, prefix = run_fleet(seed, f"pw{start}-", agents, tasks_each, poisoned=tuple(demo_agent_ids()[:agents]),
                              start=start, length=length)
    report = {agent_id.removeprefix(prefix): entry for agent_id, entry in summary["poisoning"].items()}
    rolled = [name for name, entry in report.items() if entry["rolled_back_at"] is not None]
    return {"seed": seed, "agents": agents, "tasks_each": tasks_each, "poison_start": start, "poison_length": length,
            "rolled_back": len(rolled), "rollbacks": _rollbacks(prefix),
            "poisoning": report}


def measure_poisoning(seeds, whole_fleet_seeds=(), agents=TEAM_AGENTS, tasks_each=TASKS_EACH, say=None):
    """The team mates' cost over `seeds` (mean, 95 % interval, the lowest
    and highest of one team mate), the poisoned agent's own, the other
    teams' when `agents` takes them in (a check), and the whole-fleet
    poisoning of all AGENTS over `whole_fleet_seeds`."""
    runs = []
    for seed in seeds:
        runs.append(paired_run(seed, agents, tasks_each))
        if say:
            run = runs[-1]
            say(f"  poisoning, seed {seed}: team mates {run['mate_cost']:+.2f} tasks each, "
                f"{run['poisoned']} {run['poisoned_cost']:+.1f}, "
                f"rollbacks {len(run['rollbacks_clean'])} clean / {len(run['rollbacks_poisoned'])} poisoned")
    whole = []
    for seed in whole_fleet_seeds:
        whole.append(whole_fleet_run(seed))
        if say:
            say(f"  whole-fleet poisoning, seed {seed}: {whole[-1]['rolled_back']} of {AGENTS} agents rolled back")
    mate_mean, mate_interval = _interval([run["mate_cost"] for run in runs])
    own_mean, own_interval = _interval([run["poisoned_cost"] for run in runs])
    every_mate = [cost for run in runs for cost in run["mates"].values()]
    every_other = [cost for run in runs for cost in run["others_cost"].values()]
    return {
        "protocol": {"agents": agents, "tasks_each": tasks_each, "poison_start": POISON_START,
                     "poison_length": POISON_LENGTH, "poisoned": runs[0]["poisoned"] if runs else None},
        "seeds": len(runs), "mate_cost": mate_mean, "mate_cost_interval": mate_interval,
        "mate_cost_range": [min(every_mate), max(every_mate)] if every_mate else None,
        "poisoned_cost": own_mean, "poisoned_cost_interval": own_interval,
        "poisoned_cost_during": float(np.mean([run["poisoned_cost_during"] for run in runs])) if runs else None,
        "others_cost_largest": max(map(abs, every_other)) if every_other else None,
        "rollbacks_clean": sum(len(run["rollbacks_clean"]) for run in runs),
        "rollbacks_poisoned": sum(len(run["rollbacks_poisoned"]) for run in runs),
        "whole_fleet": whole, "runs": runs,
    }


def stable_run(seed, tasks_each, agents=AGENTS):
    """The project world with no poison, `tasks_each` tasks per agent: the
    safeguard's rollbacks (all false), the swarm's pooled rows that
    restarted and how many restarts in all, and the gap closed over the
    fleet's last WINDOW tasks."""
    counter = RestartCounter(f"ps{seed}-{SWARM}")
    _, summary, prefix = run_fleet(seed, "ps", agents, tasks_each, on_progress=counter.snapshot,
                              every=engine.RESTART_AFTER)
    counter.snapshot({"done": summary["tasks"]})
    rows = PooledValue.objects.filter(swarm=counter.swarm)
    return {
        "seed": seed, "agents": agents, "tasks_each": tasks_each, "tasks": summary["tasks"],
        "rollbacks": _rollbacks(prefix), "pooled_rows": rows.count(),
        "rows_restarted": sum(current < visits for visits, current in rows.values_list("visits", "current_visits")),
        "restarts": counter.restarts, "restart_log": counter.log,
        "gap_closed_expected": summary["gap_closed"], "gap_closed_observed": summary["gap_closed_observed"],
    }


def measure_stable(seeds, tasks_each, agents=AGENTS, say=None):
    """stable_run over `seeds`."""
    runs = []
    for seed in seeds:
        runs.append(stable_run(seed, tasks_each, agents))
        if say:
            run = runs[-1]
            say(f"  stable world, seed {seed}: {len(run['rollbacks'])} rollbacks, {run['restarts']} restarts "
                f"({run['rows_restarted']} of {run['pooled_rows']} pooled rows), "
                f"gap closed {run['gap_closed_expected']:.2f}")
    return {"seeds": len(runs), "agents": agents, "tasks_each": tasks_each,
            "rollbacks": sum(len(run["rollbacks"]) for run in runs),
            "restarts": sum(run["restarts"] for run in runs), "runs": runs}
