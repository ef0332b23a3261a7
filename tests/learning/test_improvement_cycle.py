"""The improvement cycle: per agent and slot it analyses, mitigates, finds
opportunities and starts A/B tests for them, checks applied winners; it runs
on the schedule, on demand, and exactly once per slot."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.scheduler import scheduler

from learning import abtests, improvement, sharing
from learning.models import (
    ABTest,
    ABTestState,
    AppliedStrategy,
    Decision,
    Execution,
    ImprovementCycle,
    LearningProfile,
    SharedPattern,
)
from tests.learning.helpers import strategy
from tests.learning.sharing_helpers import shared_by

pytestmark = pytest.mark.django_db

CYCLE_JOB = "qefleet.learning.improvement_cycle"


@pytest.fixture(autouse=True)
def _one_slot(time_machine):
    """The clock stands still from before the fixtures log the tasks, so a
    test's calls (and "now + one slot") never straddle a slot's end; the
    cycle's duration is timed with perf_counter, which keeps running."""
    time_machine.move_to(timezone.now(), tick=False)


def log(agent, strategy_name, count, successes, propensity, task_type="unit-tests"):
    """Logged tasks: decisions with their propensity, and their executions."""
    profile, _ = LearningProfile.objects.get_or_create(agent=agent)
    for number in range(count):
        profile.task_count += 1
        decision = Decision.objects.create(agent=agent, task_id=f"t{profile.task_count}", task_type=task_type,
                                           state_key="0.6,0.1,0.0,0.8,1.0", strategy=strategy(strategy_name),
                                           explored=propensity < 0.5, propensity=propensity, epsilon=0.2, q_value=0)
        Execution.objects.create(agent=agent, decision=decision, idempotency_key=str(decision.pk),
                                 request_digest="0", sequence=profile.task_count, task_id=decision.task_id,
                                 task_type=task_type, state_key=decision.state_key, next_state_key=decision.state_key,
                                 strategy=decision.strategy, success=number < successes, execution_time_ms=1000,
                                 reward=0, previous_q=0, q_value=0, response={})
    profile.save()


@pytest.fixture
def opportunity(alice):
    """Alice's policy mostly runs sequential-execution for unit tests (half
    succeed); parallel-execution, tried at random now and then, nearly
    always succeeded."""
    log(alice, "sequential-execution", 70, 35, 0.85)
    log(alice, "parallel-execution", 30, 27, 0.05)
    return alice


def test_it_starts_a_test_for_an_opportunity(opportunity):
    cycle = improvement.run_cycle(opportunity)
    test = ABTest.objects.get(agent=opportunity)
    assert test.state == ABTestState.RUNNING and test.source == "loop"
    # The control is the agent's own policy: no strategy is applied for the type.
    assert (test.control.strategy, test.treatment.strategy.name) == (None, "parallel-execution")
    assert ("always using parallel-execution would succeed in about 90% of unit-tests tasks (off-policy estimate "
            "from 100 logged tasks, effective sample 30) against 62% now") in test.hypothesis
    assert cycle.steps == ["performance", "failures", "opportunities", "applied"]
    assert {"kind": "abtest_created", "abtest": test.pk, "task_type": "unit-tests",
            "control": None, "treatment": "parallel-execution"} in cycle.decisions
    assert cycle.finished_at is not None and cycle.duration_ms > 0
    assert cycle.inputs["performance"]["tasks"] == 100


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


def test_no_opportunity_without_enough_evidence(alice):
    log(alice, "sequential-execution", 70, 35, 0.85)
    log(alice, "parallel-execution", 19, 19, 0.05)
    improvement.run_cycle(alice)
    assert not ABTest.objects.exists()


def test_a_strategy_picked_where_it_shines_is_no_opportunity(alice):
    # Parallel succeeded in 27 of 30 tasks, but the policy picked it where it
    # works (propensity 0.9) and it failed where it was explored: always
    # using it would do no better than now.
    log(alice, "sequential-execution", 60, 40, 0.85)
    log(alice, "parallel-execution", 27, 27, 0.9)
    log(alice, "parallel-execution", 3, 0, 0.05)
    improvement.run_cycle(alice)
    assert not ABTest.objects.exists()


def test_an_applied_strategy_is_the_control(opportunity):
    AppliedStrategy.objects.create(agent=opportunity, task_type="unit-tests", strategy=strategy("sequential-execution"))
    improvement.run_cycle(opportunity)
    test = ABTest.objects.get()
    assert test.control.strategy.name == "sequential-execution"


