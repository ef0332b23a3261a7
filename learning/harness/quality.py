"""How well the fleet learns: the share of the random -> oracle gap it closes.

The simulated world (simulator.py) runs `agents` x `tasks_each` tasks round
robin through the product's own learning path, services.recommend and
services.report_execution (the API's service functions, without HTTP: the
figure is about learning, and 2,040 tasks per seed over many seeds must fit
in `make bench`). The figure is the issue's: over the fleet's last 200 tasks,
(expected success - random) / (oracle - random), where expected success is
the hidden success probability of each chosen strategy (free of coin-flip
noise); the observed figure uses the sampled outcomes instead.

Variant worlds change one thing each (VARIANTS): 12 buckets, a best strategy
that changes half-way, agents whose best strategy differs in some cells, 8
strategies in the catalog. Every seed runs on a fleet of its own (its own
swarm, so its own pooled values).
"""

import json
import zlib

import numpy as np
from django.db import connection

from learning import services
from learning.models import Strategy
from learning.schemas import ExecutionIn, TaskIn
from qefleet.memory.models import Agent

from .simulator import STRATEGIES, Arm, FleetEnvironment, Simulation, prepare_fleet

AGENTS = 17
TASKS_EACH = 120
WINDOW = 200

# Four strategies an operator might add to the catalog, for the 8-strategy world.
EXTRA_STRATEGIES = (("balanced-fixed", 0.5, "fixed"), ("parallel-exponential", 1.0, "exponential"),
                    ("sequential-adaptive", 0.0, "adaptive"), ("light-none", 0.25, "none"))


class ServiceTransport:
    """The recommendation and execution endpoints as the API serves them,
    called in this process without HTTP (Simulation's transport interface)."""

    name = where = "services"

    def __init__(self):
        self.agents = {}

    def send(self, method, path, body, token):
        _, agent_id, endpoint = path.split("/")
        agent = self.agents.get(agent_id) or self.agents.setdefault(agent_id, Agent.objects.get(agent_id=agent_id))
        if endpoint == "recommendations":
            return 200, json.dumps(services.recommend(agent, TaskIn(**body["task"])))
        report = ExecutionIn(**body)
        response, _ = services.report_execution(agent, report, None, report.model_dump(mode="json"))
        return 201, json.dumps(response)


class VariantWorld(FleetEnvironment):
    """The simulated world with optional changes: `change_at` (an agent's
    task number from which every task type's table is redrawn, so the best
    strategy of a bucket changes) and `differ_share` (the share of each
    agent's (task type, bucket) cells where its best strategy is another
    one, drawn per agent)."""

    def __init__(self, agents, seed, change_at=None, differ_share=0.0, **shape):
        super().__init__(agents, seed, **shape)
        self.change_at = change_at
        self.differ_share = differ_share
        self._task_numbers = {}
        self._later = None
        self._differs = {}

    def next_task(self, agent_id):
        task = super().next_task(agent_id)
        self._task_numbers[task["id"]] = (agent_id, self._counts[agent_id])
        return task

    def arms(self, task):
        agent_id, number = self._task_numbers.get(task["id"], (None, 0))
        if self.change_at is not None and number >= self.change_at:
            if self._later is None:
                self._later = FleetEnvironment(self.agents, self.seed + 1_000_003, strategies=self.strategies,
                                               complexity_levels=self.complexity_levels,
                                               capability_levels=self.capability_levels)
            arms = self._later.arms(task)
        else:
            arms = super().arms(task)
        if self.differ_share and agent_id is not None:
            arms = self._own_arms(agent_id, task, arms)
        return arms

    def _own_arms(self, agent_id, task, arms):
        cell = (agent_id, task["type"], self.bucket(task))
        if cell not in self._differs:
            rng = np.random.default_rng([self.seed, zlib.crc32(repr(cell).encode()), 7])
            self._differs[cell] = int(rng.integers(1, len(arms))) if rng.random() < self.differ_share else 0
        shift = self._differs[cell]
        if not shift:
            return arms
        # The agent's best is another strategy: swap the best arm's success with it.
        names = list(arms)
        best = max(names, key=lambda name: arms[name].success)
        other = names[(names.index(best) + shift) % len(names)]
        swapped = dict(arms)
        swapped[best] = Arm(arms[other].success, arms[best].mean_ms)
        swapped[other] = Arm(arms[best].success, arms[other].mean_ms)
        return swapped


# name -> the world's options (VariantWorld keyword arguments)
VARIANTS = {
    "project": {},
    "12 buckets": {"complexity_levels": {"trivial": 0.1, "low": 0.35, "high": 0.6, "extreme": 0.9},
                   "capability_levels": {"one": (1,), "some": (4,), "many": (8,)}},
    "best changes half-way": {"change_at": TASKS_EACH // 2 + 1},
    "agents differ": {"differ_share": 0.25},
    "8 strategies": {"strategies": STRATEGIES + tuple(name for name, _, _ in EXTRA_STRATEGIES)},
}


def _catalog_for(names):
    """Make exactly `names` the active catalog (adding the extra strategies
    when a variant needs them)."""
    for name, parallelization, retry_policy in EXTRA_STRATEGIES:
        if name in names:
            Strategy.objects.get_or_create(name=name, defaults={"parallelization": parallelization,
                                                                "retry_policy": retry_policy})
    Strategy.objects.exclude(name__in=names).update(active=False)
    Strategy.objects.filter(name__in=names).update(active=True)
    Strategy.forget_catalog()


def run_world(seed, variant="project", agents=AGENTS, tasks_each=TASKS_EACH):
    """One seed of one world: the figures of its last WINDOW tasks."""
    options = dict(VARIANTS[variant])
    strategies = options.get("strategies", STRATEGIES)
    _catalog_for(strategies)
    fleet = prepare_fleet(agents, label="quality", prefix=f"q{seed}-{variant.replace(' ', '-')}-")
    world = VariantWorld({agent.agent_id: agent.team for agent in fleet}, seed, **options)
    try:
        # The exploration draws too, so a seed's figure is the same in every run.
        with services.seeded_exploration([seed, zlib.crc32(variant.encode())]):
            summary = Simulation(ServiceTransport(), fleet, world, agents * tasks_each, window=WINDOW).run()
    finally:
        _catalog_for(STRATEGIES)
    last = summary["last"]
    return {"seed": seed, "variant": variant, "tasks": summary["tasks"],
            "gap_closed_expected": summary["gap_closed"], "gap_closed_observed": summary["gap_closed_observed"],
            "last_expected": last["expected"], "oracle": last["oracle"], "random": last["random"],
            "epsilon_last": summary["epsilon"], "rollbacks": sum(map(len, summary["rollbacks"].values()))}


def measure(seeds, variant="project", say=None):
    """Mean, min and per-seed gap closed of `variant` over `seeds`."""
    if connection.vendor == "sqlite":
        # A throw-away database: durability costs time and measures nothing here.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=OFF")
    runs = []
    for seed in seeds:
        runs.append(run_world(seed, variant))
        if say:
            say(f"  {variant}, seed {seed}: {runs[-1]['gap_closed_expected']:.2f}")
    expected = [run["gap_closed_expected"] for run in runs]
    observed = [run["gap_closed_observed"] for run in runs]
    return {"variant": variant, "seeds": len(runs), "mean": float(np.mean(expected)), "min": float(np.min(expected)),
            "sd": float(np.std(expected, ddof=1)) if len(runs) > 1 else 0.0,
            "observed_mean": float(np.mean(observed)), "observed_min": float(np.min(observed)), "runs": runs}
