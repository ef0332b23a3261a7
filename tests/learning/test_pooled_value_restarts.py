"""A pooled value restarts when the world changes under it (engine.pooled_update),
and the SQL statement that writes it agrees with the engine."""

import pytest
from learning.core import engine
from learning.models import PooledValue, Strategy
from learning.services import pool_outcome
from qefleet.memory.fleet import register_agent


def _run(targets, row=(0.0, 0.0, 0, 0.0), **rule):
    for target in targets:
        row = engine.pooled_update(row, target, **rule)
    return row


def test_it_restarts_a_value_whose_outcomes_fall_well_below_their_mean():
    value, reference, current, _ = _run([1.4] * 30)
    assert current == 30 and value > 1.0 and reference == pytest.approx(1.4)
    # Each failure falls about 1.4 + 1.0 - slack 0.5 = 1.9 below the mean (which falls a little with it).
    row = _run([-1.0] * 4, (value, reference, current, 0.0))
    assert row[2] == 34 and -engine.SHORTFALL_LIMIT < row[3] < -7.0
    value, reference, current, shortfall = engine.pooled_update(row, -1.0)
    assert current == 1 and value == pytest.approx(engine.POOL_STEP * -1.0) and reference == -1.0
    assert shortfall == 0.0


def test_it_keeps_a_value_through_runs_of_failures_a_good_strategy_has():
    # Three failures in a row, which a strategy succeeding 85 % of the time
    # has about once in 300 outcomes, restarted a row under the value-based rule.
    row = _run([1.4] * 30)
    for target in [-1.0, -1.0, -1.0, 1.4, 1.4, -1.0, 1.4, 1.4, 1.4, -1.0, -1.0, 1.4]:
        row = engine.pooled_update(row, target)
    assert row[2] == 42


def test_the_reference_is_the_mean_of_at_most_the_last_span_outcomes():
    row = _run([1.0] * 10 + [0.0] * 10)
    assert row[1] == pytest.approx(0.5)
    row = _run([1.0] * 400)
    row = engine.pooled_update(row, 0.0)
    assert row[1] == pytest.approx(1.0 - 1.0 / engine.REFERENCE_SPAN)


def test_a_young_value_never_restarts():
    # A row with fewer than RESTART_AFTER visits is no evidence of what the strategy was worth.
    _, _, current, shortfall = _run([1.4] * 5 + [-1.0] * 4, limit=2.0)
    assert current == 9 and shortfall < -2.0


def test_a_shortfall_never_goes_above_0():
    assert _run([1.4] * 12)[3] == 0.0


def test_the_agent_yields_to_a_restarted_swarm_value():
    own = ([1.0, 0.2], [20, 20])
    restarted = ([-0.1, 0.3], [1, 40])
    values, visits = engine.backed_off(own, [restarted], prior=5)
    # The agent's 20 visits of the first action count as the swarm's 1 current one.
    assert values[0] == pytest.approx(1 / 6 * 1.0 + 5 / 6 * -0.1)
    assert values[1] == pytest.approx(20 / 25 * 0.2 + 5 / 25 * 0.3)
    # The ranking's bonus and the confidence count the swarm's current visits, which hold the agent's.
    assert list(visits) == [1, 40]


@pytest.mark.django_db
def test_the_sql_statement_applies_the_engines_rule():
    agent, _ = register_agent("restart-agent", "test-generator", team="t", swarm="restart-swarm")
    strategy, _ = Strategy.objects.get_or_create(name="restart-test", defaults={"parallelization": 0.5,
                                                                                "retry_policy": "fixed"})
    # Past the reference span, with a restart and outcomes after it.
    targets = [1.4] * 105 + [-1.0, 1.4, -1.0, -1.0, -1.0, -1.0, -1.0, 1.4, -1.0, 0.3]
    expected = (0.0, 0.0, 0, 0.0)
    for target in targets:
        pool_outcome(agent, "unit-tests", "0.5,0.6,0.0,0.9,1.0", strategy, target)
        expected = engine.pooled_update(expected, target)
    row = PooledValue.objects.get(abstract_key="0.5,0.6")
    assert row.visits == len(targets)
    assert row.current_visits == expected[2] < len(targets)
    assert row.value == pytest.approx(expected[0]) and row.reference == pytest.approx(expected[1])
    assert row.shortfall == pytest.approx(expected[3])
