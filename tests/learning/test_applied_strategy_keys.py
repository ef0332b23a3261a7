"""`phase2/learning/{agent}/strategies/{task type}`: what the agent uses for a
task type, readable and writable through the memory API, validated."""

import pytest

from learning.models import AppliedStrategy, LearningProfile
from tests.learning.helpers import recommend

pytestmark = pytest.mark.django_db

KEY = "memory/learning/phase2/learning/alice/strategies/unit-tests"


def test_the_agent_sets_its_strategy_and_recommendations_use_it(alice):
    LearningProfile.objects.create(agent=alice, exploration_rate=0.0, min_exploration_rate=0.0)
    response = alice.client.put(KEY, {"value": {"strategy": "adaptive-retry"}})
    assert response.status_code in (200, 201)
    value = alice.client.get(KEY).json()["value"]
    assert (value["strategy"], value["retry_policy"], value["source"]) == ("adaptive-retry", "adaptive", "memory-api")
    assert recommend(alice)["strategy"] == "adaptive-retry"


def test_it_is_listed_under_the_agent(alice):
    alice.client.put(KEY, {"value": {"strategy": "adaptive-retry"}})
    keys = [item["key"] for item in alice.client.get(
        "memory/learning?prefix=phase2/learning/alice/strategies/").json()["items"]]
    assert keys == ["phase2/learning/alice/strategies/unit-tests"]


@pytest.mark.parametrize("value,field", [({"strategy": "nope"}, "value.strategy"), ({"name": "x"}, "value"),
                                         ("adaptive-retry", "value")])
def test_it_refuses_what_is_not_a_catalog_strategy(alice, value, field):
    response = alice.client.put(KEY, {"value": value})
    assert response.status_code == 400 and response.json()["field"] == field
    assert not AppliedStrategy.objects.exists()


def test_other_agents_cannot_set_it(alice, bob):
    assert bob.client.put(KEY, {"value": {"strategy": "adaptive-retry"}}).status_code == 404
    assert not AppliedStrategy.objects.exists()


def test_an_unset_task_type_is_absent(alice):
    assert alice.client.get(KEY).status_code == 404
