"""The harness can make the exploration draws repeat from its seed (services.seed_draws);
production's draws stay unseeded."""

import pytest

from learning import services


@pytest.fixture(autouse=True)
def unseeded_afterwards():
    yield
    del services._local.rng  # the next test draws from a fresh, unseeded generator


def test_it_repeats_the_exploration_draws_from_the_harness_seed():
    services.seed_draws([7, 2])
    first = services.rng().random(5)
    services.seed_draws([7, 2])
    assert (services.rng().random(5) == first).all()
    services.seed_draws([8, 2])
    assert (services.rng().random(5) != first).any()
