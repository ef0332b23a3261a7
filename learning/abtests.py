"""A/B tests: creation, assignment, outcomes, decisions, applying and monitoring.

The lifecycle (ABTestState) moves only through `transition`, which times,
records and events every change. Decisions follow learning/core/stats.py: an
always-valid interval may stop a test early, otherwise it is decided once at
its horizon; a sample-ratio mismatch aborts it; across the fleet's tests
looked at in the same slot, discoveries are kept only when they survive
Benjamini-Hochberg. Each test is decided in its own short transaction.
"""

import hashlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from qefleet.memory import rows
from qefleet.memory.errors import Conflict, Invalid

from . import alerts, versions
from .core import stats
from .events import emit
from .models import (
    OPEN_TEST_STATES,
    ABArm,
    ABLook,
    ABTest,
    ABTestState,
    ABTransition,
    AppliedStrategy,
    ArmRole,
    Execution,
    LearnedPattern,
    LearningProfile,
    Safeguard,
    Severity,
    VersionReason,
)

EVENTS = {
    ABTestState.RUNNING: "learning:abtest_started",
    ABTestState.WINNER: "learning:abtest_completed",
    ABTestState.CONTROL_WINS: "learning:abtest_completed",
    ABTestState.INCONCLUSIVE: "learning:abtest_completed",
    ABTestState.ABORTED: "learning:abtest_completed",
    ABTestState.APPLIED: "learning:strategy_changed",
    ABTestState.REVERTED: "learning:strategy_changed",
}
SRM_MIN_SAMPLES = 20  # a ratio of a handful of tasks says nothing


def transition(test, to_state, reason="", now=None, **fields):
    """Move `test` to `to_state`: timestamped, recorded and evented."""
    now = now or timezone.now()
    ABTransition.objects.create(test=test, from_state=test.state, to_state=to_state, reason=reason, at=now)
    test.state = to_state
    for name, value in fields.items():
        setattr(test, name, value)
    test.save()
    if to_state in EVENTS:
        emit(test.agent, EVENTS[to_state], {"abtest_id": test.pk, "task_type": test.task_type, "state": to_state,
                                            "reason": reason})


# --- creating and starting -------------------------------------------------------------


def _base_rate(agent, task_type, strategy):
    """The control's success rate so far: its strategy's, or the task type's
    under the learned policy (0.5, the worst case for the sample size, when
    there is little history)."""
    patterns = LearnedPattern.objects.filter(agent=agent, task_type=task_type)
    if strategy is not None:
        patterns = patterns.filter(strategy=strategy)
    found = patterns.aggregate(uses=Sum("uses"), successes=Sum("successes"))
    return found["successes"] / found["uses"] if (found["uses"] or 0) >= 10 else 0.5


def check_design(mde, power, control_weight):
    """Invalid, naming the field, unless the design is one a test can use
    (stats.MDE_RANGE and the others: a horizon it reaches)."""
    for field, value, (low, high), words in (
            ("mde", mde, stats.MDE_RANGE, "The minimum detectable effect"),
            ("power", power, stats.POWER_RANGE, "Power"),
            ("control_weight", control_weight, stats.CONTROL_WEIGHT_RANGE, "The control's weight")):
        if not low <= value <= high:
            raise Invalid(f"{words} must be from {low} to {high}.", field)


@transaction.atomic
def create(agent, task_type, control, treatment, *, source, created_by="", name="", hypothesis="",
           mde=stats.DEFAULT_MDE, power=stats.DEFAULT_POWER, control_weight=0.5, start=True):
    """A new test of `treatment` (a catalog strategy) against `control` for
    one agent and task type; started at once unless `start` is False.

    A control of None is the agent's own policy (what it would be
    recommended anyway, exploration included), so only the treatment's
    share of tasks departs from normal operation."""
    if control is not None and control.pk == treatment.pk:
        raise Invalid("The arms must be two different strategies.", "treatment")
    if not treatment.active or (control is not None and not control.active):
        raise Invalid("The strategies must be active in the catalog.", "treatment")
    check_design(mde, power, control_weight)
    test = ABTest(agent=agent, task_type=task_type, source=source, created_by=created_by, mde=mde, power=power,
                  name=name or f"{task_type}: {treatment.name} vs {control.name if control else 'learned policy'}",
                  hypothesis=hypothesis)
    try:
        with transaction.atomic():
            test.save()
    except IntegrityError:
        raise Conflict(f"{agent.agent_id} already has an open A/B test for {task_type}.", "task_type") from None
    ABArm.objects.create(test=test, role=ArmRole.CONTROL, strategy=control, weight=control_weight)
    ABArm.objects.create(test=test, role=ArmRole.TREATMENT, strategy=treatment, weight=1 - control_weight)
    ABTransition.objects.create(test=test, to_state=ABTestState.DRAFT, reason=f"created by {source}")
    if start:
        begin(test)
    return test


