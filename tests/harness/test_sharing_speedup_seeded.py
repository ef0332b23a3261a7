"""A seed of the sharing measurement repeats decision for decision."""

import pytest
from django.db import transaction

from learning import services
from learning.harness import sharing_sim
from learning.models import Decision

pytestmark = pytest.mark.django_db

SMALL = {"teacher_tasks": 20, "learner_tasks": 10, "pairs": 1, "slot_tasks": 5, "window": 5,
         "teams": ("performance-security",)}


def decisions_of_a_run(seed):
    """The run's decisions, then the run undone, so the next run starts from
    the same empty swarm."""
    with transaction.atomic():
        figures = sharing_sim.measure_speedup(seed=seed, **SMALL)
        decisions = sorted(Decision.objects.values_list("agent__agent_id", "task_id", "strategy__name", "explored",
                                                        "fallback"))
        transaction.set_rollback(True)
    return decisions, figures


def without_seed(decisions, seed):
    """The decisions with the seed's prefix taken off the agent and task ids
    (`s4-teach-…`, `sim-s4-teach-…`), which differ between seeds whatever was drawn."""
    prefix = f"s{seed}-"
    return sorted((agent_id.removeprefix(prefix), task_id.replace(f"sim-{prefix}", "sim-", 1), *drawn)
                  for agent_id, task_id, *drawn in decisions)


def test_it_repeats_a_seeds_decisions_and_draws_others_for_another_seed():
    first, first_figures = decisions_of_a_run(seed=4)
    again, again_figures = decisions_of_a_run(seed=4)
    other, _ = decisions_of_a_run(seed=5)
    assert len(first) == 2 * 20 + 4 * 10
    assert any(explored for *_, explored, _ in first)  # exploration draws were taken
    assert again == first
    assert again_figures == first_figures
    first, other = without_seed(first, 4), without_seed(other, 5)
    assert [row[:2] for row in other] == [row[:2] for row in first]  # the same agents and tasks
    assert [row[2:] for row in other] != [row[2:] for row in first]  # other strategies or explorations drawn


def test_it_gives_the_thread_its_unseeded_generator_back():
    before = services.rng()
    with services.seeded_exploration(4):
        seeded = services.rng().random(3)
    assert services.rng() is before
    with services.seeded_exploration(4):
        assert list(services.rng().random(3)) == list(seeded)
