"""The improvement cycle: per agent and slot it analyses, mitigates, finds
opportunities and starts A/B tests for them, checks applied winners; it runs
on the schedule, on demand, and exactly once per slot."""

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.scheduler import scheduler

from learning import abtests, improvement
from learning.models import (
    ABTest,
    ABTestState,
    AppliedStrategy,
    ImprovementCycle,
    LearnedPattern,
    LearningProfile,
)
from tests.learning.abtest_helpers import strategy

pytestmark = pytest.mark.django_db

CYCLE_JOB = "qefleet.learning.improvement_cycle"


@pytest.fixture
def opportunity(alice):
    """Alice mostly runs sequential-execution for unit tests (half succeed);
    parallel-execution did better on the fewer tasks it got."""
    LearningProfile.objects.create(agent=alice, task_count=50)
    LearnedPattern.objects.create(agent=alice, task_type="unit-tests", strategy=strategy("sequential-execution"),
                                  uses=40, successes=20, confidence=0.4)
    LearnedPattern.objects.create(agent=alice, task_type="unit-tests", strategy=strategy("parallel-execution"),
                                  uses=25, successes=22, confidence=0.7)
    return alice


def test_it_starts_a_test_for_an_opportunity(opportunity):
    cycle = improvement.run_cycle(opportunity)
    test = ABTest.objects.get(agent=opportunity)
    assert test.state == ABTestState.RUNNING and test.source == "loop"
    # The control is the agent's own policy: no strategy is applied for the type.
    assert (test.control.strategy, test.treatment.strategy.name) == (None, "parallel-execution")
    assert "succeeded in 88% of 25 tasks against 65% for its learned policy" in test.hypothesis
    assert cycle.steps == ["performance", "failures", "opportunities", "applied"]
    assert {"kind": "abtest_created", "abtest": test.pk, "task_type": "unit-tests",
            "control": None, "treatment": "parallel-execution"} in cycle.decisions
    assert cycle.finished_at is not None and cycle.duration_ms > 0
    assert cycle.inputs["performance"]["tasks"] == 50


def test_a_rerun_in_the_same_slot_creates_nothing_twice(opportunity):
    improvement.run_cycle(opportunity)
    improvement.run_cycle(opportunity)
    assert ImprovementCycle.objects.count() == 1
    assert ABTest.objects.count() == 1


def test_a_cycle_killed_midway_resumes_where_it_stopped(opportunity):
    ImprovementCycle.objects.create(agent=opportunity, slot_start=improvement.slot_start(),
                                    steps=["performance", "failures"])
    cycle = improvement.run_cycle(opportunity)
    assert cycle.steps == ["performance", "failures", "opportunities", "applied"]
    assert "performance" not in cycle.inputs  # done before the crash, not again
    assert ABTest.objects.count() == 1


def test_the_next_slot_runs_again(opportunity):
    improvement.run_cycle(opportunity)
    improvement.run_cycle(opportunity, now=timezone.now() + timedelta(hours=1))
    assert ImprovementCycle.objects.count() == 2
    assert ABTest.objects.count() == 1  # the first test is still open


def test_a_decided_pair_is_not_tested_again_within_a_week(opportunity):
    improvement.run_cycle(opportunity)
    abtests.abort(ABTest.objects.get().pk, "by hand")
    improvement.run_cycle(opportunity, now=timezone.now() + timedelta(hours=1))
    assert ABTest.objects.count() == 1


def test_no_opportunity_without_enough_evidence(opportunity):
    LearnedPattern.objects.filter(strategy__name="parallel-execution").update(uses=19, successes=19)
    improvement.run_cycle(opportunity)
    assert not ABTest.objects.exists()


def test_an_applied_strategy_is_the_control(opportunity):
    AppliedStrategy.objects.create(agent=opportunity, task_type="unit-tests", strategy=strategy("sequential-execution"))
    improvement.run_cycle(opportunity)
    test = ABTest.objects.get()
    assert test.control.strategy.name == "sequential-execution"
    assert "against 50% for sequential-execution" in test.hypothesis


def test_agents_with_learning_disabled_are_skipped(opportunity):
    LearningProfile.objects.filter(agent=opportunity).update(enabled=False)
    assert improvement.run_cycle(opportunity) is None
    assert improvement.run_all() == {"cycles": 0, "tests_created": 0, "tests_decided": 0, "running_tests": 0}
    assert not ImprovementCycle.objects.exists()


def test_the_scheduler_runs_the_cycle(monkeypatch, opportunity):
    monkeypatch.setattr(Conf, "SYNC", True)
    Schedule.objects.filter(name=CYCLE_JOB).update(next_run=timezone.now() - timedelta(minutes=1))
    scheduler()
    assert ImprovementCycle.objects.get(agent=opportunity).trigger == "schedule"
    assert ABTest.objects.filter(agent=opportunity, state=ABTestState.RUNNING).exists()


def test_the_command_runs_one_agent_or_all(opportunity, capsys):
    call_command("run_cycle", "--agent", "alice")
    assert json.loads(capsys.readouterr().out)["trigger"] == "command"
    call_command("run_cycle")
    assert json.loads(capsys.readouterr().out)["cycles"] == 1
    with pytest.raises(CommandError):
        call_command("run_cycle", "--agent", "nobody")


def test_cycles_are_readable_as_memory_keys(opportunity):
    cycle = improvement.run_cycle(opportunity)
    response = opportunity.client.get(f"memory/learning/phase2/learning/alice/cycles/{cycle.pk}")
    assert response.status_code == 200
    assert response.json()["value"]["steps"] == cycle.steps


def test_slots_follow_the_setting(settings):
    settings.CYCLE_SLOT_SECONDS = 300
    moment = timezone.now().replace(minute=7, second=30, microsecond=0)
    assert improvement.slot_start(moment) == moment.replace(minute=5, second=0)
