"""Drilling an agent: on its own logs, kept, judged, alerted, swept, on demand and on schedule."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from learning import drills, jobs, operations
from learning.models import Alert, DrillRun, DrillTrigger, Safeguard
from qefleet.memory.models import AuditEvent

from .drill_helpers import logged_history


def test_a_drill_resamples_the_agents_own_policy_tasks(alice):
    logged_history(alice, tasks=400, tasks_per_hour=20)
    run = drills.drill(alice, DrillTrigger.COMMAND, seed=3)
    assert run.logged_tasks == 400
    assert run.figures["tasks_per_slot"] == pytest.approx(20, rel=0.01)  # 400 tasks over 20 hourly slots
    assert run.figures["aa"]["look_every"] == 10  # half a slot's tasks per arm
    assert run.figures["aa"]["runs"] > 0 and run.figures["stable"]["tasks"] > 0
    assert [drop["points"] for drop in run.figures["drops"]] == [5, 10, 20]
    assert {item["rule"] for item in run.figures["health"]} >= {"A/B false winners", "Safeguard false rollbacks"}


def test_the_drills_replay_the_agents_own_safeguard_settings(alice):
    logged_history(alice)
    Safeguard.objects.create(agent=alice, window=40, confidence_z=2.5)
    run = drills.drill(alice, DrillTrigger.COMMAND)
    assert run.figures["rule"]["window"] == 40 and run.figures["rule"]["z"] == 2.5


def test_too_few_logged_tasks_is_said_not_drilled(alice):
    logged_history(alice, tasks=50)
    with pytest.raises(drills.TooFewTasks, match="50 policy tasks"):
        drills.drill(alice, DrillTrigger.COMMAND)
    assert not DrillRun.objects.exists()


def test_a_rate_out_of_its_band_raises_one_alert_saying_what_to_change(alice, settings):
    """A slow agent (2 tasks an hour) cannot reach an A/B horizon in 30 days."""
    logged_history(alice, tasks=200, tasks_per_hour=0.5)
    drills.drill(alice, DrillTrigger.COMMAND)
    drills.drill(alice, DrillTrigger.COMMAND)
    alert = Alert.objects.get(kind=drills.ALERT_KIND)
    assert alert.occurrences == 2 and alert.agent == alice
    assert any("horizon" in finding for finding in alert.numbers["findings"])
    assert any("mde" in advice for advice in alert.numbers["advice"])


def test_the_daily_job_drills_every_agent_and_resolves_alerts_now_in_band(alice, bob):
    logged_history(alice, tasks=200, tasks_per_hour=0.5)
    logged_history(bob, tasks=300, seed=1)
    jobs.statistics_drills()
    assert DrillRun.objects.filter(trigger=DrillTrigger.SCHEDULE).count() == 2
    assert Alert.objects.open().filter(agent=alice, kind=drills.ALERT_KIND).exists()
    alice.executions.all().delete()
    logged_history(alice, tasks=300, success_rate=1.0)  # steady and busy: every rule in its band
    jobs.statistics_drills()
    assert all(item["in_band"] for item in DrillRun.objects.filter(agent=alice).first().figures["health"])
    assert not Alert.objects.open().filter(agent=alice, kind=drills.ALERT_KIND).exists()


def test_an_agent_too_quiet_to_drill_keeps_its_alert(alice):
    logged_history(alice, tasks=200, tasks_per_hour=0.5)
    jobs.statistics_drills()
    alice.executions.filter(sequence__gt=50).delete()
    assert jobs.statistics_drills()["skipped"] == ["alice"]
    assert Alert.objects.open().filter(agent=alice, kind=drills.ALERT_KIND).exists()


def test_runs_are_kept_90_days(alice):
    logged_history(alice)
    old = drills.drill(alice, DrillTrigger.COMMAND)
    recent = drills.drill(alice, DrillTrigger.COMMAND)
    DrillRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=91))
    DrillRun.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=89))
    jobs.prune_history()
    assert list(DrillRun.objects.values_list("pk", flat=True)) == [recent.pk]


def test_an_operator_drill_is_audited(alice, admin_user):
    logged_history(alice)
    run = operations.run_drills(alice, admin_user)
    assert run.trigger == DrillTrigger.OPERATOR
    event = AuditEvent.objects.get(action="run_drills")
    assert event.target == "agent:alice"


def test_the_command_drills_one_agent(alice, capsys):
    logged_history(alice)
    call_command("drills", agent="alice", seed=1)
    assert "A/B false winners" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No agent"):
        call_command("drills", agent="nobody")


def test_the_fleet_sums_counts_and_recomputes_intervals(alice, bob):
    logged_history(alice)
    logged_history(bob, seed=2)
    runs = [drills.drill(alice, DrillTrigger.COMMAND), drills.drill(bob, DrillTrigger.COMMAND)]
    fleet = drills.fleet_figures(DrillRun.objects.latest_per_agent())
    assert fleet["agents"] == 2
    assert fleet["aa"]["runs"] == sum(run.figures["aa"]["runs"] for run in runs)
    assert fleet["aa"]["hits"] == sum(run.figures["aa"]["hits"] for run in runs)
    assert fleet["stable"]["tasks"] == sum(run.figures["stable"]["tasks"] for run in runs)


def test_a_detection_target_the_fastest_rule_misses_is_out_of_reach_not_out_of_band():
    caught = {"high": 0.40}
    assert drills.detection_state({"high": 0.97}, caught) == drills.IN_BAND
    assert drills.detection_state({"high": 0.10}, caught) == drills.OUT_OF_REACH
    assert drills.detection_state({"high": 0.10}, {"high": 0.99}) == drills.OUT_OF_BAND
    assert drills.detection_state({"high": 0.10}) == drills.OUT_OF_BAND  # drilled before the fastest rule existed


def test_an_out_of_reach_target_raises_no_alert_and_the_run_says_so(alice):
    """Scores a coin flip decides (a spread near 0.4): no rule catches a
    10-point drop within 60 tasks, so the detection finding is out of reach;
    it is not what an alert asks an operator to change."""
    logged_history(alice, tasks=1000, success_rate=0.5, tasks_per_hour=200)
    run = drills.drill(alice, DrillTrigger.COMMAND, seed=4)
    detection = next(item for item in run.figures["health"] if item["rule"].startswith("Safeguard detection"))
    assert detection["state"] == drills.OUT_OF_REACH and detection["in_band"]
    assert "out of reach" in detection["finding"]
    alert = Alert.objects.open().filter(kind=drills.ALERT_KIND).first()
    assert alert is None or not any("10-point" in finding for finding in alert.numbers["findings"])
