"""The drills' math (learning/core/drills.py) on cases whose answer is known."""

import numpy as np
import pytest

from learning.core import drills, stats

RULE = drills.Rule()


def test_wilson_matches_the_textbook_interval():
    low, high = drills.wilson(5, 100)
    assert low == pytest.approx(0.02154, abs=1e-4)
    assert high == pytest.approx(0.11175, abs=1e-4)
    assert drills.wilson(0, 0) == (0.0, 1.0)
    assert drills.wilson(0, 50)[0] == pytest.approx(0.0, abs=1e-12)


def test_a_block_bootstrap_lays_whole_stretches_of_the_log_end_to_end():
    log = np.arange(1000, dtype=float)
    streams = drills.block_streams(log, runs=4, length=120, rng=np.random.default_rng(0), block=50)
    assert streams.shape == (4, 120)
    for stream in streams:
        for start in (0, 50, 100):
            stretch = stream[start : start + 50]
            assert np.all(np.diff(stretch) == 1)  # consecutive logged tasks


def test_the_action_comes_on_each_third_degraded_check_in_a_row():
    states = np.array([[2, 2, 2, 2, 2, 2, 0, 2, 2, 1, 2, 2, 2]])
    fired = drills.actions(states, consecutive=3)
    assert np.flatnonzero(fired[0]).tolist() == [2, 5, 12]


def test_window_states_judge_exactly_as_the_safeguards_scalar_rule():
    rng = np.random.default_rng(3)
    streams = rng.uniform(0.4, 1.0, size=(5, 100))
    ends = np.broadcast_to(drills.check_positions(RULE, 100), (5, 9))
    reference, spread = np.full(5, 0.75), np.full(5, 0.01)
    codes = drills.window_states(streams, ends, reference, spread, RULE)
    for run in range(5):
        for check, end in enumerate(ends[run]):
            state, _ = stats.judge(streams[run, end - RULE.window : end], 0.75, 0.01, RULE.threshold_pct, RULE.z)
            assert stats.STATE_CODES[codes[run, check]] == state


def test_the_aa_drill_is_the_real_decision_rules_false_winner_share():
    successes = (np.arange(1000) % 5 != 0).astype(float)  # 80 % success
    result = drills.aa_drill(successes, tasks_per_look=10, runs=2000, seed=7)
    horizon = stats.samples_per_arm(base_rate=0.8)
    expected = stats.simulate_false_winners(rate=0.8, horizon=horizon, look_every=10, trials=2000, seed=7)
    assert result["rate"] == pytest.approx(expected)
    assert result["horizon"] == horizon and result["runs"] == 2000
    assert result["low"] <= result["rate"] <= result["high"] <= stats.ALPHA + 0.02


def test_a_look_every_ten_tasks_keeps_aa_verdicts_within_a_point_of_the_two_sided_level():
    """The rule is a two-sided test at 5 %: the fixed look alone ends 5 % of
    A/A tests in a verdict, half of them winners; the always-valid early
    looks add about half a point, not the 5 points a union bound allows."""
    successes = (np.arange(1000) % 10 < 7).astype(float)  # 70 % success
    result = drills.aa_drill(successes, tasks_per_look=10, runs=4000, seed=3)
    assert abs(result["verdicts"]["rate"] - stats.ALPHA) <= 0.01
    assert 0.4 <= result["rate"] / result["verdicts"]["rate"] <= 0.6  # a winner is one side of two
    assert result["verdicts"]["hits"] >= result["hits"]


def test_the_cusum_adds_each_tasks_shortfall_below_the_reference_and_never_goes_below_zero():
    streams = np.array([[0.8, 0.5, 0.5, 0.9, 0.2]])
    paths = drills.cusum_paths(streams, reference=np.array([0.8]), slack=0.05)
    assert paths[0] == pytest.approx([0.0, 0.25, 0.5, 0.35, 0.9])


