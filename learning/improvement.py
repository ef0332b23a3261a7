"""The improvement cycle (seed sections 2, 6 and 7), once per agent and slot.

Steps, in order: analyse performance; evaluate and apply mitigations for
frequent failure patterns; discover opportunities and start A/B tests for
them; check applied winners. Running tests are then decided for the whole
fleet at once (abtests.review), so the false discovery rate is controlled
across every concurrent test.

A cycle is idempotent per agent and slot: its row records each finished
step, and a re-run (after a crash or a second click) skips them; every step
writes in its own short transaction, so agents' reports never wait long.
"""

import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from qefleet.memory.errors import Conflict

from . import abtests, mitigations, tracker
from .models import (
    OPEN_TEST_STATES,
    ABArm,
    ABTest,
    ABTestState,
    AppliedStrategy,
    FailurePattern,
    ImprovementCycle,
    LearnedPattern,
    LearningProfile,
    QEntry,
)

MIN_EVIDENCE = 20        # a candidate's own uses before it can be tested
SUCCESS_MARGIN = 0.05    # how much better a candidate's success rate must look
Q_MARGIN = 0.10          # or its visit-weighted Q-value
RETEST_AFTER = timedelta(days=7)  # a decided pair is not tested again sooner
MAX_NEW_TESTS = 3        # per agent and cycle


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


def _q_means(agent):
    """{(task type, strategy id): (visit-weighted mean Q, visits)}."""
    rows = (QEntry.objects.filter(agent=agent, visits__gt=0).values("task_type", "strategy_id")
            .annotate(weighted=Sum(F("q_value") * F("visits")), total=Sum("visits")))
    return {(row["task_type"], row["strategy_id"]): (row["weighted"] / row["total"], row["total"]) for row in rows}


def find_opportunities(agent, now):
    """Task types where a strategy looks better than what the agent does now
    (its applied strategy, else its learned policy over all strategies), on
    its own evidence: at least MIN_EVIDENCE uses but not the bulk of them,
    and a success rate SUCCESS_MARGIN higher or a visit-weighted Q-value
    Q_MARGIN higher. The best candidate per task type:
    [(task type, control strategy or None, candidate pattern, why)]."""
    busy = set(ABTest.objects.filter(agent=agent, state__in=(*OPEN_TEST_STATES, ABTestState.MONITORING))
               .values_list("task_type", flat=True))
    pairs = {}
    for test_id, task_type, role, strategy_id in (
            ABArm.objects.filter(test__agent=agent, test__created_at__gte=now - RETEST_AFTER)
            .values_list("test_id", "test__task_type", "role", "strategy_id")):
        pairs.setdefault((test_id, task_type), {})[role] = strategy_id
    recent = {(task_type, arms.get("control"), arms.get("treatment")) for (_, task_type), arms in pairs.items()}
    applied = dict(AppliedStrategy.objects.filter(agent=agent).values_list("task_type", "strategy_id"))
    q_means = _q_means(agent)
    by_type = {}
    for pattern in LearnedPattern.objects.filter(agent=agent).select_related("strategy"):
        by_type.setdefault(pattern.task_type, {})[pattern.strategy_id] = pattern
    found = []
    for task_type, patterns in sorted(by_type.items()):
        if task_type in busy:
            continue
        control_id = applied.get(task_type)
        if control_id is not None:
            if control_id not in patterns:
                continue
            current = patterns[control_id]
            now_rate, now_label = current.success_rate, current.strategy.name
            now_q = q_means.get((task_type, control_id), (0.0, 0))[0]
        else:
            uses = sum(item.uses for item in patterns.values())
            now_rate, now_label = sum(item.successes for item in patterns.values()) / uses, "its learned policy"
            q_rows = [q_means[(task_type, sid)] for sid in patterns if (task_type, sid) in q_means]
            visits = sum(count for _, count in q_rows)
            now_q = sum(mean * count for mean, count in q_rows) / visits if visits else 0.0
        total = sum(item.uses for item in patterns.values())
        best = None
        for candidate in patterns.values():
            if (candidate.strategy_id == control_id or candidate.uses < MIN_EVIDENCE
                    or candidate.uses > total / 2 or (task_type, control_id, candidate.strategy_id) in recent):
                continue
            gain = candidate.success_rate - now_rate
            q_gain = q_means.get((task_type, candidate.strategy_id), (0.0, 0))[0] - now_q
            if (gain >= SUCCESS_MARGIN or q_gain >= Q_MARGIN) and (best is None or (gain, q_gain) > best[0]):
                best = ((gain, q_gain), candidate)
        if best is not None:
            (gain, q_gain), candidate = best
            why = (f"{candidate.strategy.name} succeeded in {candidate.success_rate:.0%} of {candidate.uses} tasks "
                   f"against {now_rate:.0%} for {now_label} (Q-value {q_gain:+.2f}); testing whether it is "
                   f"really better for {task_type}")
            found.append((task_type, patterns[control_id].strategy if control_id else None, candidate, why))
    return found


