"""The fleet simulator: its hidden environment, the loop and the command."""

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from learning import services
from learning.core import engine, scoring
from learning.harness.simulator import (
    DOMINATED_KINDS,
    STRATEGIES,
    ClientTransport,
    FleetEnvironment,
    SimAgent,
    Simulation,
    prepare_fleet,
    run_simulation,
)
from learning.models import AppliedStrategy, Execution, Strategy
from learning.schemas import ResultIn, TaskIn
from qefleet.memory.fleet import DEMO_TEAMS

pytestmark = pytest.mark.django_db

FLEET = {agent_id: team for team, members in DEMO_TEAMS.items() for agent_id in members}


def environment(seed=7):
    return FleetEnvironment(FLEET, seed)


def task_in(env, task_type, bucket):
    complexity, capabilities = bucket
    count = 1 if capabilities == "few" else 6
    return {"id": "t", "type": task_type, "complexity": {"low": 0.2, "medium": 0.5, "high": 0.8}[complexity],
            "required_capabilities": ["x"] * count, "previous_attempts": 0, "available_resources": 0.9}


def test_it_hides_a_best_strategy_that_changes_between_buckets():
    env = environment()
    types = {t for team in DEMO_TEAMS for t in env.task_types(team)}
    assert "core-testing:unit-tests" in types and len(types) >= 10
    for task_type in types - dominated_types(types):
        bests = {}
        for bucket, arms in env.table(task_type).items():
            best = max(arms, key=lambda name: arms[name].success)
            bests[bucket] = best
            assert set(arms) == set(STRATEGIES)
            assert 0.8 <= arms[best].success <= 0.9
            assert all(0.3 <= arm.success <= 0.6 for name, arm in arms.items() if name != best)
            task = task_in(env, task_type, bucket)
            assert env.best_strategy(task) == best
            assert env.oracle_success(task) == arms[best].success
            assert env.random_success(task) == pytest.approx(np.mean([arm.success for arm in arms.values()]))
        assert len(bests) == 6
        assert set(bests.values()) == set(STRATEGIES)
        # Neighbouring buckets (one complexity step, or few vs many) never share the best strategy.
        levels = ["low", "medium", "high"]
        for (complexity, capabilities), best in bests.items():
            index = levels.index(complexity)
            if index + 1 < len(levels):
                assert bests[(levels[index + 1], capabilities)] != best
            assert bests[(complexity, "many" if capabilities == "few" else "few")] != best


def dominated_types(types):
    return {task_type for task_type in types if task_type.partition(":")[2] in DOMINATED_KINDS}


def test_in_a_dominated_task_type_one_strategy_is_best_everywhere():
    env = environment()
    types = dominated_types({t for team in DEMO_TEAMS for t in env.task_types(team)})
    assert types == {"core-testing:integration-tests", "performance-security:security-scan"}
    for task_type in types:
        bests = {max(arms, key=lambda name: arms[name].success) for arms in env.table(task_type).values()}
        assert len(bests) == 1


def test_a_playbook_holds_a_team_to_a_strategy_that_is_not_the_best():
    for seed in range(8):
        env = environment(seed)
        for team in DEMO_TEAMS:
            playbook = env.playbook(team)
            assert set(playbook) == dominated_types(env.task_types(team))
            for task_type, strategy in playbook.items():
                assert strategy in ("sequential-execution", "resource-optimization")
                assert all(max(arms, key=lambda name: arms[name].success) != strategy
                           for arms in env.table(task_type).values())


def test_the_command_applies_playbooks_through_the_api():
    out = io.StringIO()
    call_command("simulate_fleet", "--agents", "7", "--tasks", "14", "--seed", "3", "--quiet",
                 "--playbook", "test-executor,security-scanner", stdout=out)
    expected = {("test-executor", "core-testing:integration-tests"): environment(3).playbook("core-testing"),
                ("security-scanner", "performance-security:security-scan"):
                    environment(3).playbook("performance-security")}
    applied = AppliedStrategy.objects.values_list("agent__agent_id", "task_type", "strategy__name", "source")
    assert sorted(applied) == sorted((agent, task_type, playbook[task_type], "memory-api")
                                     for (agent, task_type), playbook in expected.items())
    assert "Playbook for test-executor: " in out.getvalue()
    with pytest.raises(CommandError, match="no task type of their team has a playbook: requirements-validator"):
        call_command("simulate_fleet", "--agents", "8", "--tasks", "3", "--playbook", "requirements-validator",
                     stdout=io.StringIO())
    with pytest.raises(CommandError, match="not simulated: chaos-engineer"):
        call_command("simulate_fleet", "--agents", "3", "--tasks", "3", "--playbook", "chaos-engineer",
                     stdout=io.StringIO())


