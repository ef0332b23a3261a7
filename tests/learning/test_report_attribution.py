"""Attribution (learning/core/report_math.py, no Django): an applied strategy's
A/B test effect times the share of the agent's tasks it served, and what is
left for other causes."""

import pytest

from learning.core.report_math import attribute, remainder


def test_it_multiplies_the_effect_and_its_interval_by_the_share_of_all_tasks():
    share = attribute(0.20, 0.08, 0.32, served=6, type_tasks=8, all_tasks=10)
    assert (share.share_of_type, share.share_of_all) == pytest.approx((0.75, 0.6))
    assert (share.points, share.low, share.high) == pytest.approx((0.12, 0.048, 0.192))


def test_it_credits_a_strategy_that_served_every_task_with_its_whole_effect():
    share = attribute(0.05, -0.01, 0.11, served=40, type_tasks=40, all_tasks=40)
    assert (share.points, share.low, share.high) == pytest.approx((0.05, -0.01, 0.11))


def test_it_credits_nothing_without_a_measured_effect_or_tasks():
    assert attribute(None, None, None, served=5, type_tasks=5, all_tasks=10).points is None
    assert attribute(0.1, 0.0, 0.2, served=5, type_tasks=5, all_tasks=10).share_of_all == 0.5
    empty = attribute(0.1, 0.0, 0.2, served=0, type_tasks=0, all_tasks=0)
    assert (empty.share_of_type, empty.share_of_all, empty.points) == (None, None, None)


def test_it_leaves_the_unattributed_change_to_other_causes():
    assert remainder(0.05, [0.12, None, -0.01]) == pytest.approx((0.11, -0.06))
    assert remainder(0.05, []) == (0, 0.05)
    assert remainder(None, [0.02]) == (0.02, None)
