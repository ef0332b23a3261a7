"""An agent's page: its score, components and exploration charts with the
loop's events, A/B tests, mitigations, Q-table, recent decisions, failure
patterns, versions and rollbacks, alerts, events and audit trail; and what
the improvement cycle an operator runs from it did, in words."""

import math
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import (
    Avg,
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from learning import operations, shadow, tracker
from learning.core import scoring
from learning.mitigations import EVALUATE_AFTER
from learning.models import (
    OPEN_TEST_STATES,
    ABArm,
    ABTestState,
    ABTransition,
    Adjustment,
    Alert,
    AppliedStrategy,
    ArmRole,
    Decision,
    Execution,
    FailurePattern,
    LiveVersion,
    Mitigation,
    QEntry,
    Rollback,
    Snapshot,
    StateVersion,
)
from learning.tracker import TARGET
from qefleet.memory.models import AuditEvent, Event

from .. import charts
from ..params import page_number, text, whole_number
from . import common
from .common import LoopEvent, Marker, ScoreSeries, as_datetime64, as_floats, profile_of, safeguard_of
from .learning_health import agent_learning_panel
from .rollback import rollback_state

Q_STATES_PER_PAGE = 20
VERSIONS_SHOWN = 8
# The events worth an operator's eye; training and snapshot events are too many.
NOTABLE_EVENTS = ("learning:rollback", "learning:rollback_dry_run", "learning:failure_detected",
                  "learning:pattern_discovered")


def score_series(agent, since):
    """None when the window holds no snapshot."""
    window = Snapshot.objects.filter(agent=agent, created_at__gte=since)
    span = window.aggregate(first=Min("first_task"), last=Max("last_task"), count=Count("pk"))
    if not span["count"]:
        return None
    # Snapshot windows never overlap, so last_task alone keeps them apart.
    most = common.MAX_POINTS
    bucket = 1 if span["count"] <= most else math.ceil((span["last"] - span["first"] + 1) / most)
    rows = list(window.annotate(bucket=F("last_task") / bucket).values("bucket").annotate(
        at=Max("created_at"), score=Avg("score"), success=Avg("success_rate"), ms=Avg("avg_execution_ms"),
        errors=Avg("error_rate"), satisfaction=Avg("satisfaction"), efficiency=Avg("efficiency"),
    ).order_by("bucket"))
    return ScoreSeries(
        first_task=span["first"], last_task=span["last"], at=as_datetime64(row["at"] for row in rows),
        score=as_floats(row["score"] for row in rows), success_rate=as_floats(row["success"] for row in rows),
        time_score=as_floats(scoring.time_score(row["ms"]) for row in rows),
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


def rollbacks(agent, since):
    """The agent's rollbacks in the window and its latest one, oldest first:
    one query for the chart's markers and the after-rollback panel."""
    latest = Rollback.objects.filter(agent=agent).order_by("-created_at").values("pk")[:1]
    return list(Rollback.objects.filter(agent=agent).filter(Q(created_at__gte=since) | Q(pk=Subquery(latest)))
                .select_related("from_version", "to_version").defer("from_version__payload", "to_version__payload")
                .order_by("created_at", "pk"))


def chart_markers(since, rollbacks, re_enables):
    """Rollbacks, undos and re-enables in the window, for the score chart."""
    markers = []
    for rollback in rollbacks:
        if rollback.created_at < since:
            continue  # the latest one, from before the window: for the after-rollback panel only
        target = rollback.to_version.label if rollback.to_version else "a pruned version"
        how = "automatic" if rollback.automatic else rollback.actor
        kind = f"undo of rollback #{rollback.undo_of_id}" if rollback.is_undo else "rollback"
        markers.append(Marker(rollback.created_at, f"{kind} to {target} ({how})"))
    markers += [Marker(event.at, f"re-enabled by {event.actor}") for event in re_enables]
    return sorted(markers, key=lambda marker: marker.at)


LOOP_EVENT_KINDS = {
    ABTestState.RUNNING: "started",
    ABTestState.WINNER: "ended",
    ABTestState.CONTROL_WINS: "ended",
    ABTestState.INCONCLUSIVE: "ended",
    ABTestState.ABORTED: "ended",
    ABTestState.APPLIED: "applied",
    ABTestState.REVERTED: "reverted",
}
WATCHED_TEST_STATES = (*OPEN_TEST_STATES, ABTestState.MONITORING)


def _loop_event_text(transition):
    test = transition.test
    if transition.to_state == ABTestState.RUNNING:
        return f"A/B test #{test.pk} started: {test.name}"
    if transition.to_state in (ABTestState.APPLIED, ABTestState.REVERTED):
        return f"{transition.treatment} {transition.to_state} for {test.task_type} (A/B test #{test.pk})"
    return f"A/B test #{test.pk} ended {ABTestState(transition.to_state).label.lower()}: {test.name}"


def abtest_activity(agent, since):
    """The agent's A/B tests active in the window (a transition in it, or
    still open or monitored), newest first, and the window's starts, ends,
    applications and reverts for the score chart: one query over the tests'
    transitions."""
    treatment = ABArm.objects.filter(test=OuterRef("test"), role=ArmRole.TREATMENT).values("strategy__name")[:1]
    transitions = (ABTransition.objects.filter(test__agent=agent)
                   .filter(Q(at__gte=since) | Q(test__state__in=WATCHED_TEST_STATES))
                   .select_related("test").annotate(treatment=Subquery(treatment)).order_by("at", "pk"))
    tests, events = {}, []
    for transition in transitions:
        tests[transition.test_id] = transition.test
        kind = LOOP_EVENT_KINDS.get(transition.to_state)
        if kind is not None and transition.at >= since:
            events.append(LoopEvent(transition.at, kind, _loop_event_text(transition)))
    return sorted(tests.values(), key=lambda test: (test.created_at, test.pk), reverse=True), events


def mitigations(agent, limit=20):
    return Mitigation.objects.filter(agent=agent).order_by("-activated_at")[:limit]


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
    "": "Exploited: {name} ranked first in this state",
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
    if decision.fallback == "shadow":
        learned = decision.shadow_strategy.name if decision.shadow_strategy else "nothing logged"
        return (f"Shadow: {name} was the agent's own choice (propensity 1); the learned policy would have chosen "
                f"{learned}.")
    how = HOW_CHOSEN.get(decision.fallback, "Chose {name} (" + decision.fallback + ")")
    return f"{how.format(name=name)} (Q {decision.q_value:.3f})."


def recent_decisions(agent, limit=15):
    decisions = list(Decision.objects.filter(agent=agent).select_related("strategy", "shadow_strategy", "execution")
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


def version_timeline(agent, profile):
    """The agent's versions, newest first, each with the periods it was live."""
    periods = {}
    for period in LiveVersion.objects.filter(agent=agent).order_by("-live_from")[:200]:
        periods.setdefault(period.version_id, []).append(period)
    live_pk = profile.live_version_id if profile else None
    return [VersionRow(version, periods.get(version.pk, []), version.pk == live_pk)
            for version in StateVersion.objects.filter(agent=agent).defer("payload").order_by("-number")]


def recent_and_older(timeline, recent=VERSIONS_SHOWN):
    """The versions an operator weighs first (the newest few, and the live one
    wherever it is) and the rest, which the page folds away."""
    shown = [row for index, row in enumerate(timeline) if index < recent or row.is_live]
    return shown, [row for row in timeline if row not in shown]


def preview_version(timeline, query):
    """The version whose rollback preview the page shows: the one asked for
    (?preview=N) when the agent has it, else the newest known-good one (also
    ?preview=known-good, the alerts' link)."""
    wanted = None if query.get("preview") == "known-good" else whole_number(query, "preview", minimum=1)
    if wanted in {row.version.number for row in timeline}:
        return wanted
    return next((row.version.number for row in timeline if row.version.known_good), None)


def notable_events(agent, limit=10):
    """The agent's newest `limit` notable events. Ranked within each type
    first, so the database reads them through the (owner, type, time) index
    instead of walking all the agent's events (mostly training) newest first."""
    return list(Event.objects.filter(owner=agent, type__in=NOTABLE_EVENTS)
                .annotate(rank=Window(RowNumber(), partition_by=F("type"), order_by=F("timestamp").desc()))
                .filter(rank__lte=limit).order_by("-timestamp")[:limit])


def audit_panels(agent, since, actions=10, refusals=5):
    """(operators' latest actions on the agent, agents' latest refused
    requests about it, its re-enables since `since` for the score chart), in
    one query: listed apart, so no number of refusals can push an action off
    the panel."""
    re_enabled = Q(action="re_enable_learning", at__gte=since)
    denial = Q(action__in=AuditEvent.DENIALS)
    rows = list(AuditEvent.objects.filter(target=f"agent:{agent.agent_id}")
                .filter(Q(action__in=operations.AGENT_ACTIONS) | denial)
                .annotate(refused=ExpressionWrapper(denial, output_field=BooleanField()))
                .annotate(rank=Window(RowNumber(), partition_by=F("refused"),
                                      order_by=[F("at").desc(), F("pk").desc()]))
                .filter(Q(refused=False, rank__lte=actions) | Q(refused=True, rank__lte=refusals) | re_enabled)
                .order_by("-at", "-pk"))
    return ([row for row in rows if not row.refused and row.rank <= actions], [row for row in rows if row.refused],
            [row for row in rows if row.action == "re_enable_learning" and row.at >= since])


def latest_snapshot(agent):
    return Snapshot.objects.filter(agent=agent).order_by("-created_at").first()


@dataclass
class CurrentWindow:
    """The agent's latest baseline window of tasks, scored, and its change
    against the baseline: the figure the fleet page, the fleet metrics and
    the API show, with the tasks it is measured on."""

    first_task: int
    last_task: int
    tasks: int
    score: float | None
    improvement: float | None


def current_window(agent, profile):
    if profile is None or not profile.task_count:
        return None
    first, last = tracker.current_window(profile)
    score, improvement = tracker.current_improvement(agent, profile)
    return CurrentWindow(first, last, last - first + 1, score, improvement)


def applied_strategies(agent):
    return AppliedStrategy.objects.filter(agent=agent).select_related("strategy").order_by("task_type")


def open_alerts(agent):
    return Alert.objects.open().filter(agent=agent)


def _agent_charts(agent, profile, guard, since, timeline, rollbacks, re_enables, loop_events):
    series = score_series(agent, since)
    if series is None:
        return None
    epsilon_at, epsilon = epsilon_series(agent, series)
    versions = [row.version for row in reversed(timeline) if row.version.created_at >= since]
    return {
        "score": charts.score_figure(
            series, baseline=profile.baseline_score if profile else None,
            reference=guard.reference_score if guard else None, threshold_pct=guard.threshold_pct if guard else None,
            markers=chart_markers(since, rollbacks, re_enables), events=loop_events),
        "components": charts.components_figure(series),
        "exploration": charts.exploration_figure(
            epsilon_at, epsilon, as_datetime64(version.created_at for version in versions),
            as_floats(version.q_entries for version in versions)),
    }


def agent_context(agent, query):
    profile, guard = profile_of(agent), safeguard_of(agent)
    reach, picker = common.range_picker(query)
    since = timezone.now() - reach
    timeline = version_timeline(agent, profile)
    search = text(query, "q").strip()
    window_rollbacks = rollbacks(agent, since)
    abtests, loop_events = abtest_activity(agent, since)
    audit, refused, re_enables = audit_panels(agent, since)
    versions, older_versions = recent_and_older(timeline)
    return {
        "agent": agent, "profile": profile, "guard": guard, **picker,
        "latest": latest_snapshot(agent), "current": current_window(agent, profile),
        "applied": applied_strategies(agent), "target": TARGET,
        "charts": _agent_charts(agent, profile, guard, since, timeline, window_rollbacks, re_enables, loop_events),
        "abtests": abtests, "mitigations": mitigations(agent), "mitigation_tasks": EVALUATE_AFTER,
        "search": search, "q_page": q_table_page(agent, search, page_number(query, "qpage")),
        "decisions": recent_decisions(agent), "failures": failure_patterns(agent),
        "versions": versions, "older_versions": older_versions, "preview_version": preview_version(timeline, query),
        "after_rollback": rollback_state(profile, window_rollbacks), "alerts": open_alerts(agent),
        "events": notable_events(agent), "audit": audit, "denials": refused,
        "shadow": shadow.figures(agent, profile) if profile else None,
        **agent_learning_panel(agent),
    }


# A cycle decision's kind -> what the message calls them, and how it names one.
CYCLE_DECISIONS = {
    "abtest_created": ("started A/B tests",
                       lambda item: f"#{item['abtest']} {item['treatment']} for {item['task_type']}"),
    "abtest_decided": ("decided A/B tests", lambda item: f"#{item['abtest']} {item['outcome']}"),
    "applied_strategy": ("settled applied strategies", lambda item: f"#{item['abtest']} {item['outcome']}"),
    "mitigation_applied": ("applied mitigations", lambda item: (
        f"{item['failure_class']} in {item['task_type']} ({Adjustment(item['adjustment']).label})")),
    "mitigation_judged": ("judged mitigations", lambda item: f"#{item['mitigation']} {item['state']}"),
}


def cycle_message(agent, cycle):
    """What an improvement cycle an operator ran did, in words."""
    if cycle is None:
        return f"The improvement cycle skips {agent.agent_id}: its learning is off or it has reported no task yet."
    done = []
    for kind, (words, name) in CYCLE_DECISIONS.items():
        items = [item for item in cycle.decisions if item["kind"] == kind]
        if items:
            done.append(f"{words} {', '.join(name(item) for item in items)}")
    what = "; ".join(done) or "nothing to change (no new opportunity, no test to decide, no failure to mitigate)"
    return (f"Improvement cycle of {agent.agent_id} for the slot from {cycle.slot_start:%Y-%m-%d %H:%M} UTC "
            f"(a re-run in the same slot repeats nothing): {what}.")
