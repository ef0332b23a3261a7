"""Mitigations: a frequent failure class changes the agent's recommendations
for that task type (engine.ADJUSTMENTS says how), and the failures of that
class before and after are counted, so reports can tell whether it helped.

Only the strategies whose own tasks fail with the class clearly more often
than the task type's other strategies are replaced, and only by a strategy
whose learned value is no lower (engine.mitigated_choice): the learned choice
stands wherever the failures do not come from it, so a mitigation cannot
override a whole task type's policy for a failure the strategy does not
cause, nor trade the task type's success for fewer failures of one class.
A mitigation under which the task type succeeds less often than before is
withdrawn.

Classes no strategy can fix (validation, parsing, permission, other) are
recorded too, with adjustment "none", and raise an alert instead: a warning
when the class's rate rose clearly above the task type's earlier level (a
fixture or a contract changed: a decision for an operator), else an info
alert for the inbox's digest. A steady share of assertion failures is tests
finding bugs, which is their job; alerting on it as news filled the inbox
with one card per agent and task type that nobody could act on.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from qefleet.memory import rows

from . import alerts
from .core import engine, stats
from .events import emit
from .models import Adjustment, Execution, FailurePattern, Mitigation, MitigationState, Severity

FREQUENT = 0.10        # share of the task type's tasks failing with the class
MIN_FAILURES = 5       # before a class counts as a pattern at all
MIN_IMPLICATING = 3    # failures of a strategy's own tasks that implicate it
IMPLICATING_MARGIN = 0.10  # how far its class failure rate must exceed the other strategies' pooled rate
BEFORE_WINDOW = 100    # the task type's latest tasks the "before" rate is measured over
EVALUATE_AFTER = 50    # tasks of the type after activation before it is judged
MIN_EARLIER = 50      # earlier tasks of the type before a rise of an unfixable class can be told apart
RETRY_AFTER = timedelta(days=7)  # an ineffective mitigation is not tried again sooner
APPLYING = (MitigationState.ACTIVE, MitigationState.EFFECTIVE)


# Asked on every recommendation: rows.Query spares compiling it each time.
APPLYING_MITIGATIONS = rows.Query(Mitigation, "agent", "task_type", "state__in")


def active_adjustments(agent, task_type):
    """[(failure class, adjustment, implicated strategy names)] that change
    this task type's recommendations."""
    applying = sorted(APPLYING_MITIGATIONS(agent, task_type, APPLYING), key=lambda item: item.failure_class)
    return [(item.failure_class, item.adjustment, item.strategies) for item in applying
            if item.adjustment != Adjustment.NONE]


def implicated_strategies(rows, failure_class):
    """Names of the strategies whose own tasks in `rows` ((strategy name,
    failure classes) pairs) fail with the class at least FREQUENT of the time
    (MIN_IMPLICATING failures at least) and IMPLICATING_MARGIN more often
    than the task type's other strategies' tasks, pooled: a class every
    strategy suffers from is not one strategy's fault."""
    tasks, failures = {}, {}
    for name, classes in rows:
        tasks[name] = tasks.get(name, 0) + 1
        failures[name] = failures.get(name, 0) + (failure_class in classes.split(","))
    all_tasks, all_failures = sum(tasks.values()), sum(failures.values())

    def clearly_above(name):
        rate = failures[name] / tasks[name]
        others = all_tasks - tasks[name]
        pooled = (all_failures - failures[name]) / others if others else 0.0
        return rate >= FREQUENT and rate >= pooled + IMPLICATING_MARGIN

    return sorted(name for name in tasks if failures[name] >= MIN_IMPLICATING and clearly_above(name))


def success_rate(executions):
    """(tasks, success rate) of an Execution queryset (or sliced one)."""
    outcomes = list(executions.values_list("success", flat=True))
    return len(outcomes), (sum(outcomes) / len(outcomes) if outcomes else None)


