"""The offline-evaluation benchmark's pieces on small inputs (the full study
runs in `make ope-bench`)."""

import numpy as np
import pytest

from learning.core import offline
from learning.harness import ope_bench

PRIOR = """all:
  alpha:
    - 1.0
    - 50.0
  beta:
    - 100.0
    - 50.0
men:
  alpha:
    - 2.0
  beta:
    - 3.0
"""


def test_it_reads_the_thompson_sampling_prior():
    assert ope_bench.parse_prior(PRIOR) == {"all": {"alpha": [1.0, 50.0], "beta": [100.0, 50.0]},
                                            "men": {"alpha": [2.0], "beta": [3.0]}}


def test_the_thompson_distribution_ranks_the_likelier_item_first():
    distribution = ope_bench.thompson_distribution([1, 50, 5, 5], [100, 50, 100, 100], draws=20_000)
    assert distribution.shape == (3, 4)
    assert distribution.sum(axis=1) == pytest.approx(np.ones(3))
    assert distribution[0, 1] > 0.99


def test_one_seed_of_the_coverage_study_evaluates_every_candidate_against_its_truth():
    records = ope_bench.simulate_seed(3, tasks=300, replicates=100)
    assert {record["policy"] for record in records} >= {"uniform", "version greedy", "fixed:adaptive-retry"}
    for record in records:
        assert 0 < record["truth"] < 1
        assert "refused" in record or record["doubly_robust"]["low"] <= record["doubly_robust"]["high"]


def test_one_seed_of_the_shadow_study_compares_the_learned_choice_with_the_agents_own():
    records = ope_bench.shadow_seed(3, tasks=300, shadow_tasks=80, replicates=50)
    assert len(records) == len(ope_bench.LOGGED_AGENTS)
    for record in records:
        assert -1 < record["truth_lift"] < 1
        assert "refused" in record or (record["lift"]["low"] <= record["lift"]["value"] <= record["lift"]["high"]
                                       and record["rows"] == 80)


def test_the_policy_as_it_ran_is_each_positions_share_of_the_items_it_showed():
    distribution = ope_bench.as_run_distribution(np.array([0, 0, 1, 2, 2, 2]), np.array([1, 1, 0, 2, 2, 0]), 3)
    assert distribution == pytest.approx(np.array([[0, 1, 0], [1, 0, 0], [1 / 3, 0, 2 / 3]]))


def test_the_noise_floor_grows_as_the_truth_rests_on_fewer_rows():
    rng = np.random.default_rng(0)
    logs = offline.Logs.build(rng.integers(3, size=3000), rng.integers(4, size=3000), np.full(3000, 0.25),
                              (rng.random(3000) < 0.05).astype(float), 3, 4)
    target = offline.fixed_action(3000, 4, 2)
    assert ope_bench.noise_floor(logs, target, 0.05, 500) > ope_bench.noise_floor(logs, target, 0.05, 50_000)


def test_the_cross_fitted_bootstrap_keeps_every_copy_of_a_row_in_one_fold(monkeypatch):
    # Each row's reward is its id: a replicate draws rows more than once, and no copy of a row whose
    # residual a fold corrects may be among the rows its model is fitted on.
    rows = 200
    logs = offline.Logs.build(np.arange(rows) % 3, np.arange(rows) % 4, np.full(rows, 0.25),
                              np.arange(rows, dtype=float), 3, 4)
    fitted_on, corrected = [], []
    real_doubly_robust = offline.doubly_robust

    def fit(training):
        fitted_on.append(set(training.rewards))
        return np.zeros((3, 4))

    def doubly_robust(evaluated, target, model):
        corrected.append(set(evaluated.rewards))
        return real_doubly_robust(evaluated, target, model)

    monkeypatch.setattr(ope_bench, "FACTORED", fit)
    monkeypatch.setattr(offline, "doubly_robust", doubly_robust)
    ope_bench.cross_fitted_factored(logs, offline.fixed_action(rows, 4, 0), replicates=20)

    assert len(fitted_on) == len(corrected) == 2 * 21
    assert all(not (training & evaluated) for training, evaluated in zip(fitted_on, corrected))
