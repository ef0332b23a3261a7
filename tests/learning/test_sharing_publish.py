"""Publishing: which patterns an agent shares with its swarm, where they
appear (patterns table with swarm access, the event) and how they stay current."""

import pytest

from learning import sharing, versions
from learning.core import engine
from learning.models import LearningProfile, SharedPattern, VersionReason
from qefleet.memory.models import Event, Pattern
from tests.learning.helpers import run_task
from tests.learning.sharing_helpers import PATTERN, learned, shared_by, swarm_agent

pytestmark = pytest.mark.django_db


def test_it_shares_a_pattern_learned_through_the_api(alice):
    LearningProfile.objects.create(agent=alice, exploration_rate=0.0, min_exploration_rate=0.0)
    for _ in range(35):
        run_task(alice)
    assert sharing.publish() == {"published": 1, "refreshed": 0}
    shared = SharedPattern.objects.get()
    assert shared.source == alice and shared.status == "active" and shared.uses == 35
    assert shared.success_rate == 1.0
    assert shared.confidence == pytest.approx(engine.pattern_confidence(35, 35))
    assert shared.lower_bound == pytest.approx(engine.wilson_lower_bound(35, 35))


@pytest.mark.parametrize("record, shared", [
    ({"uses": 40, "successes": 39, "confidence": 0.85}, True),
    ({"uses": 40, "successes": 39, "confidence": 0.80}, False),  # confidence must exceed 0.8
    ({"uses": 29, "successes": 29, "confidence": 0.9}, False),  # fewer than SHARE_MIN_USES tasks
    ({"uses": 30, "successes": 30, "confidence": 0.9}, True),  # exactly SHARE_MIN_USES tasks
    ({"uses": 40, "successes": 28, "confidence": 0.9}, False),  # lower bound 0.55 under SHARE_LOWER_BOUND
])
def test_it_shares_only_past_all_three_bars(alice, record, shared):
    # Rows written directly probe one bar at a time (the engine's confidence
    # rule would never give 0.9 to 28 successes in 40).
    learned(alice, **record)
    assert sharing.publish()["published"] == int(shared)
    assert SharedPattern.objects.exists() is shared


def test_the_shared_record_holds_the_numbers_and_the_live_version(alice):
    learned(alice, uses=50, successes=48)
    version = versions.capture(alice, VersionReason.ON_DEMAND)
    sharing.publish()
    shared = SharedPattern.objects.get()
    assert (shared.task_type, shared.strategy.name, shared.uses) == ("unit-tests", "parallel-execution", 50)
    assert shared.success_rate == 0.96 and shared.source_version == version.label == "v1"
    assert shared.lower_bound == pytest.approx(engine.wilson_lower_bound(48, 50))
    assert shared.confidence == pytest.approx(engine.pattern_confidence(50, 48))


def test_the_patterns_table_copy_is_readable_by_the_swarm_only(alice, bob, carol, dave):
    shared = shared_by(alice)
    copy = Pattern.objects.get(owner=alice, pattern=PATTERN)
    assert copy.access_level == "swarm" and copy.metadata["shared_id"] == str(shared.pk)
    assert copy.confidence == pytest.approx(shared.confidence) and copy.usage_count == 40
    assert bob.client.get(f"patterns/{copy.pk}").status_code == 200
    assert carol.client.get(f"patterns/{copy.pk}").status_code == 200  # same swarm, other team
    assert dave.client.get(f"patterns/{copy.pk}").status_code == 404


def test_it_emits_pattern_shared_naming_the_importers(alice, bob, carol, dave):
    swarm_agent("erin", imports_patterns=False)
    swarm_agent("frank", enabled=False)
    learned(bob, uses=30, successes=30)  # bob knows this pattern himself
    shared = shared_by(alice)
    event = Event.objects.get(type="learning:pattern_shared")
    assert event.owner == alice and event.access_level == "swarm" and event.swarm == "qe"
    assert event.payload["pattern"] == PATTERN and event.payload["source"] == "alice"
    assert event.payload["shared_id"] == str(shared.pk)
    assert event.payload["targets"] == ["carol"]


def test_it_does_not_share_twice_and_refreshes_the_numbers(alice):
    learned(alice, uses=40, successes=39)
    assert sharing.publish() == {"published": 1, "refreshed": 0}
    assert sharing.publish() == {"published": 0, "refreshed": 0}
    learned(alice, uses=60, successes=55)
    assert sharing.publish() == {"published": 0, "refreshed": 1}
    shared = SharedPattern.objects.get()
    assert shared.uses == 60 and shared.success_rate == pytest.approx(55 / 60)
    assert shared.lower_bound == pytest.approx(engine.wilson_lower_bound(55, 60))
    assert Pattern.objects.get(owner=alice).metadata["success_rate"] == round(55 / 60, 4)
    assert Event.objects.filter(type="learning:pattern_shared").count() == 1


def test_it_keeps_refreshing_a_pattern_that_fell_under_the_bar(alice):
    learned(alice, uses=40, successes=39)
    sharing.publish()
    learned(alice, uses=80, successes=50)
    assert sharing.publish()["refreshed"] == 1
    assert SharedPattern.objects.get().confidence == pytest.approx(engine.pattern_confidence(80, 50))


def test_agents_with_learning_off_or_outside_a_swarm_do_not_share(alice):
    loner = swarm_agent("loner", swarm="")
    learned(loner)
    learned(alice)
    LearningProfile.objects.filter(agent=alice).update(enabled=False)
    assert sharing.publish()["published"] == 0
    LearningProfile.objects.filter(agent=alice).update(enabled=True)
    assert sharing.publish()["published"] == 1
