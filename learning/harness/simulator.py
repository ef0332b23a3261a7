"""A simulated QE fleet that drives the real learning API.

Three parts:

* `FleetEnvironment`: the hidden world the agents work in. Pure Python and
  numpy, with no Django, so a benchmark or a unit test can use it on its own.
* `Simulation` / `run_simulation`: the loop that asks the API for a strategy,
  samples the outcome from the environment and reports it back. It talks to
  the API through a transport: `ClientTransport` (in-process Django test
  client) or `HttpTransport` (a running server, over urllib).
* `prepare_fleet` / `in_process_host`: the Django glue that registers the demo
  fleet and issues one token per simulated agent (imports Django lazily).

The environment
---------------

Each team has 2-3 task types, shared by its agents and named `team:kind`
(`core-testing:unit-tests`). Team mates take turns at a main type, which is
90% of an agent's tasks; the rest are the team's other types. A task falls in
one of six buckets of its type: complexity low / medium / high (0.2 / 0.5 /
0.8) times required capabilities few / many (2 / 6). For every bucket and
each of the four catalog strategies the environment hides a success
probability and a mean duration. One strategy is best in a bucket, with a
success probability drawn from [0.80, 0.90]; the other three are drawn from
[0.30, 0.60]. Which strategy is best changes between buckets: moving one
complexity level or switching few/many always changes it, and every strategy
is best somewhere. Two task types (DOMINATED_KINDS) are the exception: one
strategy is best in all their buckets, as some suites simply run best one
way; there a strategy applied to the whole task type can beat a policy still
learning state by state.

Tasks have `previous_attempts` 0 and `available_resources` 0.9 (0.5 for one
task in ten), so a bucket holds two of the API's state keys and an agent sees
about a dozen states, most of them often: tabular learning visibly converges
within a hundred or so tasks per agent. Resources do not change the success
probabilities; low resources make tasks ~20% slower. Durations are on the
design's scale, where time scores 1 - ms / 30,000: 90 % of tasks take 3 s to
21 s (median 8 s), by complexity and strategy (parallel is fastest, sequential
slowest; failures run longer), so the time component of the score and the
reward moves with the choice, while success still drives the reward.

An outcome is a Bernoulli draw of success, a duration log-normally spread
around the mean (failures run longer), one or two realistic errors on failure
(timeouts, network, validation, memory, flaky...; what breaks depends on the
strategy), coverage on about half the tasks and resource efficiency on about
a third. With a seed the hidden tables, every agent's task stream and every
(task, strategy) outcome are reproducible, independent of the order in which
agents run and of what the server chooses.
"""

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

STRATEGIES = ("parallel-execution", "sequential-execution", "adaptive-retry", "resource-optimization")

TEAM_TASK_TYPES = {
    "core-testing": ("unit-tests", "integration-tests", "coverage-analysis"),
    "performance-security": ("load-tests", "security-scan"),
    "strategic-planning": ("requirements-review", "release-planning"),
    "advanced-testing": ("contract-tests", "regression-selection", "flaky-detection"),
    "specialized": ("visual-regression", "chaos-experiments"),
}
DEFAULT_TASK_TYPES = ("unit-tests", "integration-tests")
DOMINATED_KINDS = ("integration-tests", "security-scan")  # one strategy best in every bucket

COMPLEXITY_LEVELS = {"low": 0.2, "medium": 0.5, "high": 0.8}
CAPABILITY_LEVELS = {"few": (2,), "many": (6,)}  # required capabilities per level
RESOURCE_LEVELS = (0.5, 0.9)
RESOURCE_WEIGHTS = (0.1, 0.9)  # resources are usually plentiful
PRIMARY_SHARE = 0.9  # share of an agent's tasks of its own main task type
BEST_SUCCESS = (0.80, 0.90)
OTHER_SUCCESS = (0.30, 0.60)

CAPABILITY_POOL = (
    "jest", "pytest", "playwright", "k6", "openapi", "sast", "coverage", "fixtures",
    "mutation", "contract", "visual", "chaos",
)