def success_before(agent, mitigation):
    """The task type's success rate over the BEFORE_WINDOW tasks before the
    mitigation began (the window its failure rate before was measured on)."""
    before = Execution.objects.filter(agent=agent, task_type=mitigation.task_type,
                                      sequence__lte=mitigation.activated_after_task).order_by("-sequence")
    return success_rate(before[:BEFORE_WINDOW])[1]


def _counts(executions, failure_class):
    """(tasks, failed tasks of the class) of an Execution queryset."""
    found = executions.aggregate(tasks=Count("pk"), failures=Count("pk", filter=Q(
        failure_classes__contains=failure_class)))
    return found["tasks"], found["failures"]


def _due(failure, now):
    latest = Mitigation.objects.filter(agent=failure.agent_id, task_type=failure.task_type,
                                       failure_class=failure.failure_class).order_by("-activated_at").first()
    return latest is None or (latest.state not in APPLYING and latest.concluded_at < now - RETRY_AFTER)


def activate(agent, profile, now=None):
    """Apply the mitigation of every frequent failure pattern that has none."""
    now = now or timezone.now()
    applied = []
    frequent = FailurePattern.objects.filter(agent=agent, frequency__gte=MIN_FAILURES, confidence__gte=FREQUENT)
    for failure in frequent:
        if not _due(failure, now):
            continue
        latest = Execution.objects.filter(agent=agent, task_type=failure.task_type).order_by("-sequence")
        rows = list(latest.values_list("strategy__name", "failure_classes")[:BEFORE_WINDOW])
        adjustment = engine.ADJUSTMENTS[failure.failure_class]
        implicated = implicated_strategies(rows, failure.failure_class)
        if adjustment != Adjustment.NONE and not implicated:
            continue  # spread over every strategy: changing strategy would not help
        try:
            with transaction.atomic():
                mitigation = Mitigation.objects.create(
                    agent=agent, task_type=failure.task_type, failure_class=failure.failure_class,
                    adjustment=adjustment, strategies=implicated, tasks_before=len(rows), activated_at=now,
                    failures_before=sum(failure.failure_class in classes.split(",") for _, classes in rows),
                    activated_after_task=profile.task_count)
        except IntegrityError:  # a concurrent cycle applied it
            continue
        emit(agent, "learning:mitigation_applied", {
            "mitigation_id": mitigation.pk, "task_type": failure.task_type, "failure_class": failure.failure_class,
            "adjustment": adjustment, "strategies": implicated,
            "failure_rate_before": round(mitigation.rate_before or 0.0, 4)})
        if adjustment == Adjustment.NONE:
            _alert_unfixable(agent, failure, mitigation)
        applied.append({"mitigation": mitigation.pk, "task_type": failure.task_type,
                        "failure_class": failure.failure_class, "adjustment": adjustment, "strategies": implicated})
    return applied


def earlier_rate(agent, failure_class, task_type):
    """(tasks, failures of the class) of the task type's BEFORE_WINDOW tasks
    before its latest BEFORE_WINDOW: the level the latest is compared with."""
    earlier = Execution.objects.filter(agent=agent, task_type=task_type).order_by("-sequence")
    classes = list(earlier.values_list("failure_classes", flat=True)[BEFORE_WINDOW:2 * BEFORE_WINDOW])
    return len(classes), sum(failure_class in found.split(",") for found in classes)


