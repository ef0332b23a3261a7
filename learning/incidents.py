"""Incidents prevented: the harm each automatic rollback and each reverted
A/B winner kept from the agents, estimated from what was measured.

The method (written beside the figure wherever it is shown):

- **The drop** is what the rule measured before it acted: for a rollback, the
  safeguard's reference minus the mean score of the window that triggered it
  (Rollback.numbers); for a reverted winner, the winning arm's score times the
  relative change the monitoring measured. Score points, 0-1.
- **The tasks exposed** are those the degraded state would have served had
  nothing acted: the agent's tasks (for a reverted winner, its tasks of the
  test's task type) from the action until the state would have changed anyway
  (an operator re-enabling learning after reviewing the rollback, or the
  agent's next rollback), at most RECOVERY_CAP_TASKS, beyond which an
  operator's review or relearning would have caught it.
- **Harm avoided** = drop x tasks exposed, in task-equivalents of score: 0.1
  below the reference over 300 tasks is 30 tasks' worth of score.

It assumes the drop would have persisted unchanged; a state that relearned on
its own would have cost less, a drop that deepened more.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Substr

from qefleet.memory.models import Agent, AuditEvent

from .models import ABTest, ABTestState, Execution, Rollback

RECOVERY_CAP_TASKS = 1000


@dataclass(frozen=True)
class Incident:
    agent: str
    kind: str  # "rollback" or "reverted winner"
    at: datetime
    what: str
    drop: float  # score points below the reference
    tasks: int  # tasks exposed
    capped: bool

    @property
    def harm(self):
        return self.drop * self.tasks

    def to_dict(self):
        return {**asdict(self), "at": self.at.isoformat(), "harm": round(self.harm, 2)}


def _later_changes(agents, since):
    """{agent pk: sorted moments at which a degraded state would have changed
    anyway}: an operator re-enabling learning, or a rollback. Two queries."""
    moments = {}
    for agent_pk, at in Rollback.objects.filter(agent__in=agents, created_at__gt=since).values_list(
        "agent_id", "created_at"
    ):
        moments.setdefault(agent_pk, []).append(at)
    agent_of_target = Agent.objects.filter(agent_id=Substr(OuterRef("target"), len("agent:") + 1)).values("pk")[:1]
    for agent_pk, at in (
        AuditEvent.objects.filter(action="re_enable_learning", at__gt=since)
        .annotate(agent_pk=Subquery(agent_of_target))
        .filter(agent_pk__in=agents.values("pk"))
        .values_list("agent_pk", "at")
    ):
        moments.setdefault(agent_pk, []).append(at)
    return {agent_pk: sorted(found) for agent_pk, found in moments.items()}


def _candidates(agents, start, end, changes, now):
    """(agent, kind, at, what, drop, exposure filter) of every incident; the
    exposure filter selects the executions the degraded state would have served."""
    for rollback in Rollback.objects.filter(
        agent__in=agents, automatic=True, created_at__gte=start, created_at__lt=end
    ).select_related("agent", "to_version"):
        numbers = rollback.numbers or {}
        if "reference" not in numbers or "window_score" not in numbers:
            continue
        until = next((at for at in changes.get(rollback.agent_id, []) if at > rollback.created_at), now)
        target = rollback.to_version.label if rollback.to_version else "a version since pruned"
        yield (
            rollback.agent,
            "rollback",
            rollback.created_at,
            f"rolled back to {target}",
            numbers["reference"] - numbers["window_score"],
            Q(agent=rollback.agent_id, created_at__gt=rollback.created_at, created_at__lte=until),
        )
    for test in ABTest.objects.filter(
        agent__in=agents, state=ABTestState.REVERTED, finished_at__gte=start, finished_at__lt=end
    ).select_related("agent"):
        monitoring = test.verdict.get("monitoring") or {}
        if test.reference_score is None or "change_pct" not in monitoring:
            continue
        yield (
            test.agent,
            "reverted winner",
            test.finished_at,
            f"A/B test #{test.pk} ({test.task_type}) reverted",
            -monitoring["change_pct"] / 100 * test.reference_score,
            Q(agent=test.agent_id, task_type=test.task_type, created_at__gt=test.finished_at),
        )


def prevented(agents, start, end, now):
    """The incidents of `agents` (an Agent queryset) acted on from `start` to
    `end`, newest first, with their totals per agent and overall: one query
    when there were none, five otherwise (the exposures counted in one)."""
    if not (
        Rollback.objects.filter(agent__in=agents, automatic=True, created_at__gte=start, created_at__lt=end)
        .values("pk")
        .union(
            ABTest.objects.filter(
                agent__in=agents, state=ABTestState.REVERTED, finished_at__gte=start, finished_at__lt=end
            ).values("pk")
        )
        .exists()
    ):
        return {"incidents": [], "per_agent": [], "harm": 0.0, "tasks": 0, "cap": RECOVERY_CAP_TASKS}
    found = list(_candidates(agents, start, end, _later_changes(agents, start), now))
    counts = (
        Execution.objects.filter(created_at__gt=start).aggregate(
            **{f"incident_{index}": Count("pk", filter=item[5]) for index, item in enumerate(found)}
        )
        if found
        else {}
    )
    incidents = []
    for index, (agent, kind, at, what, drop, _) in enumerate(found):
        tasks = counts[f"incident_{index}"]
        incidents.append(
            Incident(
                agent.agent_id,
                kind,
                at,
                what,
                max(0.0, drop),
                min(tasks, RECOVERY_CAP_TASKS),
                tasks > RECOVERY_CAP_TASKS,
            )
        )
    incidents.sort(key=lambda item: item.at, reverse=True)
    per_agent = {}
    for item in incidents:
        total = per_agent.setdefault(item.agent, {"agent": item.agent, "incidents": 0, "tasks": 0, "harm": 0.0})
        total["incidents"] += 1
        total["tasks"] += item.tasks
        total["harm"] += item.harm
    return {
        "incidents": incidents,
        "per_agent": sorted(per_agent.values(), key=lambda total: -total["harm"]),
        "harm": sum(item.harm for item in incidents),
        "tasks": sum(item.tasks for item in incidents),
        "cap": RECOVERY_CAP_TASKS,
    }
