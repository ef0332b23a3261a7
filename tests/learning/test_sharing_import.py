"""Importing: who takes in a shared pattern, on probation at a discount, and
how the importer's own tasks confirm or reject it."""

import pytest

from learning import sharing
from learning.models import PatternImport, SharedPattern
from qefleet.memory.models import AgentStatus
from tests.learning.sharing_helpers import learned, shared_by, swarm_agent

pytestmark = pytest.mark.django_db


def imports_of(shared):
    return {item.agent.agent_id: item for item in PatternImport.objects.filter(shared=shared).select_related("agent")}


def test_the_swarm_imports_on_probation_at_a_discount(alice, bob, carol):
    shared = shared_by(alice)
    assert sharing.import_shared() == {"imported": 2, "confirmed": 0, "rejected": 0}
    found = imports_of(shared)
    assert set(found) == {"bob", "carol"}
    for item in found.values():
        assert item.status == "probation" and item.decided_at is None
        assert item.confidence == pytest.approx(shared.confidence * sharing.PROBATION_DISCOUNT)


def test_a_newcomer_without_a_learning_profile_imports(alice):
    swarm_agent("newcomer")
    shared = shared_by(alice)
    sharing.import_shared()
    assert set(imports_of(shared)) == {"newcomer"}


def test_who_does_not_import(alice, dave):
    swarm_agent("erin", imports_patterns=False)
    swarm_agent("frank", enabled=False)
    gone = swarm_agent("gone")
    gone.status = AgentStatus.TERMINATED
    gone.save()
    expert = swarm_agent("expert")
    learned(expert, uses=sharing.SHARE_MIN_USES, successes=20)  # knows the pattern from its own tasks
    shared = shared_by(alice)
    assert sharing.import_shared()["imported"] == 0
    assert imports_of(shared) == {}  # not alice herself, nor dave of another swarm


def test_a_pattern_that_fell_under_the_bar_is_no_longer_imported(alice, bob):
    shared_by(alice)
    learned(alice, uses=80, successes=50)
    sharing.publish()
    assert sharing.import_shared()["imported"] == 0


def test_running_again_imports_nothing_twice(alice, bob, carol):
    shared_by(alice)
    first = sharing.share_and_import()
    assert first == {"published": 0, "refreshed": 0, "imported": 2, "confirmed": 0, "rejected": 0}
    assert sharing.share_and_import() == {"published": 0, "refreshed": 0, "imported": 0, "confirmed": 0,
                                          "rejected": 0}
    assert PatternImport.objects.count() == 2 and SharedPattern.objects.count() == 1


def test_the_importers_own_tasks_confirm_or_reject(alice, bob, carol):
    newcomer = swarm_agent("newcomer")
    shared = shared_by(alice, uses=40, successes=38)  # success rate 0.95: confirmed from 0.80 on
    sharing.import_shared()
    learned(bob, uses=sharing.CONFIRM_USES, successes=8)  # 0.80
    learned(carol, uses=sharing.CONFIRM_USES, successes=7)  # 0.70
    learned(newcomer, uses=sharing.CONFIRM_USES - 1, successes=9)  # not enough tasks yet
    assert sharing.import_shared() == {"imported": 0, "confirmed": 1, "rejected": 1}
    found = imports_of(shared)
    assert found["bob"].status == "active" and found["bob"].confidence == pytest.approx(shared.confidence)
    assert found["carol"].status == "rejected"
    assert found["carol"].confidence == pytest.approx(shared.confidence * sharing.PROBATION_DISCOUNT)
    assert found["bob"].decided_at is not None and found["carol"].decided_at is not None
    assert found["newcomer"].status == "probation" and found["newcomer"].decided_at is None
    assert sharing.import_shared() == {"imported": 0, "confirmed": 0, "rejected": 0}


def test_probation_is_judged_on_the_imported_strategy_only(alice, bob):
    shared_by(alice)
    sharing.import_shared()
    learned(bob, uses=20, successes=2, strategy_name="sequential-execution")
    assert sharing.import_shared()["rejected"] == 0
    assert PatternImport.objects.get().status == "probation"
