"""Shadow mode's estimate is computed once per state of the logs it reads:
page views between two reports share it, and a report (the agent's, or a
swarm mate's whose tasks are the reference) brings a fresh one."""

import pytest
from django.contrib.auth import get_user_model

from learning import operations, shadow
from tests.learning.helpers import profile, run_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_shadow(alice, bob):
    for _ in range(3):
        run_task(bob)
    operator = get_user_model().objects.create_user("operator", is_superuser=True)
    operations.put_in_shadow(alice, operator, "new agent")
    for _ in range(4):
        run_task(alice)
    return alice


@pytest.fixture
def computed(monkeypatch):
    """How many times the estimate was computed."""
    calls = []
    original = shadow.comparison

    def counting(agent, profile, seed=0):
        calls.append(agent.agent_id)
        return original(agent, profile, seed)

    monkeypatch.setattr(shadow, "comparison", counting)
    return calls


def test_it_computes_the_estimate_once_for_repeated_views(in_shadow, computed):
    first = shadow.figures(in_shadow, profile(in_shadow))
    second = shadow.figures(in_shadow, profile(in_shadow))
    assert len(computed) == 1
    assert second == first


def test_a_new_report_of_the_agent_brings_a_fresh_estimate(in_shadow, computed):
    assert shadow.figures(in_shadow, profile(in_shadow))["reported"] == 4
    run_task(in_shadow, success=False)
    shown = shadow.figures(in_shadow, profile(in_shadow))
    assert len(computed) == 2
    # (Whether the estimate itself answers at five tasks depends on the draws; the count does not.)
    assert shown["reported"] == 5


def test_a_swarm_mates_report_brings_a_fresh_estimate(in_shadow, bob, computed):
    before = shadow.figures(in_shadow, profile(in_shadow))
    run_task(bob)
    after = shadow.figures(in_shadow, profile(in_shadow))
    assert len(computed) == 2
    assert after["reference_tasks"] == before["reference_tasks"] + 1
