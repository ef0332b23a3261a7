"""Building recommendation and execution bodies, and learned histories, for
the learning tests (and the dashboard, browser and harness tests)."""

import itertools

from learning import versions
from learning.models import LearningProfile, Strategy, VersionReason

_ids = itertools.count(1)


def task(**overrides):
    body = {"id": f"task-{next(_ids)}", "type": "unit-tests", "complexity": 0.6,
            "required_capabilities": ["jest"], "previous_attempts": 0, "available_resources": 0.8}
    body.update(overrides)
    return body


def recommend(agent, **task_fields):
    response = agent.client.post(f"agents/{agent.agent_id}/recommendations", {"task": task(**task_fields)})
    assert response.status_code == 200, response.content
    return response.json()


def report(agent, decision=None, body_task=None, headers=None, **result):
    outcome = {"success": True, "execution_time_ms": 2350, "errors": []}
    outcome.update(result)
    body = {"task": body_task or task(), "result": outcome}
    if decision is not None:
        body["decision_id"] = decision["decision_id"]
    return agent.client.post(f"agents/{agent.agent_id}/executions", body, headers=headers)


def run_task(agent, success=True, **task_fields):
    decision = recommend(agent, **task_fields)
    response = report(agent, decision, task(**task_fields), success=success)
    assert response.status_code == 201, response.content
    return decision, response.json()


def strategy(name="parallel-execution"):
    """A strategy of the catalog the migrations seed."""
    return Strategy.objects.get(name=name)


def profile(agent):
    """The agent's learning profile as stored now (its live version read
    through the relation, the payload left until it is read)."""
    return LearningProfile.objects.get(agent=agent)


def healthy_history(agent):
    """70 good tasks with v1 captured at task 20: v1 becomes known good at
    task 70, after the 50 healthy tasks `known_good_after` asks for."""
    for _ in range(20):
        run_task(agent)
    version = versions.capture(agent, VersionReason.ON_DEMAND)
    for _ in range(50):
        run_task(agent)
    return version


def degrade(agent, tasks):
    """`tasks` failed easy tasks; their report bodies."""
    return [run_task(agent, success=False, complexity=0.1)[1] for _ in range(tasks)]


def learn_then_worsen(agent):
    """30 good tasks, v1 captured and known good, then 30 worse tasks
    (snapshots every 10 tasks, the baseline after 50); returns v1."""
    for _ in range(30):
        run_task(agent)
    good = versions.capture(agent, VersionReason.ON_DEMAND)
    good.known_good = True
    good.save(update_fields=["known_good"])
    for index in range(30):
        run_task(agent, success=index % 3 == 0, complexity=0.1)
    return good


def no_exploration(agent):
    """The agent's policy never explores: every choice is its best one."""
    LearningProfile.objects.update_or_create(agent=agent, defaults={"exploration_rate": 0.0,
                                                                   "min_exploration_rate": 0.0})


def run_in_shadow(agent, tasks, success_rate=0.7, seed=0):
    """Put `agent` in shadow and report `tasks` shadow tasks in the states of
    its latest logged ones (so the estimate has its own logs to borrow from),
    each a success with probability `success_rate`."""
    import numpy as np

    from learning import services
    from learning.core import engine
    from learning.models import Execution, LearningMode
    from learning.schemas import ExecutionIn, TaskIn

    LearningProfile.objects.get_or_create(agent=agent)
    LearningProfile.objects.get(agent=agent).set_mode(LearningMode.SHADOW)
    rng = np.random.default_rng(seed)
    states = list(Execution.objects.filter(agent=agent).order_by("-pk").values_list("task_type", "state_key")[:tasks])
    for index, (task_type, key) in enumerate(states or [("unit-tests", "0.6,0.1,0.0,0.8,1.0")] * tasks):
        complexity, capabilities, attempts, resources, _ = engine.parse_state_key(key)
        body = {"id": f"shadow-{index}", "type": task_type, "complexity": complexity,
                "required_capabilities": [f"skill-{n}" for n in range(round(capabilities * 10))],
                "previous_attempts": round(attempts * 10), "available_resources": resources}
        decision = services.recommend(agent, TaskIn(**body))
        report = {"decision_id": decision["decision_id"], "task": body,
                  "result": {"success": bool(rng.random() < success_rate), "execution_time_ms": 2000, "errors": []}}
        services.report_execution(agent, ExecutionIn(**report), None, report)