# How fast each strategy runs relative to the bucket's base duration.
SPEED = {"parallel-execution": 0.6, "sequential-execution": 1.4, "adaptive-retry": 0.85,
         "resource-optimization": 1.1}

# Errors by failure class: (error type, message template). FAILURE_MIX says which
# classes each strategy tends to fail with.
ERRORS = {
    "timeout": [("TimeoutError", "Test run exceeded the {budget}s time limit"),
                ("DeadlineExceeded", "deadline exceeded waiting for worker {worker}")],
    "network": [("ConnectionError", "connection refused by staging-db:5432"),
                ("NetworkError", "DNS lookup failed for api.staging.internal")],
    "validation": [("AssertionError", "expected status 200, got 500 in {case}"),
                   ("ValidationError", "fixture schema invalid: missing field 'id'")],
    "memory": [("MemoryError", "worker {worker} out of memory (heap limit 2048 MB)")],
    "flaky": [("FlakyTestError", "{case} passed on retry 2 of 3")],
}
FAILURE_MIX = {
    "parallel-execution": {"network": 0.3, "memory": 0.3, "timeout": 0.2, "validation": 0.2},
    "sequential-execution": {"timeout": 0.6, "validation": 0.3, "network": 0.1},
    "adaptive-retry": {"validation": 0.4, "timeout": 0.3, "network": 0.2, "flaky": 0.1},
    "resource-optimization": {"timeout": 0.5, "validation": 0.3, "memory": 0.1, "flaky": 0.1},
}
TEST_CASES = ("test_checkout", "test_login_flow", "test_refund", "test_search_paging", "test_export_csv")


def _crc(text):
    return zlib.crc32(text.encode())


@dataclass(frozen=True)
class Arm:
    success: float
    mean_ms: float


@dataclass(frozen=True)
class Poison:
    """For `length` tasks from the agent's task number `start`, the chosen
    agents' world misleads them: the worst strategy of each bucket succeeds
    with POISONED_SUCCESS and every other with 1 - POISONED_SUCCESS."""

    agents: frozenset
    start: int
    length: int

    def covers(self, agent_id, number):
        return agent_id in self.agents and self.start <= number < self.start + self.length


POISONED_SUCCESS = 0.95


