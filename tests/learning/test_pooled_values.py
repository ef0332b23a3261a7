"""A swarm pools its agents' outcomes, and an agent's new state borrows from the pool."""

import pytest

from learning.core import engine
from learning.models import Decision, LearningProfile, PooledValue, Strategy
from tests.conftest import make_agent
from tests.learning.helpers import no_exploration, recommend, run_task

pytestmark = pytest.mark.django_db


def test_a_report_counts_its_outcome_at_the_bucket_and_the_task_type(alice):
    decision, execution = run_task(alice, complexity=0.5, required_capabilities=["a"] * 6)
    rows = {row.abstract_key: row for row in PooledValue.objects.all()}
    assert set(rows) == {"0.5,0.6", engine.TYPE_KEY}
    for row in rows.values():
        assert row.visits == 1 and row.strategy.name == decision["strategy"] and row.task_type == "unit-tests"
        # The first outcome moves the row from 0 by one step towards its target: the reward (the next state
        # is unvisited, so gamma * max Q(s') = 0).
        assert row.value == pytest.approx(engine.POOL_STEP * execution["reward"])


def test_the_pool_is_the_swarms(alice, bob):
    run_task(alice)
    run_task(bob)
    assert alice.swarm == bob.swarm
    assert PooledValue.objects.filter(abstract_key=engine.TYPE_KEY).values("swarm").distinct().count() == 1
    assert sum(PooledValue.objects.filter(abstract_key=engine.TYPE_KEY).values_list("visits", flat=True)) == 2


def pooled(agent, strategy_name, value, visits, key="0.6,0.1", task_type="unit-tests"):
    PooledValue.objects.create(swarm=agent.swarm, task_type=task_type, abstract_key=key,
                               strategy=Strategy.objects.get(name=strategy_name), value=value, visits=visits,
                               current_visits=visits)


def test_an_unseen_state_borrows_the_swarms_bucket_instead_of_the_default(alice):
    no_exploration(alice)
    pooled(alice, "resource-optimization", 1.1, 12)
    pooled(alice, "parallel-execution", 0.2, 12)
    body = recommend(alice)
    assert body["strategy"] == "resource-optimization"
    assert Decision.objects.get(pk=body["decision_id"]).fallback == "pooled"
    assert "swarm" in body["reasoning"] and "1.100" in body["reasoning"]


def test_an_unseen_bucket_backs_off_to_the_task_type(alice):
    no_exploration(alice)
    pooled(alice, "adaptive-retry", 0.9, 30, key=engine.TYPE_KEY)
    body = recommend(alice)
    assert body["strategy"] == "adaptive-retry"
    assert Decision.objects.get(pk=body["decision_id"]).fallback == "pooled-type"


def test_another_swarms_pool_is_not_read(alice):
    no_exploration(alice)
    PooledValue.objects.create(swarm="elsewhere", task_type="unit-tests", abstract_key="0.6,0.1",
                               strategy=Strategy.objects.get(name="resource-optimization"), value=1.5, visits=50)
    body = recommend(alice)
    assert Decision.objects.get(pk=body["decision_id"]).fallback == "default"


def test_an_agent_that_does_not_import_learns_alone(alice):
    no_exploration(alice)
    LearningProfile.objects.filter(agent=alice).update(imports_patterns=False)
    pooled(alice, "resource-optimization", 1.1, 12)
    body = recommend(alice)
    assert Decision.objects.get(pk=body["decision_id"]).fallback == "default"


def test_exploration_shrinks_with_the_cells_pooled_visits(alice):
    pooled(alice, "parallel-execution", 0.5, 40)
    body = recommend(alice)
    profile = LearningProfile.objects.get(agent=alice)
    expected = engine.cell_epsilon(profile.exploration_rate, 40, profile.min_exploration_rate)
    assert Decision.objects.get(pk=body["decision_id"]).epsilon == pytest.approx(expected)


def test_an_agent_without_a_swarm_pools_alone(db):
    loner = make_agent("loner", "core")
    run_task(loner)
    assert set(PooledValue.objects.values_list("swarm", flat=True)) == {f"agent:{loner.pk}"}
