"""learning.core.scoring: each array form agrees with its scalar form, so the
harness and the request path score and reward tasks alike."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.core import scoring

TASKS = 50
optional_fraction = st.one_of(st.none(), st.floats(0.0, 1.0))


def as_array(values):
    return np.array([math.nan if value is None else value for value in values], dtype=float)


tasks = st.lists(st.tuples(st.booleans(), st.floats(0, 120_000), st.integers(0, 40), optional_fraction,
                           optional_fraction, optional_fraction, optional_fraction, st.integers(0, 5)),
                 min_size=1, max_size=TASKS)


@settings(max_examples=200, deadline=None)
@given(tasks)
def test_it_scores_arrays_of_tasks_as_it_scores_one(rows):
    success, ms, errors, satisfaction, efficiency, *_ = zip(*rows)
    scores = scoring.task_scores(np.array(success), np.array(ms), np.array(errors), as_array(satisfaction),
                                 as_array(efficiency))
    expected = [scoring.task_score(*row[:5]) for row in rows]
    assert scores.tolist() == pytest.approx(expected, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(tasks)
def test_it_rewards_arrays_of_tasks_as_it_rewards_one(rows):
    success, ms, errors, _, _, coverage, rating, issues = zip(*rows)
    rewards = scoring.rewards(np.array(success), np.array(ms), np.array(errors), as_array(coverage),
                              as_array(rating), np.array(issues))
    expected = [scoring.reward(s, t, e, c, r, i) for s, t, e, _, _, c, r, i in rows]
    assert rewards.tolist() == pytest.approx(expected, abs=1e-12)


def test_it_rewards_without_feedback_when_none_is_given():
    rewards = scoring.rewards(np.array([True, False]), np.array([0.0, 15_000.0]), np.array([0, 2]),
                              np.array([math.nan, 0.9]))
    assert rewards.tolist() == pytest.approx([scoring.reward(True, 0, 0), scoring.reward(False, 15_000, 2, 0.9)])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), optional_fraction, optional_fraction),
                min_size=1, max_size=TASKS))
def test_it_scores_arrays_of_windows_as_it_scores_one(rows):
    success, time, errors, satisfaction, efficiency = zip(*rows)
    scores = scoring.composite_scores(np.array(success), np.array(time), np.array(errors), as_array(satisfaction),
                                      as_array(efficiency))
    assert scores.tolist() == pytest.approx([scoring.composite_score(*row) for row in rows], abs=1e-12)


def test_a_weight_changed_in_one_place_changes_both_forms(monkeypatch):
    monkeypatch.setitem(scoring.SCORE_WEIGHTS, "success", 0.9)
    one = scoring.task_score(True, 30_000, 1, None, None)  # only the success part scores
    many = scoring.task_scores(np.array([True]), np.array([30_000.0]), np.array([1]), as_array([None]),
                               as_array([None]))
    assert one == pytest.approx(many[0]) == pytest.approx(0.9 / (0.9 + 0.20 + 0.15))