def start_tests(agent, profile, now):
    opportunities = find_opportunities(agent, now)
    created = []
    for task_type, control, candidate, why in opportunities[:MAX_NEW_TESTS]:
        try:
            test = abtests.create(agent, task_type, control, candidate.strategy, source="loop",
                                  created_by="improvement cycle", hypothesis=why,
                                  mde=min(0.9, settings.ABTEST_MDE_POINTS / 100))
        except Conflict:  # an operator opened one meanwhile
            continue
        created.append({"kind": "abtest_created", "abtest": test.pk, "task_type": task_type,
                        "control": control.name if control else None, "treatment": candidate.strategy.name})
    inputs = {"opportunities": [{"task_type": task_type, "control": control.name if control else None,
                                 "candidate": candidate.strategy.name, "why": why}
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


def _finish_step(cycle, name, inputs, decisions, elapsed):
    with transaction.atomic():
        cycle.refresh_from_db(fields=["steps", "inputs", "decisions", "duration_ms"])
        cycle.steps = [*cycle.steps, name]
        cycle.inputs = {**cycle.inputs, **inputs}
        cycle.decisions = [*cycle.decisions, *decisions]
        cycle.duration_ms = (cycle.duration_ms or 0.0) + elapsed * 1000
        cycle.save(update_fields=["steps", "inputs", "decisions", "duration_ms"])


def run_agent_steps(agent, slot, now, trigger):
    """The agent's steps for `slot`, skipping those already done; the cycle,
    or None when the agent's learning is disabled."""
    profile = LearningProfile.objects.filter(agent=agent).select_related("live_version").first()
    if profile is None or not profile.enabled:
        return None
    cycle, _ = ImprovementCycle.objects.get_or_create(agent=agent, slot_start=slot,
                                                      defaults={"trigger": trigger, "started_at": now})
    for name, step in STEPS.items():
        if name in cycle.steps:
            continue
        started = time.perf_counter()
        inputs, decisions = step(agent, profile, now)
        _finish_step(cycle, name, inputs, decisions, time.perf_counter() - started)
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


def run_all(now=None):
    """The scheduled job: every agent's cycle for this slot, then one review
    of the fleet's running tests. Returns counts for the loop heartbeat."""
    now = now or timezone.now()
    slot = slot_start(now)
    cycles = []
    for profile in LearningProfile.objects.filter(enabled=True, task_count__gt=0).select_related("agent"):
        cycle = run_agent_steps(profile.agent, slot, now, "schedule")
        if cycle is not None:
            cycles.append(cycle)
    decided = abtests.review(slot, None, now)
    _record_review(cycles, decided)
    created = sum(1 for cycle in cycles for item in cycle.decisions if item["kind"] == "abtest_created")
    return {"cycles": len(cycles), "tests_created": created, "tests_decided": len(decided),
            "running_tests": ABTest.objects.running().count()}
