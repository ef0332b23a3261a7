"""The fleet-learning math: blend weights, back-off order, pooled means and
exploration per cell, on known answers."""

import numpy as np
import pytest

from learning.core import engine


def test_it_blends_the_agents_own_value_with_its_swarms_by_its_visits():
    own = ([1.0, 0.0], [5, 0])
    bucket = ([0.2, 0.6], [10, 4])
    values, visits = engine.backed_off([own, bucket], priors=(5, 1))
    # Own weight 5 / (5 + 5) = 0.5 over the bucket's value; an action the agent never tried takes the bucket's.
    assert values == pytest.approx([0.5 * 1.0 + 0.5 * 0.2, 0.6])
    assert list(visits) == [5, 4]


def test_it_backs_off_from_the_bucket_to_the_task_type():
    own = ([0.0, 0.0, 0.0], [0, 0, 0])
    bucket = ([0.8, 0.0, 0.0], [1, 0, 0])
    task_type = ([0.4, 0.3, 0.0], [9, 9, 0])
    values, visits = engine.backed_off([own, bucket, task_type], priors=(5, 1, 1))
    # The bucket's one visit weighs 1 / (1 + 1) against the task type; the task type alone where the bucket
    # has nothing; nothing known anywhere: 0.
    assert values == pytest.approx([0.5 * 0.8 + 0.5 * 0.4, 0.3, 0.0])
    assert list(visits) == [1, 9, 0]


def test_a_level_stands_alone_where_the_coarser_levels_know_nothing():
    values, _ = engine.backed_off([([1.2, 0.3], [20, 20]), ([0.0, 0.0], [0, 0]), ([0.0, 0.0], [0, 0])])
    assert values == pytest.approx([1.2, 0.3])


def test_the_default_priors_weigh_the_agent_by_n_over_n_plus_5():
    values, _ = engine.backed_off([([1.0], [15]), ([0.0], [3]), ([0.0], [0])])
    assert engine.LEVEL_PRIORS[0] == 5 and values == pytest.approx([15 / 20])
    assert engine.evidence_weight(15) == pytest.approx(0.75)


def test_the_pooled_levels_are_the_bucket_then_the_task_type():
    vector = engine.state_vector(0.5, 6, 0, 0.9)
    assert engine.abstract_keys(vector) == ("0.5,0.6", engine.TYPE_KEY)
    # Resources, attempts and time do not split the bucket.
    assert engine.abstract_keys(engine.state_vector(0.5, 6, 3, 0.5, 1000)) == ("0.5,0.6", "*")


def test_a_pooled_value_is_the_running_mean_then_forgets_with_step_one_over_memory():
    value = 0.0
    for visits, target in enumerate([1.0, 0.0, 0.5]):
        value = engine.pooled_step(value, target, visits, memory=50)
    assert value == pytest.approx(0.5)
    assert engine.pooled_step(0.5, 1.5, 80, memory=50) == pytest.approx(0.5 + 1.0 / 50)


def test_exploration_decays_by_0_97_per_visit_of_the_cell():
    assert engine.CELL_EXPLORATION_DECAY == 0.97
    assert engine.cell_epsilon(0.3, 0, 0.01) == pytest.approx(0.3)
    assert engine.cell_epsilon(0.3, 10, 0.01) == pytest.approx(0.3 * 0.97**10)
    assert engine.cell_epsilon(0.3, 500, 0.01) == pytest.approx(0.01)


def test_exploration_switched_off_stays_off_in_every_cell():
    assert engine.cell_epsilon(0.0, 0, 0.01) == 0.0


def test_the_q_update_is_unchanged_by_pooling():
    # The seed's formula: Q + alpha * (r + gamma * max Q(s') - Q).
    assert engine.q_update(0.5, 1.0, 0.2, 0.1, 0.95) == pytest.approx(0.5 + 0.1 * (1.0 + 0.95 * 0.2 - 0.5))
    assert np.isfinite(engine.q_update(0.0, 2.0, 0.0, 1.0, 0.0))
