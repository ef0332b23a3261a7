"""The A/B statistics: the design's golden scores, the intervals, the decision rule
and its error rates under repeated looks."""

import math

import numpy as np
import pytest

from learning.core import scoring, stats
from learning.core.stats import ArmStats


def arm(n, successes, mean_ms=2000.0, error_tasks=0):
    return ArmStats(n=n, successes=successes, total_ms=mean_ms * n, error_tasks=error_tasks)


def test_it_reproduces_the_golden_ab_scores():
    parallel = scoring.ab_score(0.94, 1825)
    sequential = scoring.ab_score(0.86, 2875)
    assert parallel == pytest.approx(0.93975, abs=1e-9)
    assert sequential == pytest.approx(0.87325, abs=1e-9)
    assert (parallel - sequential) / sequential == pytest.approx(0.076, abs=5e-4)


def test_arm_stats_report_rates_and_the_score():
    parallel = ArmStats(n=50, successes=47, total_ms=50 * 1825, error_tasks=2)
    assert parallel.to_dict() == {
        "n": 50, "success_rate": 0.94, "mean_ms": 1825.0, "error_rate": 0.04, "score": 0.93975,
    }


def test_an_empty_arm_does_not_divide_by_zero():
    empty = ArmStats(n=0, successes=0, total_ms=0.0, error_tasks=0)
    assert (empty.success_rate, empty.mean_ms, empty.error_rate) == (0.0, 0.0, 0.0)
    low, high = stats.sequential_interval(empty, arm(10, 5))
    assert (low, high) == (-1.0, 1.0)
    assert stats.sequential_p_value(empty, arm(10, 5)) == 1.0


def test_arm_stats_reject_impossible_counts():
    with pytest.raises(ValueError):
        ArmStats(n=10, successes=11, total_ms=0.0, error_tasks=0)


def test_samples_per_arm_follows_the_two_proportion_formula():
    z_alpha, z_power = 1.959964, 0.841621
    spread = z_alpha * math.sqrt(2 * 0.55 * 0.45) + z_power * math.sqrt(0.5 * 0.5 + 0.6 * 0.4)
    assert stats.samples_per_arm() == math.ceil(spread**2 / 0.01) == 388
    # Near 1 the treatment rate is mirrored below the base rate, which by symmetry needs as many.
    assert stats.samples_per_arm(base_rate=0.95) == stats.samples_per_arm(base_rate=0.05)


def test_samples_per_arm_never_goes_below_the_floor():
    assert stats.samples_per_arm(mde=0.4) == stats.MIN_SAMPLES
    assert stats.samples_per_arm(mde=0.4, floor=10) < stats.MIN_SAMPLES


@pytest.mark.parametrize(
    "arguments, words",
    [
        ({"mde": 0}, "mde"),
        ({"power": 1.0}, "power"),
        ({"alpha": 0}, "alpha"),
        ({"base_rate": 1.2}, "base_rate"),
        ({"mde": 0.7}, "too large"),
    ],
)
def test_samples_per_arm_rejects_bad_inputs(arguments, words):
    with pytest.raises(ValueError, match=words):
        stats.samples_per_arm(**arguments)


def test_both_intervals_contain_the_observed_difference_and_the_sequential_one_is_wider():
    control, treatment = arm(150, 120), arm(150, 135)
    observed = treatment.success_rate - control.success_rate
    fixed_low, fixed_high = stats.fixed_interval(control, treatment)
    sequential_low, sequential_high = stats.sequential_interval(control, treatment)
    assert fixed_low < observed < fixed_high
    assert sequential_low < fixed_low and fixed_high < sequential_high


