"""Concurrent reports for one agent, state and action lose no update."""

import pytest

from learning.core import engine
from learning.models import Execution, LearningProfile, PooledValue, QEntry
from tests.conftest import AgentClient
from tests.helpers import run_in_threads
from tests.learning.helpers import task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("strategy_catalog")]

THREADS = 6
REPORTS_EACH = 8
ACTION = {"strategy": "adaptive-retry", "parallelization": 0.5, "retry_policy": "adaptive"}


def test_concurrent_reports_all_count(alice):
    body_task = task()

    def work(thread):
        client = AgentClient(alice.token)
        statuses = []
        for number in range(REPORTS_EACH):
            body = {"task": body_task, "action": ACTION,
                    "result": {"success": True, "execution_time_ms": 1000, "errors": []}}
            response = client.post("agents/alice/executions", body,
                                   headers={"Idempotency-Key": f"{thread}-{number}"})
            statuses.append(response.status_code)
        return statuses

    statuses = [status for batch in run_in_threads(THREADS, work) for status in batch]
    total = THREADS * REPORTS_EACH
    assert statuses == [201] * total
    entry = QEntry.objects.get(agent=alice)
    assert entry.visits == total == Execution.objects.count()
    assert LearningProfile.objects.get(agent=alice).task_count == total
    # The swarm's pooled rows (bucket and task type) took every outcome too.
    assert sorted(PooledValue.objects.values_list("abstract_key", "visits")) == [(engine.TYPE_KEY, total),
                                                                                ("0.6,0.1", total)]
    assert sorted(Execution.objects.values_list("sequence", flat=True)) == list(range(1, total + 1))
    # Each report saw the previous one's Q-value: the chain of updates is unbroken.
    chain = sorted(Execution.objects.values_list("previous_q", "q_value"))
    assert all(after == pytest.approx(before) for (_, after), (before, _) in zip(chain, chain[1:]))


def test_agents_of_a_swarm_reporting_at_once_lose_no_pooled_update(alice, bob, carol):
    """Three agents, each serialised on its own profile only, write the same
    pooled rows at once: every outcome is counted, and the value is the
    exponential mean from 0 after exactly that many identical rewards (one
    update lost would leave it a step short)."""
    body_task = task()

    def work(thread):
        agent = (alice, bob, carol)[thread % 3]
        client = AgentClient(agent.token)
        statuses = []
        for number in range(REPORTS_EACH):
            body = {"task": body_task, "action": ACTION,
                    "result": {"success": True, "execution_time_ms": 1000, "errors": []}}
            response = client.post(f"agents/{agent.agent_id}/executions", body,
                                   headers={"Idempotency-Key": f"{thread}-{number}"})
            statuses.append(response.status_code)
        return statuses

    statuses = [status for batch in run_in_threads(THREADS, work) for status in batch]
    total = THREADS * REPORTS_EACH
    assert statuses == [201] * total
    rows = list(PooledValue.objects.values_list("abstract_key", "visits", "value"))
    assert sorted(key for key, _, _ in rows) == [engine.TYPE_KEY, "0.6,0.1"]
    reward = Execution.objects.values_list("reward", flat=True).first()
    for _, visits, value in rows:
        assert visits == total and value == pytest.approx(reward * (1 - (1 - engine.POOL_STEP) ** total))