class FleetEnvironment:
    """The hidden world: task streams per agent and outcomes per strategy.

    `agents` maps agent id to team. Everything random derives from `seed`
    (a fresh one when None; `self.seed` tells which). `poison`, a Poison,
    misleads some agents for a while. `prefix`, the start of the agent ids
    of a fleet of its own (prepare_fleet's), is left out of the task
    streams and task ids, so two such fleets work in the same world.
    """

    def __init__(self, agents, seed=None, primary_share=PRIMARY_SHARE, resource_weights=RESOURCE_WEIGHTS,
                 poison=None, strategies=STRATEGIES, complexity_levels=None, capability_levels=None, prefix=""):
        self.agents = dict(agents)
        self.prefix = prefix
        # The world's shape; variant worlds (learning/harness/quality.py) change it.
        self.strategies = tuple(strategies)
        self.complexity_levels = dict(complexity_levels or COMPLEXITY_LEVELS)
        self.capability_levels = dict(capability_levels or CAPABILITY_LEVELS)
        self.poison = poison
        self._poisoned_tasks = set()
        self.seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**63))
        self.primary_share = primary_share
        self.resource_weights = np.asarray(resource_weights, dtype=float) / sum(resource_weights)
        self._streams = {}
        self._counts = {}
        self._tables = {}

    # --- the world's structure ---------------------------------------------------

    @staticmethod
    def task_types(team):
        kinds = TEAM_TASK_TYPES.get(team, DEFAULT_TASK_TYPES)
        return tuple(f"{team or 'fleet'}:{kind}" for kind in kinds)

    def buckets(self):
        return [(c, k) for k in self.capability_levels for c in self.complexity_levels]

    def table(self, task_type):
        """{bucket: {strategy: Arm}} for a task type, drawn once per seed."""
        if task_type not in self._tables:
            rng = np.random.default_rng([self.seed, _crc(task_type), 1])
            strategies = self.strategies
            offset = int(rng.integers(len(strategies)))
            table = {}
            for c_index, complexity in enumerate(self.complexity_levels):
                for k_index, capabilities in enumerate(self.capability_levels):
                    # One complexity step shifts the best by 1, few/many by 2:
                    # neighbouring buckets never share their best strategy.
                    dominated = task_type.partition(":")[2] in DOMINATED_KINDS
                    best = offset if dominated else (offset + c_index + 2 * k_index) % len(strategies)
                    base_ms = (1500 + 12_000 * self.complexity_levels[complexity]) * (1 + 0.15 * k_index)
                    arms = {}
                    for index, name in enumerate(strategies):
                        low, high = BEST_SUCCESS if index == best else OTHER_SUCCESS
                        arms[name] = Arm(float(rng.uniform(low, high)),
                                         base_ms * SPEED.get(name, 1.0) * float(rng.uniform(0.85, 1.15)))
                    table[(complexity, capabilities)] = arms
            self._tables[task_type] = table
        return self._tables[task_type]

    def bucket(self, task):
        """(complexity level, capability level) of a task body: the nearest levels."""
        levels, counts = self.complexity_levels, self.capability_levels
        complexity = min(levels, key=lambda name: abs(levels[name] - task["complexity"]))
        count = len(task.get("required_capabilities", []))
        capabilities = min(counts, key=lambda name: abs(counts[name][0] - count))
        return complexity, capabilities

    def arms(self, task):
        return self.table(task["type"])[self.bucket(task)]

    def arm(self, task, strategy):
        arms = self.arms(task)
        if strategy in arms:
            return arms[strategy]
        # A strategy an operator added to the catalog: an average performer.
        return Arm(float(np.mean([a.success for a in arms.values()])),
                   float(np.mean([a.mean_ms for a in arms.values()])))

    # --- what the benchmark compares ---------------------------------------------

    def success_probability(self, task, strategy):
        return self.arm(task, strategy).success

    def playbook(self, team):
        """{task type: strategy}: the hand-written playbook a team might start
        with before measuring anything, for its task types where one strategy
        is best everywhere (DOMINATED_KINDS): the slow, cautious
        sequential-execution, or resource-optimization where sequential
        happens to be the best. This world punishes it by 20-60 points, which
        gives the improvement loop something real to find."""
        playbook = {}
        for task_type in self.task_types(team):
            if task_type.partition(":")[2] in DOMINATED_KINDS:
                best = {max(arms, key=lambda name: arms[name].success) for arms in self.table(task_type).values()}
                playbook[task_type] = next(name for name in ("sequential-execution", "resource-optimization")
                                           if name not in best)
        return playbook

    def best_strategy(self, task):
        arms = self.arms(task)
        return max(arms, key=lambda name: arms[name].success)

    def oracle_success(self, task):
        return max(arm.success for arm in self.arms(task).values())

    def random_success(self, task):
        return float(np.mean([arm.success for arm in self.arms(task).values()]))

    # --- tasks and outcomes ------------------------------------------------------

    def next_task(self, agent_id):
        """The agent's next task body, as the API takes it."""
        name = agent_id.removeprefix(self.prefix)
        if agent_id not in self._streams:
            self._streams[agent_id] = np.random.default_rng([self.seed, _crc(name), 2])
            self._counts[agent_id] = 0
        rng = self._streams[agent_id]
        self._counts[agent_id] += 1
        poisoned = self.poison is not None and self.poison.covers(agent_id, self._counts[agent_id])
        task_type = self._task_type(agent_id, rng)
        complexity = list(self.complexity_levels.values())[int(rng.integers(len(self.complexity_levels)))]
        level = list(self.capability_levels)[int(rng.integers(len(self.capability_levels)))]
        counts = self.capability_levels[level]
        count = counts[int(rng.integers(len(counts)))]
        capabilities = [CAPABILITY_POOL[int(i)] for i in rng.choice(len(CAPABILITY_POOL), size=count, replace=False)]
        resources = RESOURCE_LEVELS[int(rng.choice(len(RESOURCE_LEVELS), p=self.resource_weights))]
        task_id = f"sim-{name}-{self._counts[agent_id]:06d}"
        if poisoned:
            self._poisoned_tasks.add(task_id)
        return {
            "id": task_id,
            "type": task_type,
            "complexity": complexity,
            "required_capabilities": capabilities,
            "previous_attempts": 0,
            "available_resources": resources,
        }

    def main_task_type(self, agent_id):
        """The type most of an agent's tasks have: team mates take turns, in the order given."""
        team = self.agents.get(agent_id, "")
        types = self.task_types(team)
        members = [agent for agent, other in self.agents.items() if other == team]
        return types[members.index(agent_id) % len(types)] if agent_id in members else types[0]

    def _task_type(self, agent_id, rng):
        types = self.task_types(self.agents.get(agent_id, ""))
        if rng.random() < self.primary_share or len(types) == 1:
            return self.main_task_type(agent_id)
        others = [t for t in types if t != self.main_task_type(agent_id)]
        return others[int(rng.integers(len(others)))]

    def outcome(self, task, strategy):
        """A result body for `task` run with `strategy`; the same for the same
        seed, task and strategy."""
        names = self.strategies
        index = names.index(strategy) if strategy in names else len(names) + _crc(strategy) % 1000
        rng = np.random.default_rng([self.seed, _crc(task["id"]), _crc(task["type"]), index, 3])
        arm = self.arm(task, strategy)
        if task["id"] in self._poisoned_tasks:
            arms = self.arms(task)
            worst = min(arms, key=lambda name: arms[name].success)
            arm = Arm(POISONED_SUCCESS if strategy == worst else 1 - POISONED_SUCCESS, arm.mean_ms)
        success = bool(rng.random() < arm.success)
        slow = 1.2 if task.get("available_resources", 1.0) < 0.7 else 1.0
        mean = arm.mean_ms * slow * (1.0 if success else 1.3)
        duration = int(min(86_400_000, max(50, rng.lognormal(math.log(mean), 0.25))))
        result = {"success": success, "execution_time_ms": duration, "errors": []}
        if not success:
            result["errors"] = [self._error(rng, strategy, duration) for _ in range(1 + int(rng.random() < 0.3))]
        if rng.random() < 0.5:
            centre, spread = (0.86, 0.04) if success else (0.6, 0.1)
            result["coverage"] = round(float(np.clip(rng.normal(centre, spread), 0, 1)), 3)
        if rng.random() < 0.33:
            result["resource_efficiency"] = round(float(np.clip(rng.normal(0.75 if success else 0.5, 0.1), 0, 1)), 3)
        return result

    @staticmethod
    def _error(rng, strategy, duration):
        mix = FAILURE_MIX.get(strategy, {"timeout": 0.4, "validation": 0.4, "network": 0.2})
        kinds = list(mix)
        kind = kinds[int(rng.choice(len(kinds), p=np.array(list(mix.values())) / sum(mix.values())))]
        error_type, message = ERRORS[kind][int(rng.integers(len(ERRORS[kind])))]
        return {"type": error_type, "message": message.format(
            budget=max(1, duration // 1000), worker=int(rng.integers(1, 9)),
            case=TEST_CASES[int(rng.integers(len(TEST_CASES)))])}


# --- talking to the API ------------------------------------------------------------


class SimulationError(RuntimeError):
    """The API answered with a non-2xx status, or could not be reached."""


@dataclass
class SimAgent:
    agent_id: str
    team: str
    token: str


class ClientTransport:
    """The API in this process, through Django's test client."""

    name = "in-process"
    where = "/api/v1/"

    def __init__(self, host=None):
        from django.test import Client

        self.client = Client(HTTP_HOST=host) if host else Client()

    def send(self, method, path, body, token):
        # secure: in-process requests never cross a network, and production
        # settings redirect plain http to https.
        response = self.client.generic(method, f"/api/v1/{path}", data=json.dumps(body),
                                       content_type="application/json", secure=True,
                                       headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.content


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is reported as the non-2xx answer it is


class HttpTransport:
    """A running server over HTTP (urllib), with a timeout per request."""

    def __init__(self, base_url, timeout=10.0):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"Not an http(s) URL: {base_url!r}")
        self.base = base_url.rstrip("/") + "/api/v1/"
        self.name = base_url
        self.where = self.base
        self.timeout = timeout
        handlers = [_NoRedirect()]
        if parsed.hostname in ("localhost", "127.0.0.1", "::1"):
            handlers.append(urllib.request.ProxyHandler({}))
        self.opener = urllib.request.build_opener(*handlers)

    def wait_until_up(self, seconds, sleep=time.sleep, clock=time.monotonic):
        """Wait up to `seconds` for the server to answer at all (any status)."""
        deadline = clock() + seconds
        while True:
            try:
                probe = urllib.request.Request(self.base + "openapi.json", method="GET")
                with self.opener.open(probe, timeout=self.timeout):
                    return
            except urllib.error.HTTPError:
                return
            except (urllib.error.URLError, OSError) as error:
                if clock() >= deadline:
                    reason = getattr(error, "reason", error)
                    raise SimulationError(f"No server answers at {self.name} after {seconds:g} s: {reason}") from None
            sleep(0.5)

    def send(self, method, path, body, token):
        request = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode(), method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "Authorization": f"Bearer {token}"},
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SimulationError(f"{method} {self.base + path} failed: {reason}") from None


