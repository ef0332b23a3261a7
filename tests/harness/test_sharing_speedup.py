"""The simulator's measurement of the learning speed-up from sharing."""

import pytest

from learning import sharing
from learning.harness import sharing_sim
from learning.models import LearningProfile, PatternImport

pytestmark = pytest.mark.django_db


def test_tasks_to_threshold_is_where_the_rolling_rate_first_reaches_it():
    assert sharing_sim.tasks_to_threshold([0, 1, 1, 1, 0, 1], threshold=0.75, window=4) == 4
    assert sharing_sim.tasks_to_threshold([1, 0, 1, 0, 1, 1, 1], threshold=1.0, window=3) == 7
    assert sharing_sim.tasks_to_threshold([1, 1, 0], threshold=1.0, window=3) is None
    assert sharing_sim.tasks_to_threshold([1], threshold=0.5, window=3) is None


def test_a_small_run_compares_importers_with_non_importers(monkeypatch):
    # No bars but five uses and one success, so the teachers' few tasks
    # certainly share something (recommendations explore at random).
    monkeypatch.setattr(sharing, "SHARE_CONFIDENCE", 0.0)
    monkeypatch.setattr(sharing, "SHARE_LOWER_BOUND", 0.0)
    monkeypatch.setattr(sharing, "SHARE_MIN_USES", 5)
    figures = sharing_sim.measure_speedup(seed=3, teacher_tasks=30, learner_tasks=20, pairs=1, slot_tasks=5,
                                          window=10, teams=("performance-security",))
    assert figures["teachers"] == 2
    for group in ("importers", "non_importers"):
        assert figures[group]["agents"] == 2 and len(figures[group]["tasks_to_threshold"]) == 2
    assert figures["shared_by_teachers"]["patterns"] >= 1 and figures["shared_by_teachers"]["of_task_types"] == 2
    assert figures["imports"] >= 1
    assert not PatternImport.objects.filter(agent__learning__imports_patterns=False).exists()
    assert LearningProfile.objects.filter(imports_patterns=False).count() == 2
    assert figures["shared_decisions"]["decisions"] >= 1  # the swarm informed the importers' first tasks
    # Two agents a group: a resampled median is one agent's figure or their
    # mean, so the 95 % bootstrap interval spans the extreme ratios, with an
    # agent that never reached the threshold counted as learner_tasks + 1.
    slow, fast = ([21 if tasks is None else tasks for tasks in figures[group]["tasks_to_threshold"]]
                  for group in ("non_importers", "importers"))
    assert figures["speedup_interval"] == pytest.approx([min(slow) / max(fast), max(slow) / min(fast)])
