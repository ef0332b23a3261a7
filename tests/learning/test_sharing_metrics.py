"""The fleet learning metrics, as README.md defines them."""

import pytest

from learning import sharing
from learning.core import scoring
from learning.models import ImportStatus, LearningProfile, PatternImport, SharedPattern
from tests.learning.helpers import run_task
from tests.learning.sharing_helpers import shared_by, swarm_agent

pytestmark = pytest.mark.django_db


def score(success_rate):
    # run_task reports 2350 ms and no errors; coverage, satisfaction and efficiency are absent.
    return scoring.composite_score(success_rate, scoring.time_score(2350), 0.0)


def test_with_nothing_learned():
    assert sharing.fleet_metrics() == {"patterns_shared": 0, "avg_patterns_per_agent": 0.0, "cross_agent_imports": 0,
                                       "fleet_improvement_rate": None, "learning_agents": 0,
                                       "agents_with_baseline": 0}


def test_shared_patterns_and_imports(alice, bob, carol):
    swarm_agent("erin", imports_patterns=False)
    shared_by(alice, task_type="a")
    shared_by(alice, task_type="b")
    quarantined = shared_by(bob, task_type="c")
    sharing.import_shared()  # 2 + 2 + 2 imports
    sharing.quarantine(SharedPattern.objects.filter(pk=quarantined.pk), "rolled back")
    PatternImport.objects.filter(agent=carol, shared__task_type="a").update(status=ImportStatus.REJECTED)
    PatternImport.objects.filter(agent=bob, shared__task_type="b").update(status=ImportStatus.ACTIVE)
    metrics = sharing.fleet_metrics()
    assert metrics["patterns_shared"] == 2  # the quarantined one does not count
    assert metrics["learning_agents"] == 3  # alice, bob and erin have a learning profile; carol never learned
    assert metrics["avg_patterns_per_agent"] == pytest.approx(2 / 3)
    assert metrics["cross_agent_imports"] == 3  # probation or active; not rejected, not quarantined


def test_fleet_improvement_is_the_mean_against_each_baseline(alice, bob, carol):
    for agent in (alice, bob):
        LearningProfile.objects.create(agent=agent, baseline_window=10, exploration_rate=0.0,
                                       min_exploration_rate=0.0)
    for index in range(10):
        run_task(alice, success=index % 2 == 0)  # baseline: half succeed
        run_task(bob)
    for _ in range(10):
        run_task(alice)  # then every task succeeds
        run_task(bob)
    run_task(carol)  # no baseline yet: not counted
    alice_change = (score(1.0) - score(0.5)) / score(0.5)
    metrics = sharing.fleet_metrics()
    assert metrics["agents_with_baseline"] == 2 and metrics["learning_agents"] == 3
    assert metrics["fleet_improvement_rate"] == pytest.approx((alice_change + 0.0) / 2)