def test_the_sequential_interval_shrinks_as_evidence_grows():
    widths = []
    for n in (20, 50, 100, 200, 400, 1000):
        low, high = stats.sequential_interval(arm(n, n // 2), arm(n, n // 2))
        widths.append(high - low)
    assert widths == sorted(widths, reverse=True)


def test_all_or_nothing_arms_still_get_a_real_interval():
    low, high = stats.fixed_interval(arm(30, 30), arm(30, 30))
    assert low < 0 < high
    low, high = stats.fixed_interval(arm(30, 0), arm(30, 30))
    assert 0 < low < high <= 1.0


def test_p_values_agree_with_their_intervals():
    for control, treatment in [(arm(200, 100), arm(200, 125)), (arm(200, 100), arm(200, 112))]:
        fixed_low, _ = stats.fixed_interval(control, treatment)
        assert (stats.fixed_p_value(control, treatment) < stats.ALPHA) == (fixed_low > 0)
        sequential_low, _ = stats.sequential_interval(control, treatment)
        assert (stats.sequential_p_value(control, treatment) < stats.ALPHA) == (sequential_low > 0)


def test_srm_flags_a_broken_split_and_passes_a_fair_one():
    assert stats.srm_p_value([600, 400], [0.5, 0.5]) < stats.SRM_P
    assert stats.srm_p_value([510, 490], [0.5, 0.5]) > 0.5
    assert stats.srm_p_value([0, 0], [1, 1]) == 1.0
    assert stats.srm_p_value([700, 300], [0.7, 0.3]) == 1.0


@pytest.mark.parametrize("x, df", [(3.841, 1), (5.991, 2), (7.815, 3), (9.488, 4), (18.307, 10)])
def test_chi_square_survival_matches_the_tables(x, df):
    assert stats._chi_square_sf(x, df) == pytest.approx(0.05, abs=1e-3)


def test_benjamini_hochberg_reproduces_the_papers_example():
    # Benjamini and Hochberg (1995), 15 p-values: four discoveries at q = 0.05.
    p_values = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
                0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000]
    assert stats.benjamini_hochberg(p_values) == [True] * 4 + [False] * 11
    # Answers come back in input order.
    assert stats.benjamini_hochberg([0.0459, 0.0001, 0.7590, 0.0095]) == [False, True, False, True]
    # Step-up: the largest passing rank rejects every smaller p, even those above their own line.
    assert stats.benjamini_hochberg([0.045, 0.01, 0.03, 0.04]) == [True] * 4
    assert stats.benjamini_hochberg([]) == []


def test_guardrails_name_slower_and_more_error_prone_treatments():
    control = arm(100, 80, mean_ms=2000, error_tasks=5)
    assert stats.guardrails(control, arm(100, 90, mean_ms=2150, error_tasks=9)) == []
    assert stats.guardrails(control, arm(100, 90, mean_ms=2300, error_tasks=5)) == ["time"]
    assert stats.guardrails(control, arm(100, 90, mean_ms=2300, error_tasks=12)) == ["time", "errors"]
    assert stats.guardrails(arm(0, 0), arm(100, 90, mean_ms=9000, error_tasks=50)) == []


def test_decide_keeps_running_while_the_sequence_crosses_zero():
    verdict = stats.decide(arm(80, 40), arm(80, 48), horizon=260)
    assert (verdict.outcome, verdict.sequential, verdict.blocked_by) == ("running", True, ())
    assert verdict.interval[0] < 0 < verdict.interval[1]
    assert "n = 80 of 260" in verdict.reason and verdict.reason.startswith("running")


def test_a_decisions_bound_that_rounds_to_zero_reads_plus_zero(monkeypatch):
    monkeypatch.setattr(stats, "_judge", lambda *counts: (0, -0.000004, 0.2))  # "running", low, high
    assert "always-valid interval +0.0 to +20.0 crosses zero" in stats.decide(arm(80, 40), arm(80, 48), 260).reason


def test_decide_stops_early_only_on_overwhelming_evidence():
    verdict = stats.decide(arm(120, 60), arm(120, 100), horizon=260)
    assert (verdict.outcome, verdict.sequential) == ("winner", True)
    assert verdict.interval[0] > 0 and verdict.p_value < stats.ALPHA
    assert "+33.3 points" in verdict.reason and "n = 120 of 260" in verdict.reason

    verdict = stats.decide(arm(120, 100), arm(120, 60), horizon=260)
    assert verdict.outcome == "loser" and verdict.interval[1] < 0
    assert verdict.reason.startswith("loser: treatment -33.3 points")


def test_decide_uses_the_fixed_interval_at_the_horizon():
    winner = stats.decide(arm(260, 130), arm(260, 160), horizon=260)
    assert (winner.outcome, winner.sequential) == ("winner", False)
    assert winner.p_value == stats.fixed_p_value(arm(260, 130), arm(260, 160))
    assert "n = 260 of 260" in winner.reason

    inconclusive = stats.decide(arm(260, 130), arm(260, 138), horizon=260)
    assert inconclusive.outcome == "inconclusive"
    assert "n = 260 of 260" in inconclusive.reason and "crosses zero" in inconclusive.reason

    assert stats.decide(arm(260, 160), arm(260, 130), horizon=260).outcome == "loser"


@pytest.mark.parametrize("control, treatment", [(arm(100, 50), arm(60, 30)), (arm(60, 30), arm(100, 50))])
def test_decide_reaches_the_horizon_only_when_both_arms_reach_it(control, treatment):
    verdict = stats.decide(control, treatment, horizon=100)
    assert (verdict.outcome, verdict.sequential) == ("running", True)
    assert "n = 60 of 100" in verdict.reason


def test_the_earlier_running_minimum_carries_into_the_p_value():
    verdict = stats.decide(arm(80, 40), arm(80, 48), horizon=260, previous_p=0.2)
    assert verdict.p_value == 0.2


def test_a_winner_that_breaks_a_guardrail_is_blocked():
    verdict = stats.decide(arm(260, 130, mean_ms=2000), arm(260, 170, mean_ms=2600), horizon=260)
    assert verdict.outcome == "winner"
    assert verdict.blocked_by == ("time",)
    assert verdict.reason.startswith("winner: treatment +15.4 points (interval")


@pytest.mark.parametrize("rate", [0.8, 0.5])
def test_identical_strategies_rarely_produce_a_winner_under_repeated_looks(rate):
    assert stats.simulate_false_winners(rate=rate, look_every=20, trials=1000, seed=3) <= stats.ALPHA


def test_a_twenty_point_improvement_is_found_at_the_default_horizon():
    assert stats.simulate_power(0.20, trials=1000, seed=3) > 0.9


def test_off_policy_value_undoes_the_selection_of_a_logged_policy():
    # The logging policy took action A with probability 0.9 where A succeeds
    # (state 1) and 0.1 where it fails (state 2); both states are equally
    # common, so always taking A would succeed half the time, although A
    # succeeded in 90 % of the logged tasks that took it.
    rng = np.random.default_rng(0)
    state = rng.random(20_000) < 0.5
    p_a = np.where(state, 0.9, 0.1)
    took_a = rng.random(20_000) < p_a
    success = took_a & state
    propensity = np.where(took_a, p_a, 1 - p_a)
    assert success[took_a].mean() == pytest.approx(0.9, abs=0.02)
    estimate, effective = stats.off_policy_value(took_a, success, propensity)
    assert estimate == pytest.approx(0.5, abs=0.03)
    assert 0 < effective < took_a.sum()


def test_off_policy_value_without_the_action_is_unknown():
    assert stats.off_policy_value([False, False], [1, 0], [0.5, 0.5]) == (None, 0.0)


def test_a_rate_fell_only_when_the_interval_for_the_drop_clears_zero():
    assert stats.rate_fell(6, 6, 0, 50)
    assert not stats.rate_fell(38, 100, 18, 50)  # 38 % to 36 %: within chance
    assert not stats.rate_fell(10, 100, 20, 100)  # it rose
    assert stats.rate_fell(40, 100, 10, 100)
