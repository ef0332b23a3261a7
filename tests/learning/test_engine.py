"""The pure learning math, including the golden values (docs/ARCHITECTURE.md)."""

import math

import numpy as np
import pytest

from learning.core import engine, scoring


def test_it_reproduces_the_golden_reward():
    value = scoring.reward(success=True, execution_time_ms=2350, error_count=0, coverage=0.9)
    assert value == pytest.approx(1.0 + 0.4608333 + 0 + 0.2, abs=1e-6)
    assert round(value, 2) == 1.66


def test_it_reproduces_the_golden_q_update():
    assert engine.q_update(0.85, 1.66, 0.92, 0.1, 0.95) == pytest.approx(1.0184, abs=1e-9)


def test_it_reproduces_the_golden_composite_score():
    # The golden normalised inputs: success .75, time .58, 1 - error rate .85, satisfaction .70, efficiency .50.
    assert scoring.composite_score(0.75, 0.58, 0.15, 0.70, 0.50) == pytest.approx(0.6935, abs=1e-9)


def test_it_reproduces_the_golden_exploration_decay():
    epsilon = 0.3
    for _ in range(100):
        epsilon = engine.decayed_epsilon(epsilon, 0.995, 0.01)
    assert epsilon == pytest.approx(0.18173, abs=1e-5)
    for _ in range(1000):
        epsilon = engine.decayed_epsilon(epsilon, 0.995, 0.01)
    assert epsilon == 0.01


def test_it_encodes_the_seed_state():
    vector = engine.state_vector(0.6, 1, 0, 0.8, None)
    assert engine.state_key(vector) == "0.6,0.1,0.0,0.8,1.0"


def test_state_features_are_capped_and_rounded():
    vector = engine.state_vector(1.7, 25, 40, -0.3, 150_000)
    assert vector == (1.0, 1.0, 1.0, 0.0, 0.5)
    assert engine.state_vector(0.25, 0, 0, 0.35, 1)[0::3] == (0.3, 0.4)


def test_the_next_state_adds_an_attempt_and_uses_fewer_resources():
    attempts, resources = engine.next_attempt(0, 0.8)
    assert engine.state_key(engine.state_vector(0.6, 1, attempts, resources)) == "0.6,0.1,0.1,0.7,1.0"


def test_reward_counts_coverage_and_feedback_only_when_given():
    base = scoring.reward(True, 0, 0)
    assert base == 1.5
    assert scoring.reward(True, 0, 0, coverage=0.5) == pytest.approx(0.9)
    assert scoring.reward(True, 0, 0, feedback_rating=1.0, feedback_issues=1) == 2.0  # clamped
    assert scoring.reward(False, 60_000, 30) == -2.0  # clamped
    assert scoring.reward(False, 0, 0, feedback_rating=0.5) == pytest.approx(-0.5)


def test_a_q_update_never_writes_a_non_finite_value():
    with pytest.raises(ValueError):
        engine.q_update(float("inf"), 1.0, 0.0, 0.1, 0.95)


def test_choose_exploits_without_exploration():
    rng = np.random.default_rng(1)
    choice = engine.choose([0.1, 0.9, 0.3], 0.0, rng)
    assert (choice.index, choice.explored, choice.propensity) == (1, False, 1.0)


def test_choose_really_explores_at_the_configured_rate():
    rng = np.random.default_rng(7)
    picks = [engine.choose([0.1, 0.9, 0.3, 0.2], 0.4, rng) for _ in range(4000)]
    explored = sum(choice.explored for choice in picks) / len(picks)
    assert explored == pytest.approx(0.4, abs=0.03)
    share_of_best = sum(choice.index == 1 for choice in picks) / len(picks)
    assert share_of_best == pytest.approx(0.6 + 0.4 / 4, abs=0.03)


def test_propensity_is_the_probability_of_the_pick():
    rng = np.random.default_rng(3)
    greedy = engine.choose([1.0, 1.0, 0.0, 0.0], 0.2, rng)
    for choice in [engine.choose([1.0, 1.0, 0.0, 0.0], 0.2, rng) for _ in range(50)]:
        expected = 0.2 / 4 + (0.8 / 2 if choice.index in (0, 1) else 0)
        assert choice.propensity == pytest.approx(expected)
    assert greedy.greedy == (0, 1)