# --- the loop ------------------------------------------------------------------------


def _shorten(text, limit=2000):
    """A response body for an error message: an HTML page by its title."""
    if text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
        match = re.search(r"<title>(.*?)</title>", text, re.S | re.I)
        title = " ".join(match.group(1).split()) if match else "no title"
        return f"an HTML page ({len(text)} characters) titled {title!r}"
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _fraction(values):
    return float(np.mean(values)) if values else float("nan")


@dataclass
class Simulation:
    """Round-robin over `agents`: `tasks` recommendation + execution pairs in
    total. `rate` is tasks per second overall (None or 0: as fast as possible).
    `on_progress(report)` is called every `every` tasks (default 10% of the
    run, at most 500) and at least every `max_quiet` seconds."""

    transport: object
    agents: list
    environment: FleetEnvironment
    tasks: int
    rate: float | None = None
    on_progress: object = None
    every: int | None = None
    window: int = 200
    max_quiet: float = 30.0
    sleep: object = time.sleep
    clock: object = time.monotonic

    done: int = field(default=0, init=False)
    interrupted: bool = field(default=False, init=False)

    def __post_init__(self):
        if not self.agents:
            raise ValueError("No agents to simulate.")
        if self.tasks < 1:
            raise ValueError("Simulate at least one task.")
        if self.every is None:
            self.every = max(1, min(500, self.tasks // 10))
        self.window = max(1, min(self.window, self.tasks // 2 or 1))
        self._first = []
        self._last = deque(maxlen=self.window)
        self._epsilon = {}
        self._since = []
        self._successes = 0
        self._started = None
        self.history = {}

    def _post(self, agent, path, body, method="POST"):
        status, content = self.transport.send(method, path, body, agent.token)
        text = content.decode(errors="replace") if isinstance(content, bytes) else str(content)
        where = f"{method} {getattr(self.transport, 'where', '/api/v1/')}{path} as {agent.agent_id} (task {self.done + 1})"
        if not 200 <= status < 300:
            raise SimulationError(f"{where} returned HTTP {status}: {_shorten(text)}")
        try:
            return json.loads(text)
        except ValueError:
            raise SimulationError(f"{where} returned HTTP {status} without JSON: {_shorten(text)}") from None

    def apply_playbooks(self, agent_ids):
        """Give each of `agent_ids` its team's playbook (FleetEnvironment.playbook)
        through the memory API, as an operator or the agent itself would:
        the strategy applied for each task type, used whenever it is not
        exploring or testing. Returns {agent id: {task type: strategy}}."""
        applied = {}
        for agent in self.agents:
            if agent.agent_id in agent_ids:
                for task_type, strategy in self.environment.playbook(agent.team).items():
                    self._post(agent, f"memory/learning/phase2/learning/{agent.agent_id}/strategies/{task_type}",
                               {"value": {"strategy": strategy}}, method="PUT")
                    applied.setdefault(agent.agent_id, {})[task_type] = strategy
        return applied

    def step(self, agent):
        env = self.environment
        task = env.next_task(agent.agent_id)
        decision = self._post(agent, f"agents/{agent.agent_id}/recommendations", {"task": task})
        strategy = decision["strategy"]
        result = env.outcome(task, strategy)
        report = self._post(agent, f"agents/{agent.agent_id}/executions",
                            {"decision_id": decision["decision_id"], "task": task, "result": result})
        self._epsilon[agent.agent_id] = report["exploration_rate"]
        self.history.setdefault(agent.agent_id, []).append((result["success"], report.get("rolled_back", False)))
        record = (result["success"], report["reward"], env.success_probability(task, strategy),
                  env.oracle_success(task), env.random_success(task), decision["explored"])
        if len(self._first) < self.window:
            self._first.append(record)
        self._last.append(record)
        self._since.append(record)
        self._successes += result["success"]
        self.done += 1
        return record

    def epsilon(self):
        return _fraction(list(self._epsilon.values()))

    def _progress(self):
        elapsed = self.clock() - self._started
        window = self._since
        report = {
            "done": self.done, "total": self.tasks, "window": len(window),
            "success_rate": _fraction([r[0] for r in window]),
            "mean_reward": _fraction([r[1] for r in window]),
            "explored": _fraction([r[5] for r in window]),
            "epsilon": self.epsilon(), "agents_reporting": len(self._epsilon),
            "elapsed_s": elapsed, "tasks_per_s": self.done / elapsed if elapsed > 0 else float("nan"),
        }
        self._since = []
        if self.on_progress:
            self.on_progress(report)
        return report

    def run(self):
        """Run to the end (or Ctrl-C) and return the summary."""
        self._started = self.clock()
        last_report = next_at = self._started
        try:
            while self.done < self.tasks:
                if self.rate:
                    # Paced from the previous task, so a stall is not followed by a burst.
                    wait = next_at - self.clock()
                    if wait > 0:
                        self.sleep(wait)
                    next_at = max(next_at, self.clock()) + 1 / self.rate
                self.step(self.agents[self.done % len(self.agents)])
                now = self.clock()
                if self.done % self.every == 0 or self.done == self.tasks or now - last_report >= self.max_quiet:
                    self._progress()
                    last_report = now
        except KeyboardInterrupt:
            self.interrupted = True
        return self.summary()

    def summary(self):
        def part(records):
            return {"tasks": len(records), "success": _fraction([r[0] for r in records]),
                    "expected": _fraction([r[2] for r in records]),
                    "oracle": _fraction([r[3] for r in records]), "random": _fraction([r[4] for r in records]),
                    "reward": _fraction([r[1] for r in records])}

        first, last = part(self._first), part(list(self._last))
        gap = last["oracle"] - last["random"]
        elapsed = self.clock() - self._started if self._started is not None else 0.0
        return {
            "tasks": self.done, "requested": self.tasks, "agents": len(self.agents), "window": self.window,
            "first": first, "last": last,
            # The benchmark's names: success of the first / last window, and
            # the oracle's and a random policy's expected success on the last.
            "first_200": first["success"], "last_200": last["success"],
            "oracle": last["oracle"], "random": last["random"],
            "gap_closed": (last["expected"] - last["random"]) / gap if gap > 0 else float("nan"),
            "gap_closed_observed": (last["success"] - last["random"]) / gap if gap > 0 else float("nan"),
            "success_rate": self._successes / self.done if self.done else float("nan"),
            "epsilon": self.epsilon(), "elapsed_s": elapsed, "seed": self.environment.seed,
            "interrupted": self.interrupted,
            "rollbacks": {agent: [n + 1 for n, (_, rolled) in enumerate(rows) if rolled]
                          for agent, rows in self.history.items() if any(rolled for _, rolled in rows)},
            "poisoning": poisoning_report(self.environment.poison, self.history),
        }


def poisoning_report(poison, history, before=50, after=20, recovery=30):
    """For each poisoned agent: success before the poison and right after it,
    when it was first rolled back once the poison began (in tasks after the
    poison ended: negative when the safeguard caught it while it lasted) and
    its success in the `recovery` tasks after both the rollback and the
    poison were over."""
    if poison is None:
        return None
    report = {}
    for agent in sorted(poison.agents):
        rows = history.get(agent, [])
        end = poison.start + poison.length - 1  # the last poisoned task number
        pre = [success for success, _ in rows[max(0, poison.start - 1 - before):poison.start - 1]]
        post = [success for success, _ in rows[end:end + after]]
        rolled = [n + 1 for n, (_, flag) in enumerate(rows) if flag and n + 1 >= poison.start]
        entry = {"before": _fraction(pre), "after": _fraction(post), "rolled_back_at": rolled[0] if rolled else None,
                 "rollback_delay": rolled[0] - end if rolled else None, "recovered": None}
        if rolled:
            since = max(rolled[0], end)
            entry["recovered"] = _fraction([success for success, _ in rows[since:since + recovery]])
        report[agent] = entry
    return report


def run_simulation(transport, agents, tasks, seed=None, rate=None, on_progress=None, environment=None, poison=None,
                   **options):
    """Drive `tasks` tasks round-robin over `agents` (SimAgent list) and return
    the summary dict (see Simulation.summary)."""
    environment = environment or FleetEnvironment({agent.agent_id: agent.team for agent in agents}, seed,
                                                  poison=poison)
    return Simulation(transport, agents, environment, tasks, rate, on_progress, **options).run()


# --- Django glue (lazy imports) ------------------------------------------------------


def demo_agent_ids():
    from qefleet.memory.fleet import DEMO_TEAMS

    return [agent_id for members in DEMO_TEAMS.values() for agent_id in members]


def prepare_fleet(count, token_lifetime=timedelta(days=1), label="simulate_fleet", prefix=""):
    """The first `count` demo agents (of the fleet with `prefix`, see
    register_demo_fleet), registering the fleet when one is missing, each
    with a freshly issued token that expires after `token_lifetime`."""
    from django.utils import timezone

    from qefleet.memory.fleet import issue_token, register_demo_fleet
    from qefleet.memory.models import Agent

    ids = [prefix + agent_id for agent_id in demo_agent_ids()[:count]]
    if Agent.objects.filter(agent_id__in=ids).count() < len(ids):
        register_demo_fleet(prefix)
    agents = Agent.objects.in_bulk(ids, field_name="agent_id")
    expires_at = timezone.now() + token_lifetime
    return [SimAgent(agent_id, agents[agent_id].team, issue_token(agents[agent_id], label, expires_at)[1])
            for agent_id in ids]


def in_process_host():
    """A Host header the settings accept, for the in-process client."""
    from django.conf import settings

    allowed = list(settings.ALLOWED_HOSTS)
    if not allowed:
        return "localhost" if settings.DEBUG else None
    if "*" in allowed or "testserver" in allowed:
        return None
    return allowed[0].lstrip(".")
