"""offline.compare_with_reference: a learned policy against an agent's own
deterministic choices, with a reward model that borrows a reference log
where other strategies were tried (shadow mode's estimate)."""

import numpy as np
import pytest

from learning.core import offline

CONTEXTS, ACTIONS = 4, 3
TRUTH = np.array([[0.5, 0.8, 0.3], [0.6, 0.9, 0.2], [0.4, 0.7, 0.5], [0.5, 0.6, 0.9]])


def logged(n, choose, seed):
    rng = np.random.default_rng(seed)
    contexts = rng.integers(CONTEXTS, size=n)
    actions = choose(contexts, rng)
    rewards = (rng.random(n) < TRUTH[contexts, actions]).astype(float)
    return contexts, actions, rewards


def case(n=400, reference_n=3000, seed=0):
    """The agent always runs action 0 (propensity 1); the reference log chose uniformly."""
    contexts, actions, rewards = logged(n, lambda c, rng: np.zeros(len(c), dtype=int), seed)
    logs = offline.Logs.build(contexts, actions, np.ones(n), rewards, CONTEXTS, ACTIONS)
    ref_c, ref_a, ref_r = logged(reference_n, lambda c, rng: rng.integers(ACTIONS, size=len(c)), seed + 1)
    reference = offline.Logs.build(ref_c, ref_a, np.full(reference_n, 1 / ACTIONS), ref_r, CONTEXTS, ACTIONS)
    best = TRUTH.argmax(axis=1)[contexts]
    target = np.zeros((n, ACTIONS))
    target[np.arange(n), best] = 1.0
    return logs, target, reference, float((TRUTH[contexts, best] - TRUTH[contexts, 0]).mean())


def test_it_refuses_importance_weighting_alone_where_the_agent_never_tried_the_learned_choice():
    logs, target, _, _ = case()
    with pytest.raises(offline.NotCovered) as refused:
        offline.evaluate(logs, target, replicates=50)
    assert refused.value.reason == "no_overlap"


def test_it_estimates_the_lift_with_the_reference_log_and_covers_the_truth():
    logs, target, reference, true_lift = case()
    result = offline.compare_with_reference(logs, target, reference, replicates=300)
    assert result.lift.low <= true_lift <= result.lift.high
    assert abs(result.lift.value - true_lift) < 0.05
    assert result.logged.value == pytest.approx(logs.rewards.mean())
    assert result.agreement == pytest.approx(float((target[:, 0] == 1).mean()))
    assert result.rows == 400 and result.reference_rows == 3000


def test_it_knows_the_answer_when_the_learned_policy_is_the_agents_own():
    logs, _, reference, _ = case()
    own = offline.fixed_action(len(logs), ACTIONS, 0)
    result = offline.compare_with_reference(logs, own, reference, replicates=200)
    # The direct part plus the residuals of every row: exactly the logged mean, and no lift.
    assert result.target.value == pytest.approx(result.logged.value)
    assert result.lift.value == pytest.approx(0.0, abs=1e-12)
    assert result.agreement == 1.0


def test_its_interval_narrows_with_more_tasks():
    small = offline.compare_with_reference(*case(n=100, reference_n=600)[:3], replicates=200)
    large = offline.compare_with_reference(*case(n=1600, reference_n=9600)[:3], replicates=200)
    assert large.lift.high - large.lift.low < (small.lift.high - small.lift.low) / 2


def test_it_refuses_when_neither_log_shows_the_learned_choice():
    logs, target, _, _ = case()
    ref_c, ref_a, ref_r = logged(500, lambda c, rng: np.zeros(len(c), dtype=int), 7)  # the reference never explored
    reference = offline.Logs.build(ref_c, ref_a, np.ones(500), ref_r, CONTEXTS, ACTIONS)
    with pytest.raises(offline.NotCovered) as refused:
        offline.compare_with_reference(logs, target, reference, replicates=50)
    assert refused.value.reason == "no_overlap"


def test_it_refuses_without_logged_rows():
    _, _, reference, _ = case()
    empty = offline.Logs.build([], [], [], [], CONTEXTS, ACTIONS)
    with pytest.raises(offline.NotCovered) as refused:
        offline.compare_with_reference(empty, np.zeros((0, ACTIONS)), reference)
    assert refused.value.reason == "no_logs"
