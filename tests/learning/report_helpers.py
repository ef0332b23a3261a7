"""A constructed 30-day history for the improvement report's tests: known
snapshots, one version, one applied A/B winner with known executions, one
mitigation and one rollback, so every figure of the report is known.

Each day i (0-29) has two snapshots at 12:00 and 12:30 after the period's
start + i days: 15 tasks at a success rate of 0.75 + 0.002 i - 0.01 and 5
tasks at 0.75 + 0.002 i + 0.03 (weighted: 0.75 + 0.002 i), time score 0.58
(12,600 ms), error rate 0.15, satisfaction 0.70 and efficiency 0.50 on the
first only. Day 0 is the golden composite score: 0.6935 (docs/ARCHITECTURE.md, "Golden values").
"""

import uuid
from datetime import timedelta

from learning import versions
from learning.core import report_math
from learning.models import (
    ABArm,
    ABTest,
    ABTestState,
    ArmRole,
    Decision,
    Execution,
    LearnedPattern,
    LearningProfile,
    Mitigation,
    QEntry,
    Rollback,
    Snapshot,
    Strategy,
    VersionReason,
)

BASELINE = 0.6935
DAYS = 30
STEP = 0.002          # success rate per day
APPLIED_DAY = 10      # the A/B winner is applied 10 days after the start
ROLLBACK_DAY = 20     # a rollback just after day 20's snapshots


def success_on(day):
    return 0.75 + STEP * day


def snapshot_rows(agent, start):
    rows = []
    for day in range(DAYS):
        moment = start + timedelta(days=day, hours=12)
        rate = success_on(day)
        rows.append(Snapshot(agent=agent, first_task=40 * day + 1, last_task=40 * day + 15, tasks=15,
                             success_rate=rate - 0.01, avg_execution_ms=12_600, error_rate=0.15, satisfaction=0.70,
                             efficiency=0.50, score=0.0, created_at=moment))
        rows.append(Snapshot(agent=agent, first_task=40 * day + 16, last_task=40 * day + 20, tasks=5,
                             success_rate=rate + 0.03, avg_execution_ms=12_600, error_rate=0.15, score=0.0,
                             created_at=moment + timedelta(minutes=30)))
    return Snapshot.objects.bulk_create(rows)


def execution(agent, strategy, task_type, at, fallback):
    decision = Decision.objects.create(
        agent=agent, task_id=str(uuid.uuid4()), task_type=task_type, state_key="0.6,0.1,0.0,0.8,1.0",
        strategy=strategy, explored=fallback == "", propensity=0.9, epsilon=0.1, q_value=0.5, fallback=fallback,
        created_at=at)
    return Execution.objects.create(
        agent=agent, decision=decision, idempotency_key=str(decision.id), request_digest="x", sequence=1,
        task_id=decision.task_id, task_type=task_type, state_key=decision.state_key, next_state_key=decision.state_key,
        strategy=strategy, success=True, execution_time_ms=1000, reward=1.0, previous_q=0.5, q_value=0.6,
        response={}, created_at=at)


def constructed_history(agent, now):
    """Write the history ending `now`; returns the 30-day period."""
    period = report_math.parse_period({}, now)
    start = period.start
    parallel, sequential = Strategy.objects.get(name="parallel-execution"), Strategy.objects.get(
        name="sequential-execution")
    profile = LearningProfile.objects.create(agent=agent, baseline_score=BASELINE, exploration_rate=0.2,
                                             baseline_set_at=start - timedelta(days=5))
    snapshot_rows(agent, start)

    QEntry.objects.create(agent=agent, task_type="unit-tests", state_key="0.6,0.1,0.0,0.8,1.0", strategy=parallel)
    QEntry.objects.create(agent=agent, task_type="unit-tests", state_key="0.6,0.1,0.0,0.8,1.0", strategy=sequential)
    LearnedPattern.objects.create(agent=agent, task_type="unit-tests", strategy=parallel, uses=5, successes=4)
    version = versions.capture(agent, VersionReason.ON_DEMAND, profile)
    captured_at(version, start + timedelta(days=3))
    # Later learning, live at the end: a third Q entry and a lower epsilon.
    QEntry.objects.create(agent=agent, task_type="e2e-tests", state_key="0.6,0.1,0.0,0.8,1.0", strategy=parallel)
    LearningProfile.objects.filter(pk=profile.pk).update(exploration_rate=0.1)

    applied_at = start + timedelta(days=APPLIED_DAY)
    test = ABTest.objects.create(
        agent=agent, task_type="unit-tests", name="unit-tests: parallel-execution vs sequential-execution",
        state=ABTestState.KEPT, verdict={"interval": [0.08, 0.32]}, decision="winner: treatment +20.0 points",
        previous_strategy=sequential, created_at=applied_at - timedelta(days=2), started_at=applied_at - timedelta(
            days=2), decided_at=applied_at, applied_at=applied_at, finished_at=applied_at + timedelta(days=7))
    ABArm.objects.create(test=test, role=ArmRole.CONTROL, strategy=sequential, n=100, successes=60)
    ABArm.objects.create(test=test, role=ArmRole.TREATMENT, strategy=parallel, n=100, successes=80)
    # Since it was applied: 6 unit-tests tasks it served, 2 explored, 2 of another type.
    for index in range(10):
        at = applied_at + timedelta(days=1, hours=index)
        if index < 6:
            execution(agent, parallel, "unit-tests", at, "applied")
        elif index < 8:
            execution(agent, sequential, "unit-tests", at, "")
        else:
            execution(agent, sequential, "e2e-tests", at, "")

    Mitigation.objects.create(agent=agent, task_type="unit-tests", failure_class="timeout", adjustment="more_retries",
                              strategies=["parallel-execution"], state="effective", tasks_before=100,
                              failures_before=20, tasks_after=50, failures_after=5,
                              activated_at=start + timedelta(days=5), activated_after_task=200)
    Rollback.objects.create(agent=agent, from_version=version, to_version=version, automatic=True, reason="degraded",
                            created_at=start + timedelta(days=ROLLBACK_DAY, hours=12, minutes=31))
    return period


def captured_at(version, moment):
    version.created_at = moment
    version.save(update_fields=["created_at"])