def begin(test, now=None):
    """Draft -> Running, with the horizon from the test's effect size and power."""
    if test.state != ABTestState.DRAFT:
        return False
    rate = _base_rate(test.agent, test.task_type, test.control.strategy)
    horizon = stats.samples_per_arm(test.mde, test.power, base_rate=rate)
    now = now or timezone.now()
    transition(test, ABTestState.RUNNING, f"horizon {horizon} tasks per arm (control success rate {rate:.2f})",
               now, horizon=horizon, started_at=now)
    return True


# --- assignment and outcomes --------------------------------------------------------------


def _unit(test_id, task_id):
    """A uniform number in [0, 1) fixed by the test and the task id: the same
    task always gets the same arm, different tasks are independent draws."""
    digest = hashlib.sha256(f"{test_id}:{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# Asked on every recommendation: rows.Query spares compiling it each time.
RUNNING_ARMS = rows.Query(
    ABArm, where=f"T.test_id IN (SELECT id FROM {ABTest._meta.db_table} WHERE agent_id = %s AND task_type = %s "
                 "AND state = %s)",
    where_fields=[ABTest._meta.get_field(name) for name in ("agent", "task_type", "state")])


def assigned_arm(agent, task_type, task_id):
    """The arm of the running test covering this task type, or None. The
    arm's `share` is its assignment probability."""
    arms = sorted(RUNNING_ARMS(agent, task_type, ABTestState.RUNNING), key=lambda arm: arm.role)
    if not arms:
        return None
    total = sum(arm.weight for arm in arms)
    draw = _unit(arms[0].test_id, task_id) * total
    for arm in arms:
        draw -= arm.weight
        if draw < 0 or arm is arms[-1]:
            arm.share = arm.weight / total
            return arm


def record_outcome(arm_id, success, execution_time_ms, had_errors):
    """Count a reported task in its arm while the test runs (one UPDATE)."""
    ABArm.objects.filter(pk=arm_id, test__state=ABTestState.RUNNING).update(
        n=F("n") + 1, successes=F("successes") + int(success), total_ms=F("total_ms") + execution_time_ms,
        error_tasks=F("error_tasks") + int(had_errors))


# --- looking and deciding -----------------------------------------------------------------


def _look(test, slot_start, now):
    """This slot's verdict on a running test, recorded once per slot."""
    control, treatment = test.control.stats, test.treatment.stats
    srm = stats.srm_p_value([control.n, treatment.n], [test.control.weight, test.treatment.weight])
    verdict = stats.decide(control, treatment, test.horizon, previous_p=test.verdict.get("p_min", 1.0))
    ABLook.objects.get_or_create(test=test, slot_start=slot_start, defaults={
        "n_control": control.n, "n_treatment": treatment.n, "low": verdict.interval[0], "high": verdict.interval[1],
        "p_value": verdict.p_value, "srm_p_value": srm, "outcome": verdict.outcome, "at": now})
    return verdict, srm


def _record(test, verdict, srm):
    test.verdict = {
        "outcome": verdict.outcome, "interval": [round(value, 4) for value in verdict.interval],
        "p_value": verdict.p_value, "p_min": min(verdict.p_value, test.verdict.get("p_min", 1.0))
        if verdict.sequential else test.verdict.get("p_min", 1.0),
        "sequential": verdict.sequential, "blocked_by": list(verdict.blocked_by), "srm_p_value": srm,
        "control": test.control.stats.to_dict(), "treatment": test.treatment.stats.to_dict(),
    }
    test.decision = verdict.reason


def review(slot_start, agent_ids=None, now=None):
    """Look at every running test once in this slot and decide those that are
    done; returns what was decided. Tests of agents whose learning is
    disabled wait; `agent_ids` limits the decisions (all tests still count
    towards the false discovery rate)."""
    now = now or timezone.now()
    running = list(ABTest.objects.running().exclude(agent__learning__enabled=False)
                   .select_related("agent").prefetch_related("arms__strategy"))
    looks = [(test, *_look(test, slot_start, now)) for test in running]
    discoveries = stats.benjamini_hochberg([verdict.p_value for _, verdict, _ in looks])
    decided = []
    for (test, verdict, srm), discovered in zip(looks, discoveries):
        if agent_ids is not None and test.agent.agent_id not in agent_ids:
            continue
        outcome = _settle(test.pk, verdict, srm, discovered, len(looks), now)
        if outcome is not None:
            decided.append({"abtest": test.pk, "agent": test.agent.agent_id, "outcome": outcome})
    return decided


@transaction.atomic
def _settle(test_id, verdict, srm, discovered, concurrent, now):
    test = ABTest.objects.select_for_update(of=("self",)).select_related("agent").prefetch_related(
        "arms__strategy").filter(pk=test_id, state=ABTestState.RUNNING).first()
    if test is None:  # decided or aborted meanwhile
        return None
    _record(test, verdict, srm)
    total = sum(arm.n for arm in test.arms.all())
    if srm < stats.SRM_P and total >= SRM_MIN_SAMPLES:
        reason = mismatch(srm, test.control.n, test.treatment.n)
        transition(test, ABTestState.ABORTED, reason, now, decision=reason, decided_at=now, finished_at=now)
        alerts.raise_alert("abtest:srm", Severity.WARNING, f"A/B test {test.pk} of {test.agent.agent_id} aborted: "
                           "sample ratio mismatch", test.verdict, test.agent, dedup_key=f"abtest:srm:{test.pk}",
                           task_type=test.task_type)
        return ABTestState.ABORTED
    at_horizon = min(arm.n for arm in test.arms.all()) >= test.horizon
    if verdict.outcome in ("winner", "loser") and not discovered:
        # The state says what happened, so the words start with it, not with
        # the verdict's outcome ("winner") that false-discovery control overruled.
        finding = verdict.reason.partition(": ")[2]
        if not at_horizon:
            test.decision = (f"running: {finding} clears zero, but not after false-discovery control "
                             f"across {concurrent} running tests")
            test.save()
            return None
        verdict_state, reason = ABTestState.INCONCLUSIVE, (
            f"inconclusive: {finding}, but not significant after false-discovery control across "
            f"{concurrent} running tests; {test.control.label} stays")
    elif verdict.outcome == "running":
        test.save()
        return None
    else:
        verdict_state, reason, to_apply = conclusion(verdict, test.control.label)
        if to_apply:
            transition(test, ABTestState.WINNER, reason, now, decision=reason, decided_at=now)
            apply(test, now)
            return ABTestState.APPLIED
    transition(test, verdict_state, reason, now, decision=reason, decided_at=now, finished_at=now)
    return verdict_state


def mismatch(srm, n_control, n_treatment):
    """The decision that aborts a test for a sample-ratio mismatch."""
    return (f"aborted: sample ratio mismatch (chi-square p = {srm:.2g}) between the arms' "
            f"{n_control} and {n_treatment} tasks; assignment or reporting is broken")


def conclusion(verdict, control_label):
    """(state, decision in words, whether to apply the treatment) of a
    verdict that ends a test."""
    if verdict.outcome == "inconclusive":
        return ABTestState.INCONCLUSIVE, f"{verdict.reason}; {control_label} stays", False
    if verdict.outcome == "loser":
        # The control won: its own state, so no badge calls it a winner.
        return (ABTestState.CONTROL_WINS,
                f"control wins: {verdict.reason.partition(': ')[2]}; {control_label} stays", False)
    if verdict.blocked_by:
        guardrails = " and ".join(verdict.blocked_by)
        plural = "s" if len(verdict.blocked_by) > 1 else ""
        return ABTestState.WINNER, f"{verdict.reason}; not applied: the {guardrails} guardrail{plural} failed", False
    return ABTestState.WINNER, verdict.reason, True


# --- applying, monitoring, reverting --------------------------------------------------------


def apply(test, now=None):
    """Make the winning treatment the agent's applied strategy for the task
    type (a version is captured first), then monitor it."""
    now = now or timezone.now()
    agent, treatment = test.agent, test.treatment
    profile = LearningProfile.locked(agent)
    before = versions.capture(agent, VersionReason.BEFORE_APPLY, profile)
    previous = AppliedStrategy.objects.filter(agent=agent, task_type=test.task_type).first()
    AppliedStrategy.objects.update_or_create(agent=agent, task_type=test.task_type, defaults={
        "strategy": treatment.strategy, "source": f"abtest:{test.pk}", "applied_at": now})
    winners = Execution.objects.filter(decision__abtest_arm=treatment).scores()
    transition(test, ABTestState.APPLIED,
               f"{treatment.label} applied for {test.task_type} "
               f"(was {previous.strategy.name if previous else 'the learned policy'})", now,
               previous_strategy=previous.strategy if previous else None, version_before=before, applied_at=now,
               reference_score=float(winners.mean()) if len(winners) else None,
               reference_spread=stats.standard_error(winners) if len(winners) else 0.0)
    transition(test, ABTestState.MONITORING, f"watched for {ABTest.MONITOR_DAYS} days with the safeguard's rule",
               now, monitor_until=now + timedelta(days=ABTest.MONITOR_DAYS))


def monitor(agent, now=None):
    """Check the agent's applied winners with the safeguard's rule for their
    task type; revert on sustained degradation, keep after the monitoring
    period. Returns what changed."""
    now = now or timezone.now()
    guard = Safeguard.objects.filter(agent=agent).first() or Safeguard(agent=agent)
    changed = []
    for test_id in ABTest.objects.filter(agent=agent, state=ABTestState.MONITORING).values_list("pk", flat=True):
        outcome = _check_applied(test_id, guard, now)
        if outcome is not None:
            changed.append({"abtest": test_id, "outcome": outcome})
    return changed


@transaction.atomic
def _check_applied(test_id, guard, now):
    test = ABTest.objects.select_for_update(of=("self",)).select_related("agent").prefetch_related(
        "arms__strategy").filter(pk=test_id, state=ABTestState.MONITORING).first()
    if test is None:
        return None
    recent = Execution.objects.filter(agent=test.agent, task_type=test.task_type, created_at__gte=test.applied_at)
    window = recent.order_by("-sequence")[:guard.window].scores()
    if test.reference_score is not None and len(window) >= guard.window:
        state, change = stats.judge(window, test.reference_score, test.reference_spread, guard.threshold_pct,
                                        guard.confidence_z)
        test.degraded_checks = test.degraded_checks + 1 if state == "degraded" else 0
        test.verdict = {**test.verdict, "monitoring": {"state": state, "change_pct": round(change, 2),
                                                       "checks": test.degraded_checks, "at": now.isoformat()}}
        if test.degraded_checks >= guard.consecutive:
            revert(test, f"degraded {change:+.1f}% against the winning arm's score on "
                         f"{test.degraded_checks} checks in a row", now)
            return ABTestState.REVERTED
    if now >= test.monitor_until:
        transition(test, ABTestState.KEPT, f"healthy through {ABTest.MONITOR_DAYS} days of monitoring", now,
                   finished_at=now)
        return ABTestState.KEPT
    test.save()
    return None


def revert(test, reason, now=None, alert=True):
    """Put back the strategy the winner replaced (or the learned policy)."""
    now = now or timezone.now()
    applied = AppliedStrategy.objects.filter(agent=test.agent, task_type=test.task_type,
                                             source=f"abtest:{test.pk}")
    if test.previous_strategy_id is not None:
        applied.update(strategy=test.previous_strategy_id, source=f"revert:abtest:{test.pk}", applied_at=now)
    else:
        applied.delete()
    transition(test, ABTestState.REVERTED, reason, now, finished_at=now)
    if alert:
        alerts.raise_alert("abtest:reverted", Severity.WARNING,
                           f"{test.agent.agent_id}: {test.treatment.strategy.name} reverted for {test.task_type}; "
                           f"{reason}", test.verdict.get("monitoring", {}), test.agent,
                           dedup_key=f"abtest:reverted:{test.pk}", task_type=test.task_type)


@transaction.atomic
def abort(test_id, reason, now=None):
    """Stop a draft or running test; False when it was no longer open."""
    test = ABTest.objects.select_for_update().filter(pk=test_id, state__in=OPEN_TEST_STATES).first()
    if test is None:
        return False
    now = now or timezone.now()
    transition(test, ABTestState.ABORTED, reason, now, decision=reason, decided_at=now, finished_at=now)
    return True


def on_rollback(agent, target, now=None):
    """A rollback ends the agent's experiments: open tests are aborted, and
    winners applied after the restored version was captured are reverted
    (the restore already put back the strategies of that version). A winner
    the restored version applies while its test says reverted (rolling
    forward over the rollback that reverted it, or back to before a revert)
    is live again, so it is monitored again."""
    now = now or timezone.now()
    for test_id in ABTest.objects.open().filter(agent=agent).values_list("pk", flat=True):
        abort(test_id, f"aborted: {agent.agent_id} was rolled back to {target.label}", now)
    for test in ABTest.objects.filter(agent=agent, state=ABTestState.MONITORING,
                                      applied_at__gt=target.created_at).select_for_update():
        transition(test, ABTestState.REVERTED, f"reverted: {agent.agent_id} was rolled back to {target.label}", now,
                   finished_at=now)
    applied = [source.partition(":")[2] for source in AppliedStrategy.objects.filter(
        agent=agent, source__startswith="abtest:").values_list("source", flat=True)]
    for test in ABTest.objects.filter(agent=agent, state=ABTestState.REVERTED,
                                      pk__in=[int(pk) for pk in applied if pk.isdigit()]).select_for_update():
        transition(test, ABTestState.MONITORING, f"applied again: {agent.agent_id} returned to {target.label}, "
                   "which applies it", now, finished_at=None)
