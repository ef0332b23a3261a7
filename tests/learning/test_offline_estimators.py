"""Offline evaluation's math (learning.core.offline): known answers, the
refusals, and intervals that narrow with more logs."""

import numpy as np
import pytest

from learning.core import offline


def logged_world(n, seed=0, epsilon=0.3, contexts=6, actions=3):
    """Epsilon-greedy logs over a world with known success rates per
    (context, action); returns (logs, true rates)."""
    rng = np.random.default_rng(seed)
    rates = np.linspace(0.2, 0.9, contexts * actions).reshape(contexts, actions)
    rates = rates[:, rng.permutation(actions)]
    greedy = rng.integers(actions, size=contexts)
    probabilities = np.full((contexts, actions), epsilon / actions)
    probabilities[np.arange(contexts), greedy] += 1 - epsilon
    context = rng.integers(contexts, size=n)
    action = (rng.random(n)[:, None] > probabilities[context].cumsum(axis=1)).sum(axis=1)
    reward = (rng.random(n) < rates[context, action]).astype(float)
    logs = offline.Logs.build(context, action, probabilities[context, action], reward, contexts, actions)
    return logs, rates, probabilities


def test_snips_of_a_fixed_action_under_uniform_logging_is_that_actions_mean():
    logs = offline.Logs.build([0, 0, 0, 0], [0, 1, 0, 1], [0.5] * 4, [1.0, 0.0, 0.0, 1.0], 1, 2)
    assert offline.snips(logs, offline.fixed_action(4, 2, 0)) == pytest.approx(0.5)
    assert offline.snips(logs, offline.fixed_action(4, 2, 1)) == pytest.approx(0.5)


def test_snips_undoes_the_logging_policys_selection():
    # Action 0 logged with probability 0.8 in context 0 (reward 1) and 0.2 in
    # context 1 (reward 0), equally many rows of each context: 4 and 1 rows.
    contexts = [0, 0, 0, 0, 1]
    logs = offline.Logs.build(contexts, [0] * 5, [0.8] * 4 + [0.2], [1.0] * 4 + [0.0], 2, 2)
    # Raw mean 0.8; weighted, each context counts once: 0.5.
    assert offline.snips(logs, offline.fixed_action(5, 2, 0)) == pytest.approx(0.5)


def test_the_logging_policy_evaluated_on_its_own_logs_is_the_logged_mean():
    logs, _, probabilities = logged_world(400)
    own = probabilities[logs.contexts]
    assert offline.importance_weights(logs, own) == pytest.approx(np.ones(400))
    assert offline.snips(logs, own) == pytest.approx(logs.rewards.mean())


def test_doubly_robust_with_a_zero_reward_model_is_snips():
    logs, _, _ = logged_world(300, seed=3)
    target = offline.fixed_action(len(logs), logs.n_actions, 1)
    zero = np.zeros((logs.n_contexts, logs.n_actions))
    assert offline.doubly_robust(logs, target, zero) == pytest.approx(offline.snips(logs, target))


def test_doubly_robust_with_the_true_model_and_no_noise_is_exact():
    rates = np.array([[0.2, 0.7], [0.9, 0.4]])
    context = np.array([0, 0, 1, 1, 0, 1])
    action = np.array([0, 1, 1, 0, 0, 1])
    logs = offline.Logs.build(context, action, [0.5] * 6, rates[context, action], 2, 2)
    target = offline.fixed_action(6, 2, 1)
    assert offline.doubly_robust(logs, target, rates) == pytest.approx(rates[context, 1].mean())


def test_the_reward_model_shrinks_a_cell_seen_once_towards_its_actions_mean():
    logs = offline.Logs.build([0] * 10 + [1], [0] * 11, [1.0] * 11, [0.0] * 10 + [1.0], 2, 1)
    model = offline.reward_model(logs, shrinkage=5)
    assert model[0, 0] < 0.1
    assert 0.1 < model[1, 0] < 0.5  # one success seen once is not a rate of 1


def test_effective_samples_of_equal_weights_is_the_count_and_of_one_heavy_weight_is_small():
    assert offline.effective_samples(np.ones(50)) == pytest.approx(50)
    assert offline.effective_samples(np.r_[np.ones(49), 1000.0]) < 2


def test_the_interval_covers_the_truth_on_a_known_world():
    logs, rates, _ = logged_world(2000, seed=5)
    target = offline.fixed_action(len(logs), logs.n_actions, 2)
    result = offline.evaluate(logs, target, replicates=400)
    truth = rates[logs.contexts, 2].mean()
    assert result.doubly_robust.low <= truth <= result.doubly_robust.high
    assert result.snips.low <= truth <= result.snips.high
    assert result.unsupported == 0.0
    assert result.rows == 2000