def test_the_fastest_rule_never_acts_on_its_stable_draws_and_beats_the_window_rule():
    """Gaussian scores with a spread of 0.27, the simulated fleet's: the
    window rule catches few 10-point drops within 60 tasks; the CUSUM,
    tuned to act on none of the stable draws, catches more, sooner, and
    still not 95 % of them: the target is out of reach at this noise."""
    scores = np.clip(np.random.default_rng(8).normal(0.68, 0.27, size=1000), -1, 2)
    stable = drills.stable_draws(scores, runs=20, seed=1)
    drops = [(10, drills.drop_draws(scores, RULE, 10, runs=200, seed=2))]
    own = drills.drop_result(drops[0][1], RULE, 10)
    fastest = drills.fastest_rule(stable, drops)
    best = fastest["drops"][0]
    assert (drills.cusum_paths(stable.streams, stable.reference, 0.05) > best["threshold"]).sum() == 0
    assert best["points"] == 10 and best["missed"]["rate"] < own["missed"]["rate"]
    assert best["within"]["rate"] > own["within"]["rate"] and best["within"]["high"] < 0.95


def test_a_steady_agent_has_no_false_rollbacks():
    scores = np.random.default_rng(1).normal(0.8, 0.02, size=1000)
    result = drills.stable_drill(scores, RULE, runs=10, seed=2)
    assert result["rollbacks"] == 0 and result["runs_with_rollback"]["hits"] == 0
    assert result["tasks"] == 10 * drills.STABLE_TASKS


def test_a_log_that_drifts_shows_as_false_rollbacks():
    """The first half of the log at 0.9, the second at 0.6: windows from the
    low half judged against a reference drawn partly from the high half roll
    back (only a reference drawn wholly from the low half stays quiet)."""
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(0.9, 0.02, 500), rng.normal(0.6, 0.02, 500)])
    result = drills.stable_drill(scores, RULE, runs=10, seed=2)
    assert result["runs_with_rollback"]["hits"] >= 6 and result["per_1000_tasks"] > 1


def test_a_clear_drop_on_a_quiet_agent_is_acted_on_after_three_checks():
    """Scores constant at 0.8 fall by 0.2. A window with k of its 20 tasks
    after the drop has mean 0.8 - 0.01 k and standard error 0.2 sqrt(p (1 - p)
    / 19), p = k / 20: degraded (under the 0.76 line by 1.96 of them) from
    k = 9 on. The first check with 9 dropped tasks, and two more 10 tasks
    apart, make the delay 29 (9 dropped at the first check) to 38 (8, so the
    next check is the first)."""
    scores = np.full(1000, 0.8)
    result = drills.drop_drill(scores, RULE, points=20, runs=200, seed=5)
    assert result["missed"]["hits"] == 0
    assert min(result["delays"]) == 29 and max(result["delays"]) == 38
    assert result["within"]["hits"] == 200
    assert result["nominal"] == 40


def test_a_drop_inside_the_threshold_is_never_acted_on():
    scores = np.full(1000, 0.8)
    result = drills.drop_drill(scores, RULE, points=2, runs=50, seed=5)  # 2.5 % under a 5 % threshold
    assert result["missed"]["hits"] == 50 and result["median"] is None


def test_the_same_seed_gives_the_same_figures():
    scores = np.random.default_rng(4).normal(0.7, 0.1, 500)
    successes = (scores > 0.65).astype(float)
    first = drills.run_drills(successes, scores, 5, RULE, seed=11, aa_runs=50, stable_runs=2, drop_runs=20)
    assert first == drills.run_drills(successes, scores, 5, RULE, seed=11, aa_runs=50, stable_runs=2, drop_runs=20)


def test_calibration_keeps_a_rule_that_meets_its_targets():
    scores = np.random.default_rng(2).normal(0.8, 0.01, size=1000)
    proposal = drills.calibrate(scores, RULE, seed=1, stable_runs=2, drop_runs=40)
    assert proposal["meets"] and not proposal["changed"]
    assert proposal["rule"] == {"check_every": 10, "window": 20, "threshold_pct": 5.0, "z": 1.96, "consecutive": 3}


def test_calibration_quiets_a_noisy_agent():
    """Scores with a spread of 0.2: a 20-task window warns on about a quarter
    of stable checks; the proposal has a longer window or a larger z and no
    false rollback in its drills."""
    scores = np.clip(np.random.default_rng(3).normal(0.7, 0.2, size=1000), 0, 1)
    assert drills.stable_drill(scores, RULE, runs=5, seed=1)["warnings"]["rate"] > 0.2
    proposal = drills.calibrate(scores, RULE, seed=1, stable_runs=5, drop_runs=40)
    assert proposal["changed"] and proposal["stable_rollbacks"] == 0
    assert proposal["warnings"]["rate"] < 0.2
