"""Properties of the learning math over every input the API accepts.

The ranges mirror the request schemas (learning/schemas.py) and the config
bounds (engine.CONFIG_BOUNDS); the example count is fixed and the search
derandomized so CI sees the same examples on every run.
"""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.core import engine, scoring

REPRODUCIBLE = settings(max_examples=200, derandomize=True, deadline=None, database=None)

unit = st.floats(min_value=0.0, max_value=1.0)
optional_unit = st.none() | unit
execution_ms = st.integers(min_value=0, max_value=86_400_000)
list_length = st.integers(min_value=0, max_value=100)  # errors, issues and capabilities: max_length 100
attempts = st.integers(min_value=0, max_value=1000)
time_constraint = st.none() | st.integers(min_value=0, max_value=86_400_000)
learning_rate = st.floats(min_value=0.0, max_value=1.0, exclude_min=True)
discount_below_one = st.floats(min_value=0.0, max_value=0.99)
epsilon = st.floats(min_value=0.0, max_value=1.0)


@st.composite
def feedback(draw):
    """(rating, issue count): absent feedback counts no issues, as services.report_execution sends it."""
    rating = draw(optional_unit)
    return rating, (0 if rating is None else draw(list_length))


@REPRODUCIBLE
@given(success=st.booleans(), ms=execution_ms, errors=list_length, coverage=optional_unit, rated=feedback())
def test_it_keeps_every_reward_finite_and_within_the_limit(success, ms, errors, coverage, rated):
    rating, issues = rated
    value = scoring.reward(success, ms, errors, coverage, rating, issues)
    assert math.isfinite(value)
    assert -scoring.REWARD_LIMIT <= value <= scoring.REWARD_LIMIT


def rewards():
    return st.floats(min_value=-scoring.REWARD_LIMIT, max_value=scoring.REWARD_LIMIT)


@st.composite
def q_table_run(draw, discount):
    """A config, a starting table within the bound and a sequence of updates.

    Each update names a state and action of a small table and the next state
    whose best value bootstraps it, as services._learn reads them.
    """
    alpha = draw(learning_rate)
    gamma = draw(discount)
    bound = scoring.REWARD_LIMIT / (1 - gamma) if gamma < 1 else 1e6
    states, actions = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    start = draw(st.lists(st.floats(min_value=-bound, max_value=bound), min_size=states * actions,
                          max_size=states * actions))
    steps = draw(st.lists(st.tuples(st.integers(0, states - 1), st.integers(0, actions - 1),
                                    st.integers(0, states - 1), rewards()), max_size=60))
    return alpha, gamma, np.array(start).reshape(states, actions), steps


def run_updates(alpha, gamma, table, steps):
    for state, action, next_state, reward in steps:
        table[state, action] = engine.q_update(table[state, action], reward, table[next_state].max(), alpha, gamma)
    return table


@REPRODUCIBLE
@given(run=q_table_run(discount_below_one))
def test_it_keeps_q_values_within_the_discounted_reward_bound(run):
    alpha, gamma, table, steps = run
    bound = scoring.REWARD_LIMIT / (1 - gamma)
    table = run_updates(alpha, gamma, table, steps)
    assert np.isfinite(table).all()
    # A relative tolerance for the rounding of alpha * (r + gamma * max - q).
    assert (np.abs(table) <= bound * (1 + 1e-9)).all()


@REPRODUCIBLE
@given(run=q_table_run(st.just(1.0)))
def test_it_keeps_q_values_finite_without_discounting(run):
    # gamma = 1 is an allowed setting; no bound holds there, but every value stays a finite number.
    alpha, gamma, table, steps = run
    assert np.isfinite(run_updates(alpha, gamma, table, steps)).all()


@REPRODUCIBLE
@given(complexity=unit, capabilities=list_length, previous=attempts, resources=unit, time_ms=time_constraint)
def test_it_derives_the_same_state_key_on_the_grid_every_time(complexity, capabilities, previous, resources, time_ms):
    vector = engine.state_vector(complexity, capabilities, previous, resources, time_ms)
    key = engine.state_key(vector)
    assert key == engine.state_key(engine.state_vector(complexity, capabilities, previous, resources, time_ms))
    parsed = engine.parse_state_key(key)
    assert len(parsed) == 5
    assert all(0.0 <= part <= 1.0 and round(part * 10) == part * 10 for part in parsed)
    assert engine.state_key(parsed) == key


@REPRODUCIBLE
@given(q_values=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=12), epsilon=epsilon,
       seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_it_chooses_a_valid_action_with_a_valid_propensity(q_values, epsilon, seed):
    choice = engine.choose(q_values, epsilon, np.random.default_rng(seed))
    assert 0 <= choice.index < len(q_values)
    assert choice.greedy and all(q_values[i] == max(q_values) for i in choice.greedy)
    assert choice.explored or choice.index in choice.greedy
    assert 0.0 < choice.propensity <= 1.0 + 1e-12
