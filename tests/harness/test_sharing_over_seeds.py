"""The sharing speed-up's distribution over seeds (sharing_sim.over_seeds)."""

import pytest

from learning.harness import sharing_sim
from learning.harness.bench import sharing_table


def run(seed, importers, non_importers, speedup, interval):
    def group(tasks):
        return {"agents": len(tasks), "tasks_to_threshold": tasks, "tasks_to_threshold_expected": tasks,
                "reached_at_first_possible": tasks.count(20)}

    return {"seed": seed, "learner_tasks": 100, "importers": group(importers), "non_importers": group(non_importers),
            "speedup": speedup, "speedup_interval": interval, "speedup_expected": speedup,
            "speedup_expected_interval": interval}


def test_it_pools_the_seeds_newcomers_and_resamples_within_each_seed():
    runs = [run(1, [20, 20], [40, 40], 2.0, [2.0, 2.0]), run(2, [20, 20], [60, 60], 3.0, [3.0, 3.0]),
            run(3, [20, 30], [30, 30], 1.2, [1.0, 1.5])]
    figures = sharing_sim.over_seeds(runs)
    assert figures["speedups"] == [2.0, 3.0, 1.2]
    assert figures["median_speedup"] == 2.0 and figures["lowest_speedup"] == 1.2
    assert figures["seeds_meeting_target"] == 2  # seed 3 is below 2x and its interval reaches 1
    # Non-importers' median over (40, 40, 60, 60, 30, 30) is 40, importers' 20.
    assert figures["pooled_speedup"] == pytest.approx(2.0)
    assert figures["importers_at_first_possible"] == 5 and figures["importers"] == 6
    # Each seed's groups are resampled within the seed: non-importers keep
    # two values each of 30, 40 and 60 (median 40), importers at least four
    # 20s (median 20). Resampling all newcomers together would move both.
    assert figures["pooled_interval"] == pytest.approx([2.0, 2.0])
    assert "5 of 6" in sharing_table(figures)


def test_a_seed_whose_non_importers_never_reach_the_threshold_counts_at_least_its_lower_bound():
    never = [None, None, None]
    runs = [run(1, [20, 20, 20], never, None, [3.0, 5.05]), run(2, [20, 20, 20], [40, 40, 40], 2.0, [2.0, 2.0])]
    figures = sharing_sim.over_seeds(runs)
    # Not reached within 100 tasks: at least 101 / 20 = 5.05x, not 0x.
    assert figures["speedups"] == [None, 2.0]
    assert figures["lowest_speedup"] == 2.0 and figures["median_speedup"] == pytest.approx((5.05 + 2.0) / 2)
    assert figures["seeds_meeting_target"] == 2


def test_a_seed_whose_importers_never_reach_the_threshold_counts_as_no_speedup():
    runs = [run(1, [None, None, 30], [40, 40, 40], None, [0.0, 1.0]),
            run(2, [20, 20, 20], [40, 40, 40], 2.0, [2.0, 2.0])]
    figures = sharing_sim.over_seeds(runs)
    assert figures["lowest_speedup"] == 0.0 and figures["seeds_meeting_target"] == 1
