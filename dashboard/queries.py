"""Read-side queries of the dashboard pages: each page costs a fixed number of
queries, whatever the fleet's size or history (long windows are aggregated
in the database)."""

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.core.paginator import Paginator
from django.db.models import Avg, Count, F, Max, Min, OuterRef, Q, Subquery, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from learning import engine
from learning.models import (
    Alert,
    AlertState,
    AppliedStrategy,
    Decision,
    Execution,
    FailurePattern,
    LiveVersion,
    QEntry,
    Rollback,
    Severity,
    Snapshot,
    StateVersion,
)
from qefleet.memory.models import Agent, AuditEvent, Event

MAX_POINTS = 400  # per chart series; longer windows are averaged in buckets of tasks
SPARK_POINTS = 30
SPARK_WINDOW = timedelta(hours=24)
WINDOW_DAYS = (1, 7, 30, 90)
Q_STATES_PER_PAGE = 20
ALERTS_PER_PAGE = 50
# The events worth an operator's eye; training and snapshot events are too many.
NOTABLE_EVENTS = ("learning:rollback", "learning:rollback_dry_run", "learning:failure_detected",
                  "learning:pattern_discovered")


def as_datetime64(moments):
    """Aware UTC datetimes as numpy datetime64 (plotly writes them as ISO text)."""
    return np.array([moment.replace(tzinfo=None) for moment in moments], dtype="datetime64[ms]")


def as_floats(values):
    return np.array([np.nan if value is None else value for value in values], dtype=float)


def profile_of(agent):
    """The agent's learning profile, or None before its first task."""
    return getattr(agent, "learning", None)


def safeguard_of(agent):
    return getattr(agent, "safeguard", None)


# --- fleet overview ------------------------------------------------------------------


@dataclass
class FleetRow:
    agent: Agent
    profile: object
    safeguard: object
    score: float | None
    improvement: float | None
    applied: list
    open_alerts: int
    spark_at: np.ndarray = None
    spark_score: np.ndarray = None
    sparkline: str | None = None  # the figure's JSON, when there are two points or more


def fleet_rows(now=None):
    """Every agent with its latest score, change vs baseline, safeguard,
    learning switch, applied strategies, live version, open alerts and the
    scores of its last snapshots (the sparkline)."""
    now = now or timezone.now()
    latest = Snapshot.objects.filter(agent=OuterRef("pk")).order_by("-created_at")
    agents = (Agent.objects.select_related("learning__live_version", "safeguard")
              .annotate(score=Subquery(latest.values("score")[:1]),
                        improvement=Subquery(latest.values("improvement")[:1]))
              .order_by("team", "agent_id"))
    applied = {}
    for item in AppliedStrategy.objects.select_related("strategy").order_by("task_type"):
        applied.setdefault(item.agent_id, []).append(item)
    open_alerts = dict(Alert.objects.open().filter(agent__isnull=False).values("agent")
                       .annotate(n=Count("pk")).values_list("agent", "n"))
    rows = {agent.pk: FleetRow(agent, profile_of(agent), safeguard_of(agent), agent.score, agent.improvement,
                               applied.get(agent.pk, []), open_alerts.get(agent.pk, 0)) for agent in agents}
    recent = (Snapshot.objects.filter(created_at__gte=now - SPARK_WINDOW)
              .annotate(rank=Window(RowNumber(), partition_by=[F("agent")], order_by=F("created_at").desc()))
              .filter(rank__lte=SPARK_POINTS).order_by("agent", "created_at")
              .values_list("agent", "created_at", "score"))
    points = {}
    for agent_pk, at, score in recent:
        points.setdefault(agent_pk, []).append((at, score))
    for agent_pk, row in rows.items():
        row.spark_at = as_datetime64(at for at, _ in points.get(agent_pk, []))
        row.spark_score = as_floats(score for _, score in points.get(agent_pk, []))
    return list(rows.values())


# --- the agent page ------------------------------------------------------------------


@dataclass
class ScoreSeries:
    """The agent's snapshots in a window (tasks first_task..last_task),
    averaged in the database over buckets of tasks when there are many."""

    first_task: int
    last_task: int
    at: np.ndarray
    score: np.ndarray
    success_rate: np.ndarray
    time_score: np.ndarray
    error_free: np.ndarray
    satisfaction: np.ndarray
    efficiency: np.ndarray

    @property
    def bucket_tasks(self):
        """Tasks per point that keep a per-task series under MAX_POINTS."""
        return max(1, math.ceil((self.last_task - self.first_task + 1) / MAX_POINTS))