def _alert_unfixable(agent, failure, mitigation):
    """A frequent class no strategy fixes: a warning when its rate rose
    clearly (stats.rate_fell, read backwards: the earlier window's rate lies
    below the latest's) over at least MIN_EARLIER earlier tasks, else info."""
    tasks, failures = earlier_rate(agent, failure.failure_class, failure.task_type)
    rate_now = mitigation.rate_before or 0.0
    rose = tasks >= MIN_EARLIER and stats.rate_fell(mitigation.failures_before, mitigation.tasks_before,
                                                    failures, tasks)
    numbers = {**failure.to_dict(), "rate_now": round(rate_now, 4), "tasks_now": mitigation.tasks_before,
               "rate_earlier": round(failures / tasks, 4) if tasks else None, "tasks_earlier": tasks}
    where = f"{agent.agent_id}: {failure.failure_class} failures in {failure.task_type}"
    if rose:
        severity, summary = Severity.WARNING, (f"{where} rose from {failures / tasks:.0%} to {rate_now:.0%} of tasks: "
                                               "check the inputs, fixtures or the contract under test")
    else:
        severity, summary = Severity.INFO, (f"{where} are {rate_now:.0%} of the latest {mitigation.tasks_before} "
                                            "tasks, no rise: tests finding failures; no strategy change helps")
    alerts.raise_alert("failure:needs_operator", severity, summary, numbers, agent, task_type=failure.task_type,
                       dedup_key=f"failure:{agent.agent_id}:{failure.task_type}:{failure.failure_class}")


def evaluate(agent, now=None):
    """Count the failures since each active mitigation began; after
    EVALUATE_AFTER tasks judge it effective (a failure rate that fell by more
    than chance, stats.rate_fell) or ineffective.

    Whatever its class's rate did, a mitigation (active or effective) under
    which the task type's tasks succeed less often than in the window before
    it, over EVALUATE_AFTER tasks at least, is withdrawn: it made things worse.
    One that changes no strategy (adjustment "none": it asks an operator) is
    counted but never judged: what the rates do next is not its doing."""
    now = now or timezone.now()
    judged = []
    for mitigation in Mitigation.objects.filter(agent=agent, state__in=APPLYING):
        since = Execution.objects.filter(agent=agent, task_type=mitigation.task_type,
                                         sequence__gt=mitigation.activated_after_task)
        if mitigation.state == MitigationState.ACTIVE:
            mitigation.tasks_after, mitigation.failures_after = _counts(since, mitigation.failure_class)
        if mitigation.adjustment == Adjustment.NONE:
            mitigation.save()
            continue
        tasks, after = success_rate(since)
        before = success_before(agent, mitigation) if tasks >= EVALUATE_AFTER else None
        if before is not None and after < before:
            reason = f"the task type's success fell from {before:.0%} to {after:.0%} under it ({tasks} tasks)"
            mitigation.state, mitigation.concluded_at = MitigationState.WITHDRAWN, now
            numbers = {"success_before": round(before, 4), "success_after": round(after, 4)}
            emit(agent, "learning:mitigation_withdrawn", {
                "mitigation_id": mitigation.pk, "task_type": mitigation.task_type,
                "failure_class": mitigation.failure_class, "reason": reason, **numbers})
            judged.append({"mitigation": mitigation.pk, "state": mitigation.state, "reason": reason, **numbers})
        elif mitigation.state == MitigationState.ACTIVE and mitigation.tasks_after >= EVALUATE_AFTER:
            helped = stats.rate_fell(mitigation.failures_before, mitigation.tasks_before,
                                     mitigation.failures_after, mitigation.tasks_after)
            mitigation.state = MitigationState.EFFECTIVE if helped else MitigationState.INEFFECTIVE
            mitigation.concluded_at = now
            judged.append({"mitigation": mitigation.pk, "state": mitigation.state,
                           "rate_before": round(mitigation.rate_before or 0.0, 4),
                           "rate_after": round(mitigation.rate_after, 4)})
        elif mitigation.state != MitigationState.ACTIVE:
            continue  # an effective one stays as it was judged
        mitigation.save()
    return judged


def withdraw_since(agent, target, now=None):
    """A rollback withdraws the mitigations applied after the version it
    returns to: they adjusted the state the safeguard just rejected."""
    now = now or timezone.now()
    return Mitigation.objects.filter(agent=agent, state__in=APPLYING, activated_at__gt=target.created_at).update(
        state=MitigationState.WITHDRAWN, concluded_at=now)