def test_confidence_needs_evidence():
    assert engine.confidence(2.0, 0) == 0.5
    assert engine.confidence(2.0, 5) == pytest.approx(0.75)
    assert engine.confidence(-2.0, 95) == pytest.approx(0.025)
    assert 0.5 < engine.confidence(1.0, 1) < engine.confidence(1.0, 20) < 0.875


def test_expected_improvement_is_against_the_visit_weighted_average():
    assert engine.expected_improvement(1.0, [1.0, 0.0], [1, 3]) == pytest.approx((1.0 - 0.25) / 4)
    assert engine.expected_improvement(0.0, [1.0, 0.0], [0, 0]) == 0.0


def test_pattern_confidence_rises_only_with_success():
    assert engine.pattern_confidence(100, 100) == pytest.approx(0.95)
    assert engine.pattern_confidence(100, 0) == 0.0
    assert engine.pattern_confidence(100, 50) < 0.45
    assert engine.pattern_confidence(1, 1) < 0.5  # one success is weak evidence


def test_the_wilson_bound():
    assert engine.wilson_lower_bound(0, 0) == 0.0
    assert engine.wilson_lower_bound(8, 10) == pytest.approx(0.4902, abs=1e-4)


@pytest.mark.parametrize(
    "error_type,message,expected",
    [
        ("TimeoutError", "", "timeout"),
        ("Error", "Task timed out after 30s", "timeout"),
        ("RangeError", "JavaScript heap out of memory", "memory"),
        ("AssertionError", "expected 2 to equal 3", "validation"),
        ("Error", "connect ECONNREFUSED 127.0.0.1:5432", "network"),
        ("SyntaxError", "Unexpected token < in JSON", "parsing"),
        ("Error", "EACCES: permission denied", "permission"),
        ("Error", "something odd", "other"),
    ],
)
def test_it_classifies_failures(error_type, message, expected):
    assert engine.failure_class(error_type, message) == expected
    assert engine.MITIGATIONS[expected]


def test_the_score_renormalises_missing_components():
    assert scoring.composite_score(1.0, 1.0, 0.0) == pytest.approx(1.0)
    only_three = scoring.composite_score(0.5, 0.5, 0.5)
    assert only_three == pytest.approx(0.5)


def test_improvement_and_trend():
    assert scoring.improvement(0.72, 0.6) == pytest.approx(0.2)
    assert engine.trend([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(2.0)
    assert engine.trend([5], [1]) == 0.0


def test_neighbours_are_bounded_and_nearest_first():
    keys = engine.neighbour_keys((0.5, 0.5, 0.5, 0.5, 0.5))
    assert len(keys) == 10 + 10 + 40
    assert [distance for distance, _ in keys] == sorted(distance for distance, _ in keys)
    assert (1, "0.6,0.5,0.5,0.5,0.5") in keys
    corner = engine.neighbour_keys((0.0, 0.0, 0.0, 0.0, 0.0))
    assert all(not key.startswith("-") and "-" not in key for _, key in corner)


@pytest.mark.parametrize("field,value", [
    ("learning_rate", float("nan")), ("learning_rate", 0), ("discount_factor", 1.5),
    ("exploration_rate", "0.3"), ("max_experiences", 5), ("max_experiences", 10.5),
    ("exploration_decay", True),
])
def test_config_validation_names_the_field(field, value):
    config = dict(engine.DEFAULT_CONFIG, **{field: value})
    with pytest.raises(engine.ConfigError) as error:
        engine.validate_config(config)
    assert error.value.field == field


def test_config_validation_refuses_missing_and_unknown_keys():
    partial = dict(engine.DEFAULT_CONFIG)
    del partial["learning_rate"]
    with pytest.raises(engine.ConfigError, match="learning_rate: is missing"):
        engine.validate_config(partial)
    with pytest.raises(engine.ConfigError, match="alpha"):
        engine.validate_config(dict(engine.DEFAULT_CONFIG, alpha=0.1))
    assert engine.validate_config(engine.DEFAULT_CONFIG) == engine.DEFAULT_CONFIG
    assert math.isfinite(engine.validate_config(engine.DEFAULT_CONFIG)["learning_rate"])