def test_the_interval_narrows_as_the_logs_grow():
    widths = []
    for n in (300, 1200, 4800):
        logs, _, _ = logged_world(n, seed=11)
        result = offline.evaluate(logs, offline.fixed_action(n, logs.n_actions, 0), replicates=300)
        widths.append(result.doubly_robust.high - result.doubly_robust.low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < widths[0] / 2.5  # about 1 / sqrt(n): a 16-fold n quarters the width


def test_the_same_seed_gives_the_same_interval():
    logs, _, _ = logged_world(500, seed=2)
    target = offline.fixed_action(500, logs.n_actions, 1)
    assert offline.evaluate(logs, target, seed=7).as_dict() == offline.evaluate(logs, target, seed=7).as_dict()


def test_it_refuses_a_policy_on_actions_the_logs_never_show():
    # Action 1 never logged: the logging policy gave it no probability.
    logs = offline.Logs.build([0, 1, 0, 1] * 20, [0] * 80, [1.0] * 80, [1.0, 0.0] * 40, 2, 2)
    with pytest.raises(offline.NotCovered) as refused:
        offline.evaluate(logs, offline.fixed_action(80, 2, 1))
    assert refused.value.reason == "no_overlap"
    assert refused.value.figures["unsupported"] == pytest.approx(1.0)
    assert "never show" in refused.value.message


def test_it_refuses_when_the_weights_leave_too_few_effective_samples():
    # The target's action was logged rarely (propensity 0.01): a few rows carry everything.
    action = np.r_[np.ones(5, dtype=int), np.zeros(995, dtype=int)]
    propensity = np.r_[np.full(5, 0.01), np.full(995, 0.99)]
    logs = offline.Logs.build(np.zeros(1000, dtype=int), action, propensity, np.ones(1000), 1, 2)
    with pytest.raises(offline.NotCovered) as refused:
        offline.evaluate(logs, offline.fixed_action(1000, 2, 1))
    assert refused.value.reason == "too_few_effective_samples"
    assert refused.value.figures["effective_samples"] == pytest.approx(5)


def test_it_refuses_empty_logs():
    logs = offline.Logs.build([], [], [], [], 1, 2)
    with pytest.raises(offline.NotCovered) as refused:
        offline.evaluate(logs, np.zeros((0, 2)))
    assert refused.value.reason == "no_logs"


@pytest.mark.parametrize("propensity", [0.0, -0.1, 1.5, float("nan")])
def test_logs_without_a_valid_propensity_are_rejected(propensity):
    with pytest.raises(ValueError, match="propensity"):
        offline.Logs.build([0], [0], [propensity], [1.0], 1, 1)


def test_a_target_that_is_not_a_distribution_is_rejected():
    logs, _, _ = logged_world(50)
    with pytest.raises(ValueError, match="distribution"):
        offline.evaluate(logs, np.full((50, logs.n_actions), 0.5))


def test_epsilon_greedy_shares_the_greedy_mass_and_spreads_epsilon():
    target = offline.epsilon_greedy(np.array([[True, False, False, False], [True, True, False, False]]), 0.2)
    assert target[0] == pytest.approx([0.85, 0.05, 0.05, 0.05])
    assert target[1] == pytest.approx([0.45, 0.45, 0.05, 0.05])


def test_the_lift_is_the_estimate_minus_the_logged_mean():
    logs, _, _ = logged_world(800, seed=4)
    result = offline.evaluate(logs, offline.fixed_action(800, logs.n_actions, 0), replicates=200)
    assert result.lift.value == pytest.approx(result.doubly_robust.value - result.logged.value)
    assert result.lift.low <= result.lift.value <= result.lift.high


def test_several_rewards_share_one_bootstrap_and_each_matches_its_own_evaluation():
    logs, _, _ = logged_world(600, seed=9)
    target = offline.fixed_action(600, logs.n_actions, 1)
    halved = logs.rewards / 2
    both = offline.evaluate_each(logs, target, {"success": logs.rewards, "half": halved}, replicates=200, seed=3)
    alone = offline.evaluate(logs, target, replicates=200, seed=3)
    assert both["success"] == alone
    assert both["half"].doubly_robust.value == pytest.approx(alone.doubly_robust.value / 2)
    assert both["half"].doubly_robust.high == pytest.approx(alone.doubly_robust.high / 2)