@pytest.fixture
def held_to_a_playbook(alice, bob):
    """Alice is held to sequential-execution for unit tests (half succeed)
    and has barely tried anything else; bob shared that parallel-execution
    succeeds in 39 of his 40 unit tests, and alice imported it."""
    AppliedStrategy.objects.create(agent=alice, task_type="unit-tests", strategy=strategy("sequential-execution"))
    log(alice, "sequential-execution", 40, 20, 0.95)
    log(alice, "parallel-execution", 2, 2, 0.05)
    shared_by(bob)
    sharing.import_shared()
    return alice


def test_it_tests_a_strategy_another_agent_shared(held_to_a_playbook):
    improvement.run_cycle(held_to_a_playbook)
    test = ABTest.objects.get(agent=held_to_a_playbook)
    assert (test.control.strategy.name, test.treatment.strategy.name) == ("sequential-execution",
                                                                           "parallel-execution")
    assert ("bob shared that parallel-execution succeeds in at least 87% of its unit-tests tasks (95 % lower bound "
            "over 40 tasks) against 52% now") in test.hypothesis


def test_a_shared_pattern_is_no_evidence_against_the_learned_policy(held_to_a_playbook):
    AppliedStrategy.objects.all().delete()
    improvement.run_cycle(held_to_a_playbook)
    assert not ABTest.objects.exists()


def test_a_shared_pattern_needs_enough_tasks_of_the_agent_to_compare(alice, bob):
    AppliedStrategy.objects.create(agent=alice, task_type="unit-tests", strategy=strategy("sequential-execution"))
    log(alice, "sequential-execution", 19, 9, 0.95)
    shared_by(bob)
    sharing.import_shared()
    improvement.run_cycle(alice)
    assert not ABTest.objects.exists()


def test_a_quarantined_import_is_no_evidence(held_to_a_playbook):
    sharing.quarantine(SharedPattern.objects.all(), "rolled back")
    improvement.run_cycle(held_to_a_playbook)
    assert not ABTest.objects.exists()


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


def _next_slot():
    return timezone.now() + timedelta(seconds=settings.CYCLE_SLOT_SECONDS)


def test_the_guard_reruns_a_lost_cycle(opportunity):
    result = improvement.rerun_lost_cycle(_next_slot())
    cycle = ImprovementCycle.objects.get()
    assert result["lost"] == improvement.slot_start().isoformat() == cycle.slot_start.isoformat()
    assert (cycle.trigger, cycle.steps) == ("guard", list(improvement.STEPS))
    assert cycle.finished_at is not None
    assert ABTest.objects.count() == 1


def test_the_guard_finishes_a_cycle_killed_midway(opportunity):
    killed = ImprovementCycle.objects.create(agent=opportunity, slot_start=improvement.slot_start(),
                                             steps=["performance", "failures", "opportunities"],
                                             started_at=timezone.now() - timedelta(hours=1))
    abtests.create(opportunity, "unit-tests", None, strategy("parallel-execution"), source="loop")
    assert improvement.rerun_lost_cycle(_next_slot())["lost"] == killed.slot_start.isoformat()
    killed.refresh_from_db()
    assert killed.steps == list(improvement.STEPS)
    assert killed.finished_at is not None
    assert ABTest.objects.count() == 1  # the committed step is not run twice


def test_the_guard_leaves_a_finished_slot_alone(opportunity):
    improvement.run_cycle(opportunity)
    assert improvement.rerun_lost_cycle(_next_slot()) == {"lost": None}
    assert ImprovementCycle.objects.get().trigger == "command"


def test_the_guard_leaves_a_running_cycle_alone(opportunity):
    now = _next_slot()
    ImprovementCycle.objects.create(agent=opportunity, slot_start=improvement.slot_start(), steps=["performance"],
                                    started_at=now - timedelta(minutes=1))
    assert improvement.rerun_lost_cycle(now) == {"lost": None}
    assert ImprovementCycle.objects.get().steps == ["performance"]


def test_the_guard_ignores_a_slot_before_the_fleet_worked(opportunity):
    assert improvement.rerun_lost_cycle() == {"lost": None}
    assert not ImprovementCycle.objects.exists()


def test_a_step_another_run_committed_meanwhile_is_skipped(opportunity):
    cycle = ImprovementCycle.objects.create(agent=opportunity, slot_start=improvement.slot_start(),
                                            steps=["performance"])

    def must_not_run(*args):
        raise AssertionError("the step ran twice")

    assert improvement._run_step(cycle.pk, "performance", must_not_run, opportunity, None, timezone.now()).steps == [
        "performance"]


def test_the_guard_is_scheduled_within_each_slot(settings):
    from qefleet import schedules

    job = {job.name: job for job in schedules.jobs()}["qefleet.learning.cycle_guard"]
    assert job.func == "learning.jobs.cycle_guard"
    assert job.minutes <= max(1, settings.CYCLE_SLOT_SECONDS // 60)
