"""The improvement cycle (seed sections 2, 6 and 7), once per agent and slot.

Steps, in order: analyse performance; evaluate and apply mitigations for
frequent failure patterns; discover opportunities and start A/B tests for
them; check applied winners. Running tests are then decided for the whole
fleet at once (abtests.review), so the false discovery rate is controlled
across every concurrent test.

A cycle is idempotent per agent and slot: its row records each finished
step, and a re-run (after a crash, a lost task or a second click) skips them.
A step commits together with its mark, holding the cycle row's lock, so a
step's effects land exactly once even when two runs overlap; each step is a
short transaction of its own, so agents' reports never wait long.
"""

import logging
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from qefleet.memory.errors import Conflict

from . import abtests, mitigations, sharing, tracker
from .core import stats
from .models import (
    OPEN_TEST_STATES,
    ABArm,
    ABTest,
    ABTestState,
    AppliedStrategy,
    Execution,
    FailurePattern,
    ImprovementCycle,
    LearningMode,
    LearningProfile,
    PatternImport,
    Strategy,
)

EXPERIENCES = 1000       # the logged tasks opportunities are estimated from
RECENT = 100             # the task type's latest tasks that say how the agent does now
MIN_EVIDENCE = 20        # effective sample of a candidate's estimate
SUCCESS_MARGIN = 0.05    # how much better always using it must look
RETEST_AFTER = timedelta(days=7)  # a decided pair is not tested again sooner
MAX_NEW_TESTS = 3        # per agent and cycle

logger = logging.getLogger("qefleet.learning")


def slot_start(now=None):
    """The start of the cycle slot `now` falls in (slots count from the epoch)."""
    now = now or timezone.now()
    seconds = settings.CYCLE_SLOT_SECONDS
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=dt_timezone.utc)


# --- the steps -------------------------------------------------------------------------------


def analyse_performance(agent, profile, now):
    score, change = tracker.current_improvement(agent, profile)
    return {"performance": {"score": score, "improvement": change, "baseline": profile.baseline_score,
                            "tasks": profile.task_count, "epsilon": profile.exploration_rate}}, []


def handle_failures(agent, profile, now):
    judged = mitigations.evaluate(agent, now)
    applied = mitigations.activate(agent, profile, now)
    frequent = list(FailurePattern.objects.filter(agent=agent, frequency__gte=mitigations.MIN_FAILURES)
                    .values("task_type", "failure_class", "frequency", "confidence"))
    return ({"failure_patterns": frequent},
            [{"kind": "mitigation_applied", **item} for item in applied]
            + [{"kind": "mitigation_judged", **item} for item in judged])


def find_opportunities(agent, now):
    """Task types where always using one strategy would beat what the agent
    does now: [(task type, control strategy or None, candidate, why)], the
    best candidate per task type, the control being the applied strategy or
    else the learned policy (None).

    What the agent does now is the success rate of the task type's RECENT
    latest tasks (the policy improves, so older tasks understate it). The
    evidence that a candidate beats it by SUCCESS_MARGIN is, in order:

    - the agent's own: an off-policy estimate of always using it, from its
      last EXPERIENCES logged decisions with their propensities, on an
      effective sample of at least MIN_EVIDENCE. (A strategy's raw success
      rate would mislead: the policy picks it mostly where it shines.)
    - else, for an agent held to an applied strategy, another agent's: the
      Wilson lower bound of a pattern it imported from its swarm, when it has
      at least MIN_EVIDENCE tasks of the type. Held to one strategy, it
      rarely tries others, so this is how it learns of a better one; being
      the source's raw success rate, the figure can be optimistic, and the
      test settles it. Against a learned policy it is no evidence: that
      policy already uses the strategy where it shines, which is where the
      source's rate comes from.
    """
    busy = set(ABTest.objects.filter(agent=agent, state__in=(*OPEN_TEST_STATES, ABTestState.MONITORING))
               .values_list("task_type", flat=True))
    recent = _recently_tested(agent, now)
    applied = dict(AppliedStrategy.objects.filter(agent=agent).values_list("task_type", "strategy_id"))
    imported = _best_imports(agent)
    found = []
    for task_type, rows in sorted(_logged_decisions(agent).items()):
        if task_type in busy:
            continue
        control_id = applied.get(task_type)
        best = _best_candidate(task_type, rows, control_id, recent, imported)
        if best is not None:
            control = Strategy.by_id(control_id) if control_id else None
            found.append((task_type, control, *best))
    return found