def score_series(agent, since):
    """None when the window holds no snapshot."""
    window = Snapshot.objects.filter(agent=agent, created_at__gte=since)
    span = window.aggregate(first=Min("first_task"), last=Max("last_task"), count=Count("pk"))
    if not span["count"]:
        return None
    # Snapshot windows never overlap, so last_task alone keeps them apart.
    bucket = 1 if span["count"] <= MAX_POINTS else math.ceil((span["last"] - span["first"] + 1) / MAX_POINTS)
    rows = list(window.annotate(bucket=F("last_task") / bucket).values("bucket").annotate(
        at=Max("created_at"), score=Avg("score"), success=Avg("success_rate"), ms=Avg("avg_execution_ms"),
        errors=Avg("error_rate"), satisfaction=Avg("satisfaction"), efficiency=Avg("efficiency"),
    ).order_by("bucket"))
    return ScoreSeries(
        first_task=span["first"], last_task=span["last"], at=as_datetime64(row["at"] for row in rows),
        score=as_floats(row["score"] for row in rows), success_rate=as_floats(row["success"] for row in rows),
        time_score=as_floats(engine.time_score(row["ms"]) for row in rows),
        error_free=as_floats(1.0 - row["errors"] for row in rows),
        satisfaction=as_floats(row["satisfaction"] for row in rows),
        efficiency=as_floats(row["efficiency"] for row in rows),
    )


def epsilon_series(agent, series):
    """The exploration rate each decision had over the score's tasks, averaged
    over buckets of tasks (an execution's sequence is its task number)."""
    rows = list(Execution.objects.filter(agent=agent, sequence__gte=series.first_task, decision__isnull=False)
                .annotate(bucket=F("sequence") / series.bucket_tasks).values("bucket")
                .annotate(at=Max("created_at"), epsilon=Avg("decision__epsilon")).order_by("bucket"))
    return as_datetime64(row["at"] for row in rows), as_floats(row["epsilon"] for row in rows)


@dataclass
class Marker:
    at: object
    label: str


def chart_markers(agent, since):
    """Rollbacks, undos and re-enables in the window, for the score chart."""
    markers = []
    for rollback in Rollback.objects.filter(agent=agent, created_at__gte=since).select_related("to_version"):
        target = rollback.to_version.label if rollback.to_version else "a pruned version"
        how = "automatic" if rollback.automatic else rollback.actor
        kind = "undo" if rollback.reason.startswith("undo of rollback") else "rollback"
        markers.append(Marker(rollback.created_at, f"{kind} to {target} ({how})"))
    for event in AuditEvent.objects.filter(target=f"agent:{agent.agent_id}", action="re_enable_learning", at__gte=since):
        markers.append(Marker(event.at, f"re-enabled by {event.actor}"))
    return sorted(markers, key=lambda marker: marker.at)


@dataclass
class StateRow:
    task_type: str
    state_key: str
    best_action: str
    best_q: float
    best_visits: int
    visits: int
    actions: int


def q_table_page(agent, search, page_number):
    """One page of the agent's states (task type, state) with the best action,
    its Q-value and visits; `search` matches task type or state key."""
    entries = QEntry.objects.filter(agent=agent)
    if search:
        entries = entries.filter(Q(task_type__icontains=search) | Q(state_key__icontains=search))
    states = (entries.values("task_type", "state_key")
              .annotate(visits=Sum("visits"), actions=Count("pk")).order_by("task_type", "state_key"))
    page = Paginator(states, Q_STATES_PER_PAGE).get_page(page_number)
    keys = [(state["task_type"], state["state_key"]) for state in page.object_list]
    best = {}
    if keys:
        wanted = Q()
        for task_type, state_key in keys:
            wanted |= Q(task_type=task_type, state_key=state_key)
        for entry in entries.filter(wanted).select_related("strategy"):
            key = (entry.task_type, entry.state_key)
            if key not in best or entry.q_value > best[key].q_value:
                best[key] = entry
    page.object_list = [
        StateRow(state["task_type"], state["state_key"], best[key].strategy.name, best[key].q_value,
                 best[key].visits, state["visits"], state["actions"])
        for state, key in zip(page.object_list, keys)
    ]
    return page


HOW_CHOSEN = {
    "": "Exploited: {name} had this state's highest Q-value",
    "nearest": "New state: {name} was best in the nearest visited state",
    "applied": "Applied: {name} is the strategy applied for this task type",
    "default": "Nothing learned for this task type yet: {name} is the catalog default",
    "shared": "Shared: another agent of the swarm found that {name} works for this task type",
    "abtest": "A/B test: {name} is the arm this task was assigned to",
}


