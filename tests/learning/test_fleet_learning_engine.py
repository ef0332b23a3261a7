"""The fleet-learning math: blend weights, back-off order, pooled means and
exploration per cell, on known answers."""

import numpy as np
import pytest

from learning.core import engine


def test_it_blends_the_agents_own_value_with_its_swarms_by_its_visits():
    own = ([1.0, 0.0], [5, 0])
    bucket = ([0.2, 0.6], [10, 4])
    values, visits = engine.backed_off(own, [bucket], prior=5)
    # Own weight 5 / (5 + 5) = 0.5 over the bucket's value; an action the agent never tried takes the bucket's.
    assert values == pytest.approx([0.5 * 1.0 + 0.5 * 0.2, 0.6])
    # The visits behind a blended value are the swarm's, which hold the agent's own.
    assert list(visits) == [10, 4]


def test_it_backs_off_to_the_task_type_only_where_the_bucket_knows_nothing():
    nothing = ([0.0, 0.0, 0.0], [0, 0, 0])
    task_type = ([0.4, 0.3, 0.2], [9, 9, 9])
    values, visits = engine.backed_off(nothing, [nothing, task_type])
    assert values == pytest.approx([0.4, 0.3, 0.2]) and list(visits) == [9, 9, 9]
    # A bucket with any visits is the swarm's value on its own: no blend with the task type, whose best
    # strategy is another bucket's; a strategy the bucket never saw is worth 0, the pooled mean's start.
    bucket = ([0.8, -0.5, 0.0], [1, 2, 0])
    values, visits = engine.backed_off(nothing, [bucket, task_type])
    assert values == pytest.approx([0.8, -0.5, 0.0]) and list(visits) == [1, 2, 0]


def test_an_untried_strategy_ranks_between_a_failing_and_a_succeeding_one():
    nothing = ([0.0, 0.0, 0.0], [0, 0, 0])
    bucket = ([engine.pooled_step(0.0, -0.9), 0.0, engine.pooled_step(0.0, 1.4)], [1, 0, 1])
    values, _ = engine.backed_off(nothing, [bucket])
    assert values[0] < values[1] < values[2]


def test_the_agents_own_values_stand_alone_where_its_swarm_knows_nothing():
    values, _ = engine.backed_off(([1.2, 0.3], [20, 20]), [([0.0, 0.0], [0, 0]), ([0.0, 0.0], [0, 0])])
    assert values == pytest.approx([1.2, 0.3])
    values, _ = engine.backed_off(([1.2, 0.3], [20, 20]), [])
    assert values == pytest.approx([1.2, 0.3])


def test_the_default_prior_weighs_the_agent_by_n_over_n_plus_5():
    values, _ = engine.backed_off(([1.0], [15]), [([0.0], [30]), ([0.0], [0])])
    assert engine.EVIDENCE_PRIOR == 5 and values == pytest.approx([15 / 20])
    assert engine.evidence_weight(15) == pytest.approx(0.75)


def test_the_pooled_levels_are_the_bucket_then_the_task_type():
    vector = engine.state_vector(0.5, 6, 0, 0.9)
    assert engine.abstract_keys(vector) == ("0.5,0.6", engine.TYPE_KEY)
    # Resources, attempts and time do not split the bucket.
    assert engine.abstract_keys(engine.state_vector(0.5, 6, 3, 0.5, 1000)) == ("0.5,0.6", "*")


def test_a_pooled_value_is_an_exponential_mean_from_0_with_step_0_1():
    assert engine.POOL_STEP == 0.1
    value = 0.0
    for target in [1.0, 0.0, 0.5]:
        value = engine.pooled_step(value, target)
    assert value == pytest.approx(0.1 * 0.9 * 0.9 * 1.0 + 0.1 * 0.5)
    # It follows the last outcomes: fifteen failures after fifty successes leave it nearer the failures.
    value = 0.0
    for target in [1.4] * 50 + [-0.9] * 15:
        value = engine.pooled_step(value, target)
    assert value < 0


def test_exploration_decays_by_0_9_per_visit_of_the_cell():
    assert engine.CELL_EXPLORATION_DECAY == 0.9
    assert engine.cell_epsilon(0.3, 0, 0.01) == pytest.approx(0.3)
    assert engine.cell_epsilon(0.3, 10, 0.01) == pytest.approx(0.3 * 0.9**10)
    assert engine.cell_epsilon(0.3, 60, 0.01) == pytest.approx(0.01)


def test_exploration_switched_off_stays_off_in_every_cell():
    assert engine.cell_epsilon(0.0, 0, 0.01) == 0.0


def test_the_q_update_is_unchanged_by_pooling():
    # The seed's formula: Q + alpha * (r + gamma * max Q(s') - Q).
    assert engine.q_update(0.5, 1.0, 0.2, 0.1, 0.95) == pytest.approx(0.5 + 0.1 * (1.0 + 0.95 * 0.2 - 0.5))
    assert np.isfinite(engine.q_update(0.0, 2.0, 0.0, 1.0, 0.0))


def test_the_greedy_ranking_adds_ucb1s_term_to_each_value():
    assert engine.EXPLORATION_BONUS == 0.5
    ranked = engine.optimistic([0.5, 0.4], [30, 2])
    assert ranked == pytest.approx([0.5 + 0.5 * np.sqrt(np.log(33) / 31), 0.4 + 0.5 * np.sqrt(np.log(33) / 3)])
    # A value with little evidence outranks a slightly better one with much; a clearly better one still wins.
    assert ranked[1] > ranked[0]
    assert engine.optimistic([1.0, 0.4], [30, 2])[0] > engine.optimistic([1.0, 0.4], [30, 2])[1]