def _recently_tested(agent, now):
    """{(task type, control id, treatment id)} of the agent's tests since RETEST_AFTER."""
    pairs = {}
    for test_id, task_type, role, strategy_id in (
            ABArm.objects.filter(test__agent=agent, test__created_at__gte=now - RETEST_AFTER)
            .values_list("test_id", "test__task_type", "role", "strategy_id")):
        pairs.setdefault((test_id, task_type), {})[role] = strategy_id
    return {(task_type, arms.get("control"), arms.get("treatment")) for (_, task_type), arms in pairs.items()}


def _best_imports(agent):
    """{(task type, strategy id): (lower bound, uses, source)} of the agent's
    live imports, the highest lower bound per pair."""
    imported = {}
    for task_type, strategy_id, lower_bound, uses, source in (
            PatternImport.objects.filter(agent=agent, status__in=sharing.LIVE_IMPORTS)
            .values_list("shared__task_type", "shared__strategy_id", "shared__lower_bound", "shared__uses",
                         "shared__source__agent_id")):
        if lower_bound > imported.get((task_type, strategy_id), (0,))[0]:
            imported[(task_type, strategy_id)] = (lower_bound, uses, source)
    return imported


def _logged_decisions(agent):
    """{task type: [(strategy id, success, propensity)]} of the last EXPERIENCES tasks, newest first."""
    logged = {}
    for task_type, strategy_id, success, propensity in (
            Execution.objects.filter(agent=agent, decision__isnull=False).order_by("-sequence")
            .values_list("task_type", "strategy_id", "success", "decision__propensity")[:EXPERIENCES]):
        logged.setdefault(task_type, []).append((strategy_id, success, propensity))
    return logged


def _best_candidate(task_type, rows, control_id, recent, imported):
    """(candidate, why) of the strategy with the best evidence of beating the
    task type's recent success rate by SUCCESS_MARGIN, or None."""
    strategy_ids, successes, propensities = (np.array(column) for column in zip(*rows))
    current = float(successes[:RECENT].mean())  # newest first
    best = None
    for candidate in Strategy.catalog():
        if candidate.pk == control_id or (task_type, control_id, candidate.pk) in recent:
            continue
        estimate, effective = stats.off_policy_value(strategy_ids == candidate.pk, successes, propensities)
        if estimate is not None and effective >= MIN_EVIDENCE:
            evidence = (f"always using {candidate.name} would succeed in about {estimate:.0%} of {task_type} "
                        f"tasks (off-policy estimate from {len(rows)} logged tasks, effective sample "
                        f"{effective:.0f})")
        elif control_id and (task_type, candidate.pk) in imported and len(rows) >= MIN_EVIDENCE:
            estimate, uses, source = imported[(task_type, candidate.pk)]
            evidence = (f"{source} shared that {candidate.name} succeeds in at least {estimate:.0%} of its "
                        f"{task_type} tasks (95 % lower bound over {uses} tasks)")
        else:
            continue
        if estimate - current >= SUCCESS_MARGIN and (best is None or estimate > best[0]):
            best = (estimate, candidate, evidence)
    if best is None:
        return None
    _, candidate, evidence = best
    return candidate, f"{evidence} against {current:.0%} now; testing whether it is really better"


def start_tests(agent, profile, now):
    opportunities = find_opportunities(agent, now)
    created = []
    for task_type, control, candidate, why in opportunities[:MAX_NEW_TESTS]:
        try:
            test = abtests.create(agent, task_type, control, candidate, source="loop",
                                  created_by="improvement cycle", hypothesis=why,
                                  mde=min(stats.MDE_RANGE[1], settings.ABTEST_MDE_POINTS / 100))
        except Conflict:  # an operator opened one meanwhile
            continue
        created.append({"kind": "abtest_created", "abtest": test.pk, "task_type": task_type,
                        "control": control.name if control else None, "treatment": candidate.name})
    inputs = {"opportunities": [{"task_type": task_type, "control": control.name if control else None,
                                 "candidate": candidate.name, "why": why}
                                for task_type, control, candidate, why in opportunities]}
    return inputs, created


def check_applied(agent, profile, now):
    return {}, [{"kind": "applied_strategy", **item} for item in abtests.monitor(agent, now)]


STEPS = {
    "performance": analyse_performance,
    "failures": handle_failures,
    "opportunities": start_tests,
    "applied": check_applied,
}


# --- running cycles ----------------------------------------------------------------------------


