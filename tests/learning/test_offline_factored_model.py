"""The factored (position-based) reward model and cross-fitted doubly
robust estimate of learning.core.offline."""

import functools

import numpy as np
import pytest

from learning.core import offline

EXAMINATION = np.array([1.0, 0.6, 0.3])
ATTRACTIVENESS = np.array([0.05, 0.2, 0.1, 0.4])


def position_log(n, seed=0, clicks=True):
    """A uniform random log of items at positions; clicks drawn from
    examination x attractiveness (or, without `clicks`, the probabilities themselves)."""
    rng = np.random.default_rng(seed)
    position = rng.integers(3, size=n)
    item = rng.integers(4, size=n)
    rate = EXAMINATION[position] * ATTRACTIVENESS[item]
    reward = (rng.random(n) < rate).astype(float) if clicks else rate
    return offline.Logs.build(position, item, np.full(n, 0.25), reward, 3, 4)


def test_it_recovers_examination_times_attractiveness():
    model = offline.reward_model(position_log(60_000), shrinkage=1, kind="factored")
    truth = EXAMINATION[:, None] * ATTRACTIVENESS[None, :]
    assert model == pytest.approx(truth, rel=0.12)


def top_position_log(seed=0, clicks=True):
    """0/1 clicks (or, without `clicks`, their probabilities) at three
    positions, the first examined four times as often as the others (its
    effect is above 1), item 1 (the most attractive) never shown at the
    first position, so the model fills that cell in past what was logged."""
    cells = [(0, 0)] * 400 + [(1, 0)] * 400 + [(2, 0)] * 400 + [(1, 1)] * 400 + [(2, 1)] * 400
    position, item = np.array(cells).T
    rate = np.array([1.0, 0.25, 0.25])[position] * np.array([0.85, 1.0])[item]
    reward = (np.random.default_rng(seed).random(len(cells)) < rate).astype(float) if clicks else rate
    return offline.Logs.build(position, item, np.full(len(cells), 0.5), reward, 3, 2)


def test_it_predicts_no_reward_past_the_logged_range():
    model = offline.reward_model(top_position_log(), kind="factored")
    assert model.min() >= 0 and model.max() <= 1
    assert model[0, 1] == 1  # examination x attractiveness is above 1 there


def test_the_unseen_cells_widen_the_interval_and_never_narrow_it():
    logs = top_position_log()
    target = offline.fixed_action(len(logs), 2, 1)
    # A model that guesses past the logged rewards leaves no room above them, not a negative room.
    down, up = offline.unseen_bounds(logs, target, np.array([[0.8, 1.2], [0.2, 0.25], [0.2, 0.25]]))
    assert down > 0 and up == 0
    noiseless = top_position_log(clicks=False)
    result = offline.evaluate(noiseless, target, replicates=200, model="factored").doubly_robust
    assert result.low <= result.value <= result.high <= noiseless.rewards.max()


def test_it_fills_a_cell_never_logged_from_the_items_other_positions():
    # Clicks, not their probabilities: the model keeps within the logged rewards, and this cell's
    # probability is above every other cell's.
    logs = position_log(60_000)
    seen = ~((logs.contexts == 0) & (logs.actions == 3))
    model = offline.reward_model(logs.take(seen), shrinkage=0, kind="factored")
    cells = offline.reward_model(logs.take(seen))
    # The cell model can only give item 3's mean over the other positions; the factored one scales it up.
    assert model[0, 3] == pytest.approx(EXAMINATION[0] * ATTRACTIVENESS[3], rel=0.1)
    assert cells[0, 3] < 0.8 * EXAMINATION[0] * ATTRACTIVENESS[3]


def test_it_predicts_nothing_without_a_reward():
    logs = offline.Logs.build([0, 1], [1, 0], [0.5, 0.5], [0.0, 0.0], 2, 2)
    assert not offline.reward_model(logs, kind="factored").any()


def test_it_rejects_negative_rewards():
    logs = offline.Logs.build([0, 1], [1, 0], [0.5, 0.5], [-1.0, 2.0], 2, 2)
    with pytest.raises(ValueError, match="not negative"):
        offline.reward_model(logs, kind="factored")


def test_cross_fitting_fits_each_folds_model_on_the_other_rows():
    logs = position_log(1_000)
    target = offline.fixed_action(len(logs), 4, 3)
    fitted_on = []

    def fit(rows):
        fitted_on.append(len(rows))
        return offline.reward_model(rows, kind="factored")

    offline.cross_fitted_doubly_robust(logs, target, fit, offline.random_folds(len(logs), count=4))
    assert fitted_on == [750] * 4


def test_cross_fitted_doubly_robust_with_a_noiseless_log_is_exact():
    logs = position_log(3_000, clicks=False)
    target = offline.fixed_action(len(logs), 4, 1)
    factored = functools.partial(offline.reward_model, kind="factored")
    estimate = offline.cross_fitted_doubly_robust(logs, target, factored, offline.random_folds(len(logs)))
    assert estimate == pytest.approx(float((EXAMINATION[logs.contexts] * ATTRACTIVENESS[1]).mean()), rel=1e-3)


def test_the_evaluation_with_the_factored_model_covers_the_truth():
    logs = position_log(6_000, seed=4)
    target = offline.fixed_action(len(logs), 4, 3)
    truth = float((EXAMINATION[logs.contexts] * ATTRACTIVENESS[3]).mean())
    result = offline.evaluate(logs, target, replicates=300, model="factored")
    assert result.doubly_robust.low <= truth <= result.doubly_robust.high


@pytest.mark.parametrize("table", [functools.partial(position_log, 500), top_position_log])
def test_the_bootstraps_batch_of_fits_matches_each_fit_alone(table):
    # The bootstrap fits every replicate at once from stacked cell sums and counts, each within its own rows'
    # reward range as a fit alone is.
    tables = [table(seed=seed) for seed in range(3)]
    fits = [offline.reward_model(t, kind="factored") for t in tables]
    size = tables[0].n_contexts * tables[0].n_actions
    sums = np.stack([np.bincount(t.cells, weights=t.rewards, minlength=size) for t in tables])
    counts = np.stack([np.bincount(t.cells, minlength=size).astype(float) for t in tables])
    low, high = (np.array([f(t.rewards) for t in tables]) for f in (np.min, np.max))
    batch = offline._fit(sums, counts, tables[0].n_contexts, tables[0].n_actions, offline.SHRINKAGE, "factored",
                         low, high)
    assert batch == pytest.approx(np.stack(fits))


def test_an_unknown_reward_model_is_rejected():
    logs = position_log(100)
    with pytest.raises(ValueError, match="cells, factored"):
        offline.evaluate(logs, offline.fixed_action(100, 4, 0), model="smooth")
