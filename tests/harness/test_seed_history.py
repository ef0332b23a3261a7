"""seed_history: the simulated past of the demo fleet (for demos and benchmarks only).

One small history is generated for the module inside a transaction that is
rolled back at its end; each test runs in its own savepoint within it. The
events' window is shortened to 3 days so a 10-day history shows the cut.
"""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count, F, Max, Min
from django.utils import timezone

from learning import safeguard, tracker, versions
from learning.core import scoring
from learning.harness.history import constants as history_constants
from learning.models import (
    ABLook,
    ABTest,
    ABTestState,
    AppliedStrategy,
    Decision,
    Execution,
    LearningProfile,
    Rollback,
    Snapshot,
    StateVersion,
)
from qefleet.memory.fleet import DEMO_TEAMS
from qefleet.memory.models import Agent, Event, PerformanceMetric

DAYS, EVENTS, SAMPLES = 10, 2000, 500
EVENT_DAYS = 3
AGENTS = [agent_id for members in DEMO_TEAMS.values() for agent_id in members]

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(history_constants, "EVENT_SECONDS", EVENT_DAYS * 86400)
        with transaction.atomic():
            out = io.StringIO()
            call_command("seed_history", "--days", DAYS, "--events", EVENTS, "--samples", SAMPLES, stdout=out)
            yield out.getvalue()
            transaction.set_rollback(True)


def test_it_gives_the_17_agents_snapshots_over_the_days(seeded):
    now = timezone.now()
    assert "Made" in seeded
    spans = {row["agent__agent_id"]: row for row in Snapshot.objects.values("agent__agent_id").annotate(
        first=Min("created_at"), last=Max("created_at"), count=Count("pk"))}
    assert sorted(spans) == sorted(AGENTS)
    full = [agent for agent, span in spans.items() if span["first"] < now - timedelta(days=DAYS - 0.1)]
    assert len(full) == len(AGENTS) - 2  # two newcomers joined later and bootstrapped from their swarm
    for span in spans.values():
        assert now - timedelta(hours=2) < span["last"] <= now
        assert span["count"] >= round((1 - history_constants.NEWCOMERS_JOIN) * DAYS * 24)
    for profile in LearningProfile.objects.select_related("agent"):
        last = Snapshot.objects.filter(agent=profile.agent).latest("created_at")
        assert last.score == pytest.approx(scoring.composite_score(
            last.success_rate, scoring.time_score(last.avg_execution_ms), last.error_rate, last.satisfaction,
            last.efficiency))
        assert profile.task_count == last.last_task == Execution.objects.filter(agent=profile.agent).aggregate(
            top=Max("sequence"))["top"]
        assert Execution.objects.filter(agent=profile.agent).count() == history_constants.EXPERIENCES
        assert tracker.current_improvement(profile.agent, profile)[1] == pytest.approx(last.improvement)


def test_it_writes_the_events_asked_for_within_their_ttl(seeded):
    now = timezone.now()
    assert Event.with_expired.count() == Event.objects.count() == EVENTS
    assert Event.objects.aggregate(oldest=Min("timestamp"))["oldest"] > now - timedelta(days=EVENT_DAYS)
    assert not Event.objects.exclude(expires_at=F("timestamp") + timedelta(days=EVENT_DAYS)).exists()
    types = set(Event.objects.values_list("type", flat=True))
    assert {"learning:training", "learning:improvement"} <= types
    event = Event.objects.filter(type="learning:training").select_related("owner").first()
    assert (event.access_level, event.team, event.swarm) == ("swarm", event.owner.team, event.owner.swarm)


def test_it_writes_the_performance_samples_asked_for(seeded):
    samples = PerformanceMetric.objects.filter(metric="task_score")
    assert samples.count() == SAMPLES
    span = samples.aggregate(first=Min("timestamp"), last=Max("timestamp"))
    assert span["last"] - span["first"] > timedelta(days=DAYS - 1)
    assert set(samples.values_list("owner", flat=True)) <= set(AGENTS)