@transaction.atomic
def _run_step(cycle_id, name, step, agent, profile, now):
    """Run one step unless it is done, committing it with its mark; the
    cycle as it stands afterwards."""
    cycle = ImprovementCycle.objects.select_for_update().get(pk=cycle_id)
    if name in cycle.steps:
        return cycle
    started = time.perf_counter()
    inputs, decisions = step(agent, profile, now)
    cycle.steps = [*cycle.steps, name]
    cycle.inputs = {**cycle.inputs, **inputs}
    cycle.decisions = [*cycle.decisions, *decisions]
    cycle.duration_ms = (cycle.duration_ms or 0.0) + (time.perf_counter() - started) * 1000
    cycle.save(update_fields=["steps", "inputs", "decisions", "duration_ms"])
    return cycle


def run_agent_steps(agent, slot, now, trigger, profile=None):
    """The agent's steps for `slot`, skipping those already done; the cycle,
    or None when the agent's learning is disabled."""
    profile = profile or LearningProfile.objects.filter(agent=agent).first()
    if profile is None or not profile.enabled:
        return None
    cycle, _ = ImprovementCycle.objects.get_or_create(agent=agent, slot_start=slot,
                                                      defaults={"trigger": trigger, "started_at": now})
    for name, step in STEPS.items():
        if name not in cycle.steps:
            cycle = _run_step(cycle.pk, name, step, agent, profile, now)
    return cycle


def _record_review(cycles, decided):
    for cycle in cycles:
        mine = [{"kind": "abtest_decided", **item} for item in decided if item["agent"] == cycle.agent.agent_id]
        if mine or cycle.finished_at is None:
            cycle.decisions = [*cycle.decisions, *mine]
            cycle.finished_at = cycle.finished_at or timezone.now()
            cycle.save(update_fields=["decisions", "finished_at"])


def run_cycle(agent, now=None, trigger="command"):
    """One agent's cycle for the current slot, its running tests decided too."""
    now = now or timezone.now()
    slot = slot_start(now)
    cycle = run_agent_steps(agent, slot, now, trigger)
    if cycle is None:
        return None
    started = time.perf_counter()
    decided = abtests.review(slot, {agent.agent_id}, now)
    _record_review([cycle], decided)
    ImprovementCycle.objects.filter(pk=cycle.pk).update(
        duration_ms=F("duration_ms") + (time.perf_counter() - started) * 1000)
    cycle.refresh_from_db()
    return cycle


def run_all(now=None, slot=None, trigger="schedule"):
    """The scheduled job: every agent's cycle for this slot (or `slot`), then
    one review of the fleet's running tests. Returns counts for the loop
    heartbeat."""
    now = now or timezone.now()
    slot = slot or slot_start(now)
    cycles = []
    # An agent in shadow runs its own choices: no A/B test would get its tasks.
    for profile in LearningProfile.objects.filter(enabled=True, task_count__gt=0).exclude(
            mode=LearningMode.SHADOW).select_related("agent"):
        cycle = run_agent_steps(profile.agent, slot, now, trigger, profile)
        if cycle is not None:
            cycles.append(cycle)
    decided = abtests.review(slot, None, now)
    _record_review(cycles, decided)
    created = sum(1 for cycle in cycles for item in cycle.decisions if item["kind"] == "abtest_created")
    return {"cycles": len(cycles), "tests_created": created, "tests_decided": len(decided),
            "running_tests": ABTest.objects.running().count()}


def rerun_lost_cycle(now=None):
    """The guard job: re-run the previous slot's cycle if it was lost.

    The Redis broker hands a task out without acknowledgement, so a cluster
    killed mid-cycle loses it, and the schedule has already moved on. A slot
    in which the fleet worked but that has no cycle, or a cycle left
    unfinished for longer than a task may run, was lost; re-running it skips
    the steps already committed, so nothing happens twice. Only the previous
    slot is repaired: after a longer outage the next slot's cycle catches up.
    """
    now = now or timezone.now()
    slot = slot_start(now) - timedelta(seconds=settings.CYCLE_SLOT_SECONDS)
    if not Execution.objects.filter(created_at__lt=slot + timedelta(seconds=settings.CYCLE_SLOT_SECONDS)).exists():
        return {"lost": None}
    cycles = ImprovementCycle.objects.filter(slot_start=slot)
    in_flight = now - timedelta(seconds=settings.Q_CLUSTER["timeout"])
    if cycles.exists() and not cycles.filter(finished_at__isnull=True, started_at__lt=in_flight).exists():
        return {"lost": None}
    logger.warning("The improvement cycle of the slot at %s was lost; running it again.", slot.isoformat())
    return {"lost": slot.isoformat(), **run_all(now, slot, "guard")}
