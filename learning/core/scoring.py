"""How a task and a window of tasks are scored, and the Q-learning reward:
each formula once, no Django.

The request path scores one task at a time (the scalar forms: plain floats,
no numpy overhead per call); the harness scores arrays of tasks (the `*s`
forms beside each). tests/learning/test_scoring.py holds each pair equal on
random inputs, so a change to a weight is a change in one place. In the
array forms NaN means "not reported", as None does in the scalar forms.
"""

import numpy as np

REWARD_LIMIT = 2.0
TIME_SCALE_MS = 30_000
SCORE_WEIGHTS = {"success": 0.30, "time": 0.20, "errors": 0.15, "satisfaction": 0.25, "efficiency": 0.10}
OPTIONAL_PARTS = ("satisfaction", "efficiency")  # weights renormalised over the parts reported


# --- time ---------------------------------------------------------------------------


def time_score(execution_time_ms):
    """Execution time normalised to [0, 1]: 1 at 0 ms, 0 at 30 s or more."""
    return max(0.0, 1.0 - execution_time_ms / TIME_SCALE_MS)


def time_scores(execution_time_ms):
    return np.maximum(0.0, 1.0 - np.asarray(execution_time_ms, dtype=float) / TIME_SCALE_MS)


# --- the reward ---------------------------------------------------------------------


def reward(success, execution_time_ms, error_count, coverage=None, feedback_rating=None, feedback_issues=0):
    """The design's reward, clamped to [-2, 2]. Coverage and feedback terms
    count only when they were reported."""
    value = (1.0 if success else -1.0) + 0.5 * time_score(execution_time_ms) - 0.1 * error_count
    if coverage is not None:
        value += 2.0 * (coverage - 0.8)
    if feedback_rating is not None:
        value += 2.0 * (feedback_rating - 0.5) - 0.2 * feedback_issues
    return min(REWARD_LIMIT, max(-REWARD_LIMIT, value))


def rewards(success, execution_time_ms, error_count, coverage, feedback_rating=None, feedback_issues=None):
    """`reward` over arrays of tasks (NaN coverage or rating: not reported)."""
    value = np.where(success, 1.0, -1.0) + 0.5 * time_scores(execution_time_ms) - 0.1 * np.asarray(error_count)
    value = value + np.nan_to_num(2.0 * (np.asarray(coverage, dtype=float) - 0.8))
    if feedback_rating is not None:
        rated = ~np.isnan(feedback_rating)
        value = value + np.where(rated, 2.0 * (np.nan_to_num(feedback_rating) - 0.5)
                                 - 0.2 * np.asarray(feedback_issues), 0.0)
    return np.clip(value, -REWARD_LIMIT, REWARD_LIMIT)


# --- the composite score ------------------------------------------------------------


def composite_score(success_rate, time_component, error_rate, satisfaction=None, efficiency=None):
    """The design's weighted score over the components present (weights
    renormalised when satisfaction or efficiency were never reported)."""
    parts = {"success": success_rate, "time": time_component, "errors": 1.0 - error_rate}
    if satisfaction is not None:
        parts["satisfaction"] = satisfaction
    if efficiency is not None:
        parts["efficiency"] = efficiency
    total = sum(SCORE_WEIGHTS[name] for name in parts)
    return sum(SCORE_WEIGHTS[name] * value for name, value in parts.items()) / total


def composite_scores(success_rate, time_component, error_rate, satisfaction, efficiency):
    """`composite_score` over arrays (NaN satisfaction or efficiency: not reported)."""
    total = (SCORE_WEIGHTS["success"] * np.asarray(success_rate, dtype=float)
             + SCORE_WEIGHTS["time"] * np.asarray(time_component, dtype=float)
             + SCORE_WEIGHTS["errors"] * (1.0 - np.asarray(error_rate, dtype=float)))
    weight = np.full(total.shape, SCORE_WEIGHTS["success"] + SCORE_WEIGHTS["time"] + SCORE_WEIGHTS["errors"])
    for name, values in zip(OPTIONAL_PARTS, (satisfaction, efficiency)):
        present = ~np.isnan(values)
        total = total + np.where(present, SCORE_WEIGHTS[name] * np.nan_to_num(values), 0.0)
        weight = weight + present * SCORE_WEIGHTS[name]
    return total / weight


# --- one task's score ---------------------------------------------------------------


def task_score(success, execution_time_ms, error_count, satisfaction, efficiency):
    """The composite score of a single task: the safeguard's and the
    performance sample's per-task figure."""
    return composite_score(float(success), time_score(execution_time_ms), float(error_count > 0), satisfaction,
                           efficiency)


def task_scores(success, execution_time_ms, error_count, satisfaction, efficiency):
    return composite_scores(np.asarray(success, dtype=float), time_scores(execution_time_ms),
                            (np.asarray(error_count) > 0).astype(float), satisfaction, efficiency)


# --- comparisons --------------------------------------------------------------------


def improvement(current, baseline):
    """Relative change of the score against the baseline (0.2 = +20 %)."""
    if baseline <= 0:
        return 0.0
    return (current - baseline) / baseline


def ab_score(success_rate, avg_ms):
    """The design's A/B arm score: 0.7 x success rate + 0.3 x time score
    (reported per arm, never what decides a test)."""
    return 0.7 * success_rate + 0.3 * time_score(avg_ms)