def test_it_has_ab_tests_in_every_state_and_looks_at_the_running_ones(seeded):
    states = set(ABTest.objects.values_list("state", flat=True))
    assert {ABTestState.KEPT, ABTestState.REVERTED, ABTestState.INCONCLUSIVE, ABTestState.ABORTED,
            ABTestState.CONTROL_WINS, ABTestState.RUNNING, ABTestState.MONITORING} <= states
    assert ABTest.objects.filter(state=ABTestState.ABORTED, decision__contains="sample ratio mismatch").exists()
    assert ABTest.objects.filter(state=ABTestState.CONTROL_WINS, decision__startswith="control wins").exists()
    # A control is the applied strategy or else the learned policy, whose tasks keep their own choice.
    assert ABTest.objects.filter(arms__role="control", arms__strategy__isnull=True).exists()
    policy_arm = Decision.objects.filter(abtest_arm__role="control", abtest_arm__strategy__isnull=True)
    assert not policy_arm.filter(fallback="abtest").exists()
    assert Decision.objects.filter(abtest_arm__role="treatment").exclude(fallback="abtest").count() == 0
    for test in ABTest.objects.prefetch_related("transitions", "looks", "arms"):
        moments = [item.at for item in test.transitions.all()]
        assert moments == sorted(moments) and test.transitions.first().to_state == ABTestState.DRAFT
        assert test.transitions.last().to_state == test.state
    running = ABTest.objects.filter(state=ABTestState.RUNNING)
    assert running.count() >= 2
    last_slot = ABLook.objects.aggregate(last=Max("slot_start"))["last"]
    for test in running:
        looks = list(test.looks.all())
        assert all(look.outcome == "running" for look in looks)
        assert looks[-1].slot_start == last_slot and looks[0].slot_start <= test.started_at
        assert [look.slot_start for look in looks] == [looks[0].slot_start + timedelta(hours=i)
                                                      for i in range(len(looks))]  # one per slot since it started
        assert [round(looks[-1].low, 4), round(looks[-1].high, 4)] == test.verdict["interval"]
        assert looks[-1].n_control <= test.control.n and looks[-1].n_treatment <= test.treatment.n
    for applied in AppliedStrategy.objects.filter(source__startswith="abtest:"):
        test = ABTest.objects.get(pk=applied.source.split(":")[1])
        assert test.state in (ABTestState.KEPT, ABTestState.MONITORING)
        assert applied.strategy == test.treatment.strategy


def test_it_makes_versions_that_decode_preview_and_match_the_live_state(seeded):
    for version in StateVersion.objects.all():
        assert versions.checksum(versions.decode(version)["state"]) == version.checksum
    assert StateVersion.objects.filter(pinned=True).count() == len(AGENTS)
    for profile in LearningProfile.objects.select_related("agent", "live_version"):
        assert profile.live_version.checksum == versions.checksum(versions.learned_state(profile.agent, profile))
        assert profile.policy_version.startswith(f"{profile.live_version.label}+")
    profile = LearningProfile.objects.select_related("agent", "live_version").filter(enabled=True).first()
    target = StateVersion.objects.filter(agent=profile.agent, known_good=True).exclude(
        pk=profile.live_version_id).first()
    preview = versions.preview(profile.agent, profile, target)
    assert preview["version"] == target.label and preview["q_entries"]["restored"] == target.q_entries


def test_it_rolls_back_to_a_generated_known_good_version(seeded):
    assert Rollback.objects.filter(automatic=True).exists() and Rollback.objects.filter(automatic=False).exists()
    profile = LearningProfile.objects.select_related("agent", "live_version").filter(enabled=True).first()
    target = StateVersion.objects.filter(agent=profile.agent, known_good=True).exclude(
        pk=profile.live_version_id).earliest("number")
    with transaction.atomic():
        safeguard.roll_back(profile.agent, profile, target, automatic=False, actor="operator")
    profile.refresh_from_db()
    assert profile.live_version == target and not profile.enabled
    assert versions.checksum(versions.learned_state(profile.agent, profile)) == target.checksum


def test_it_refuses_a_second_run_without_replace(seeded):
    with pytest.raises(CommandError, match="--replace"):
        call_command("seed_history", "--days", 1, "--events", 10, "--samples", 10, stdout=io.StringIO())


def test_it_replaces_the_history_with_replace(seeded):
    call_command("seed_history", "--days", 1, "--events", 300, "--samples", 100, "--replace", "--seed", 2,
                 stdout=io.StringIO())
    assert Event.with_expired.count() == 300 and PerformanceMetric.objects.count() == 100
    # One day of slots, ending at the last boundary at least two minutes past.
    assert Snapshot.objects.aggregate(first=Min("created_at"))["first"] > timezone.now() - timedelta(days=1, hours=2)
    assert LearningProfile.objects.count() == Agent.objects.count() == len(AGENTS)
    for profile in LearningProfile.objects.select_related("agent", "live_version"):
        assert profile.live_version.checksum == versions.checksum(versions.learned_state(profile.agent, profile))