def test_it_repeats_tasks_and_outcomes_for_the_same_seed():
    first, second, other = environment(3), environment(3), environment(4)
    agents = ["test-generator", "security-scanner", "chaos-engineer"]
    tasks = [first.next_task(agent) for _ in range(20) for agent in agents]
    # Another order of agents does not change any agent's stream.
    again = {agent: [second.next_task(agent) for _ in range(20)] for agent in reversed(agents)}
    assert tasks == [again[agent][n] for n in range(20) for agent in agents]
    assert [first.outcome(task, name) for task in tasks for name in STRATEGIES] == \
        [second.outcome(task, name) for task in tasks for name in STRATEGIES]
    assert [other.next_task(agent) for _ in range(20) for agent in agents] != tasks
    assert first.table("core-testing:unit-tests") == second.table("core-testing:unit-tests")
    assert first.table("core-testing:unit-tests") != other.table("core-testing:unit-tests")


def test_it_draws_valid_tasks_in_a_few_states_per_bucket():
    env = environment()
    states = {}
    for agent_id in FLEET:
        for _ in range(100):
            task = env.next_task(agent_id)
            TaskIn(**task)
            assert task["type"] in env.task_types(FLEET[agent_id])
            assert task["previous_attempts"] == 0
            vector = engine.state_vector(task["complexity"], len(task["required_capabilities"]),
                                         task["previous_attempts"], task["available_resources"])
            states.setdefault((task["type"], env.bucket(task)), set()).add(engine.state_key(vector))
            for name in STRATEGIES:
                result = env.outcome(task, name)
                ResultIn(**result)
                assert bool(result["errors"]) is not result["success"]
    assert max(len(keys) for keys in states.values()) <= 2
    # Most of an agent's tasks are of its main type; team mates share the team's types.
    main = env.main_task_type("test-executor")
    assert main == "core-testing:integration-tests"
    assert env.main_task_type("quality-analyzer") == main


def test_it_samples_success_at_the_hidden_rate():
    env = environment()
    task = env.next_task("test-generator")
    best = env.best_strategy(task)
    worst = min(STRATEGIES, key=lambda name: env.success_probability(task, name))
    runs = [dict(task, id=f"t-{n}") for n in range(2000)]
    for name in (best, worst):
        rate = np.mean([env.outcome(run, name)["success"] for run in runs])
        assert rate == pytest.approx(env.success_probability(task, name), abs=0.04)


def test_its_durations_move_the_score_time_component():
    """Time scores 1 - ms / 30,000 (the design's scale): tasks must mostly run
    well under 30 s, or the component is a flat zero on every chart."""
    env = environment()
    scores = {name: [] for name in STRATEGIES}
    for agent_id in FLEET:
        for _ in range(50):
            task = env.next_task(agent_id)
            for name in STRATEGIES:
                scores[name].append(scoring.time_score(env.outcome(task, name)["execution_time_ms"]))
    every = np.concatenate(list(scores.values()))
    assert np.mean(every == 0) < 0.01
    assert 0.5 <= np.median(every) <= 0.85 and np.std(every) > 0.1
    # Faster strategies score better on time, as the reward should see.
    assert np.mean(scores["parallel-execution"]) > np.mean(scores["sequential-execution"]) + 0.15


def test_it_runs_in_process_from_the_command():
    out = io.StringIO()
    call_command("simulate_fleet", "--agents", "3", "--tasks", "60", "--seed", "1", stdout=out)
    text = out.getvalue()
    assert Execution.objects.count() == 60
    assert sorted(Execution.objects.values_list("agent__agent_id", flat=True).distinct()) == \
        sorted(["test-generator", "test-executor", "coverage-analyzer"])
    assert "Simulating 3 agents, 60 tasks in total (round-robin, 20 per agent), in-process, seed 1" in text
    assert "[100%] 60/60 tasks" in text and "mean epsilon" in text
    assert "Summary after 60 of 60 tasks" in text
    assert "first 30 tasks" in text and "last 30 tasks" in text