def decision_reasoning(decision):
    """A short account of a decision, from its stored fields."""
    name = decision.strategy.name
    if decision.explored:
        return (f"Explored: {name} drawn at random (exploration rate {decision.epsilon:.3f}, "
                f"chosen with probability {decision.propensity:.2f}).")
    how = HOW_CHOSEN.get(decision.fallback, "Chose {name} (" + decision.fallback + ")")
    return f"{how.format(name=name)} (Q {decision.q_value:.3f})."


def recent_decisions(agent, limit=15):
    decisions = list(Decision.objects.filter(agent=agent).select_related("strategy", "execution")
                     .order_by("-created_at")[:limit])
    for decision in decisions:
        decision.reasoning = decision_reasoning(decision)
        decision.outcome = getattr(decision, "execution", None)
    return decisions


def failure_patterns(agent):
    return FailurePattern.objects.filter(agent=agent).order_by("-frequency", "task_type")


@dataclass
class VersionRow:
    version: StateVersion
    periods: list
    is_live: bool
    can_roll_back: bool  # the live version too, once tasks were learned since it went live


def version_timeline(agent, profile):
    """The agent's versions, newest first, each with the periods it was live."""
    periods = {}
    for period in LiveVersion.objects.filter(agent=agent).order_by("-live_from")[:200]:
        periods.setdefault(period.version_id, []).append(period)
    live_pk = profile.live_version_id if profile else None
    learned_since = profile is not None and profile.task_count > profile.live_since_task
    return [VersionRow(version, periods.get(version.pk, []), version.pk == live_pk,
                       version.pk != live_pk or learned_since)
            for version in StateVersion.objects.filter(agent=agent).defer("payload").order_by("-number")]


def preview_version(timeline, wanted):
    """The version whose rollback preview the page shows: the one asked for
    (?preview=N) or else the newest known-good one."""
    numbers = [row.version.number for row in timeline]
    if wanted.isdigit() and int(wanted) in numbers:
        return int(wanted)
    return next((row.version.number for row in timeline if row.version.known_good), None)


@dataclass
class RollbackState:
    """After a rollback: what the operator can do next."""

    rollback: Rollback
    can_undo: bool


def rollback_state(agent, profile):
    latest = Rollback.objects.filter(agent=agent).select_related("from_version", "to_version").first()
    if latest is None or profile is None:
        return None
    can_undo = latest.to_version_id == profile.live_version_id and latest.from_version_id is not None
    if profile.enabled and not can_undo:
        return None
    return RollbackState(latest, can_undo)


def notable_events(agent, limit=10):
    return Event.objects.filter(owner=agent, type__in=NOTABLE_EVENTS).order_by("-timestamp")[:limit]


def audit_trail(agent, limit=10):
    return AuditEvent.objects.filter(target=f"agent:{agent.agent_id}")[:limit]


def latest_snapshot(agent):
    return Snapshot.objects.filter(agent=agent).order_by("-created_at").first()


def applied_strategies(agent):
    return AppliedStrategy.objects.filter(agent=agent).select_related("strategy").order_by("task_type")


def open_alerts(agent):
    return Alert.objects.open().filter(agent=agent)


def window_days(value, default=7):
    return int(value) if value.isdigit() and int(value) in WINDOW_DAYS else default


# --- the alerts inbox ----------------------------------------------------------------

ALERT_STATES = {"open": "open (firing or acknowledged)", **{state.value: state.value for state in AlertState},
                "all": "all"}


@dataclass
class AlertFilter:
    state: str = "open"
    severity: str = ""
    agent: str = ""

    @classmethod
    def from_query(cls, query):
        state = query.get("state", "open")
        severity = query.get("severity", "")
        return cls(state=state if state in ALERT_STATES else "open",
                   severity=severity if severity in Severity.values else "",
                   agent=query.get("agent", ""))

    def apply(self, alerts):
        if self.state == "open":
            alerts = alerts.open()
        elif self.state != "all":
            alerts = alerts.filter(state=self.state)
        if self.severity:
            alerts = alerts.filter(severity=self.severity)
        if self.agent:
            alerts = alerts.filter(agent__agent_id=self.agent)
        return alerts


def alert_page(alert_filter, page_number):
    alerts = alert_filter.apply(Alert.objects.select_related("agent")).order_by("-last_seen_at", "-pk")
    return Paginator(alerts, ALERTS_PER_PAGE).get_page(page_number)


def alert_agents():
    """Agent ids that have alerts, for the inbox's agent filter."""
    return list(Agent.objects.filter(alerts__isnull=False).distinct().order_by("agent_id")
                .values_list("agent_id", flat=True))