def test_it_stops_with_the_status_and_body_of_a_failed_call():
    Strategy.objects.update(active=False)  # the API answers 409: no active strategy
    with pytest.raises(CommandError, match=r"HTTP 409: .*no active strategy"):
        call_command("simulate_fleet", "--agents", "1", "--tasks", "5", "--quiet", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--agents"):
        call_command("simulate_fleet", "--agents", "18", "--tasks", "5", stdout=io.StringIO())


def test_it_learns_to_beat_its_first_tasks(monkeypatch):
    # Seed the server's exploration too, so this run is the same every time.
    monkeypatch.setattr(services._local, "rng", np.random.default_rng(5), raising=False)
    agents = prepare_fleet(4)  # 200 tasks each, ~10 s
    summary = run_simulation(ClientTransport(), agents, 800, seed=11)
    assert summary["tasks"] == 800 and summary["window"] == 200
    assert summary["last_200"] > summary["first_200"] + 0.03
    assert summary["last"]["expected"] > summary["first"]["expected"] + 0.03
    assert summary["random"] < summary["last"]["expected"] < summary["oracle"]
    assert summary["epsilon"] < 0.3


class StubTransport:
    def __init__(self):
        self.calls = []

    def send(self, method, path, body, token):
        self.calls.append(path)
        if path.endswith("recommendations"):
            return 200, json.dumps({"decision_id": "d", "strategy": "adaptive-retry", "explored": False}).encode()
        return 201, json.dumps({"reward": 1.0, "exploration_rate": 0.2}).encode()


def test_it_paces_tasks_at_the_rate():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    reports = []
    agents = [SimAgent("test-generator", "core-testing", "t1"), SimAgent("test-executor", "core-testing", "t2")]
    simulation = Simulation(StubTransport(), agents, FleetEnvironment(FLEET, 1), 10, rate=4,
                            on_progress=reports.append, every=5, sleep=sleep, clock=lambda: now[0])
    summary = simulation.run()
    assert sum(slept) == pytest.approx(9 / 4)
    assert [report["done"] for report in reports] == [5, 10]
    assert reports[-1]["epsilon"] == 0.2 and reports[-1]["agents_reporting"] == 2
    assert summary["tasks"] == 10 and summary["window"] == 5


@pytest.mark.django_db(transaction=True)
def test_it_drives_a_live_server_over_http(live_server, strategy_catalog):
    out = io.StringIO()
    call_command("simulate_fleet", "--agents", "2", "--tasks", "10", "--seed", "2", "--url", live_server.url,
                 stdout=out)
    assert Execution.objects.count() == 10
    assert f"over HTTP to {live_server.url}" in out.getvalue()
    assert "Summary after 10 of 10 tasks" in out.getvalue()


def test_it_poisons_the_chosen_agents_for_a_while():
    from learning.harness.simulator import FleetEnvironment, Poison

    env = FleetEnvironment({"a": "core-testing", "b": "core-testing"}, seed=3,
                           poison=Poison(frozenset({"a"}), start=3, length=200))
    tasks = [env.next_task("a") for _ in range(202)]
    assert [task["id"] in env._poisoned_tasks for task in tasks[:4]] == [False, False, True, True]
    assert env.next_task("b")["id"] not in env._poisoned_tasks

    def worst(task):
        arms = env.arms(task)
        return min(arms, key=lambda name: arms[name].success)

    poisoned = tasks[2:202]
    favoured = sum(env.outcome(task, worst(task))["success"] for task in poisoned) / len(poisoned)
    best = sum(env.outcome(task, env.best_strategy(task))["success"] for task in poisoned) / len(poisoned)
    assert favoured > 0.85 and best < 0.15


def test_the_poisoning_report_measures_detection_and_recovery():
    from learning.harness.simulator import Poison, poisoning_report

    history = {"a": [(True, False)] * 10 + [(False, False)] * 4 + [(False, True)] + [(True, False)] * 40}
    report = poisoning_report(Poison(frozenset({"a"}), start=11, length=10), history, before=10, after=5,
                              recovery=30)
    entry = report["a"]
    assert entry["before"] == 1.0 and entry["rolled_back_at"] == 15 and entry["rollback_delay"] == -5
    assert entry["recovered"] == 1.0
    assert poisoning_report(None, history) is None
