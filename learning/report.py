"""The improvement report (the design's section 6) for a period, per agent and
for the fleet: one builder whose result the dashboard renders as a page, a
CSV and a JSON file, so all three carry the same numbers.

Everything comes from permanent history (docs/ARCHITECTURE.md, "The improvement report"): snapshots for the
scores, state versions for patterns, Q entries and exploration, A/B tests,
mitigations and rollbacks, and the stored executions (kept 90 days) for the
share of tasks an applied strategy served. A fixed number of queries builds
the report, whatever the fleet's size or the period's length. The arithmetic
is in learning/core/report_math.py.
"""

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Count, Min, Q

from qefleet.memory.models import Agent

from . import incidents
from .core import report_math, stats
from .models import (
    ABTest,
    ABTestState,
    Adjustment,
    AppliedStrategy,
    Decision,
    Execution,
    LearnedPattern,
    LearningProfile,
    Mitigation,
    QEntry,
    Rollback,
    Snapshot,
    StateVersion,
)
from .tracker import TARGET

EFFECT_WINDOW = report_math.DAY  # a rollback's effect: the day before against the day after

NOTES = (
    "Scores: the composite score of each day's snapshots, weighted by their tasks (day 0 is the period's "
    "first day; day k the day that ends k days after the start). Change: against the agent's improvement "
    "baseline (its first 50 tasks), measured on the last day with tasks, so it differs from the fleet page's "
    "change, measured on each agent's latest 50 tasks; the fleet's figures are the means over its agents.",
    "Directions compare each checkpoint with the one before it: up or down, and better or worse (time and "
    "error rate are better when they go down).",
    "Projection: where the least-squares line through the daily changes reaches the target.",
    "Patterns, Q entries and exploration rate are read from the latest state version stored at each "
    "checkpoint (versions are pruned to the latest 48, the known-good ones and pinned ones, so older "
    "checkpoints may show an earlier version or none); 'live' is the state now.",
    "Attribution is an estimate: each applied strategy's A/B test effect (treatment minus control success "
    "rate, with its 95 % interval) times the share of all the agent's stored executions it served while "
    "applied in the period; a strategy applied before the period is listed but not credited, as day 0's rate "
    "already had it. Effects measured in a test need not hold after it (drift), strategies interact, "
    "and the rest of the change is shown as 'other / learning': the Q-learning itself, mitigations, "
    "imported patterns and changes in the work.",
)


# --- the report's rows ------------------------------------------------------------------


@dataclass
class Point:
    """The composite score and its components over one window."""

    label: str
    tasks: int | None = None
    score: float | None = None
    success_rate: float | None = None
    avg_ms: float | None = None
    time_score: float | None = None
    error_rate: float | None = None
    satisfaction: float | None = None
    efficiency: float | None = None
    change: float | None = None  # against the baseline

    def fill(self, parts, baseline):
        if parts is not None:
            for name in ("tasks", "score", "success_rate", "avg_ms", "time_score", "error_rate", "satisfaction",
                         "efficiency"):
                setattr(self, name, getattr(parts, name))
            if baseline:
                self.change = (parts.score - baseline) / baseline
        return self


@dataclass
class Checkpoint(Point):
    day: int = 0
    at: datetime | None = None
    directions: dict = field(default_factory=dict)  # component -> "up, better"
    patterns: int | None = None
    q_entries: int | None = None
    exploration_rate: float | None = None
    state_from: str = ""  # the version read, "live", or "" when none is stored
    agents: int | None = None  # fleet checkpoints: agents with tasks that day


@dataclass
class Day(Point):
    day: int = 0


@dataclass
class AppliedRow:
    """An applied strategy while it was applied in the period, and what it
    accounts for."""

    label: str
    task_type: str
    strategy: str
    replaced: str
    abtest: int | None
    state: str
    applied_at: datetime
    reverted_at: datetime | None
    counted_from: datetime | None  # the window's tasks are counted from here (the oldest stored execution)
    effect: float | None
    effect_low: float | None
    effect_high: float | None
    served: int
    type_tasks: int
    all_tasks: int
    share_of_type: float | None
    share_of_all: float | None
    points: float | None
    points_low: float | None
    points_high: float | None
    note: str  # why nothing is credited, when nothing is


@dataclass
class TestRow:
    label: str
    abtest: int
    task_type: str
    name: str
    state: str
    decided_at: datetime
    decision: str
    effect: float | None
    effect_low: float | None
    effect_high: float | None
    n_control: int
    n_treatment: int


@dataclass
class MitigationRow:
    label: str
    task_type: str
    failure_class: str
    adjustment: str
    state: str
    activated_at: datetime
    tasks_before: int
    failures_before: int
    rate_before: float | None
    tasks_after: int
    failures_after: int
    rate_after: float | None


@dataclass
class RollbackRow:
    label: str
    at: datetime
    from_version: str
    to_version: str
    automatic: bool
    actor: str
    reason: str
    score_before: float | None
    tasks_before: int | None
    score_after: float | None
    tasks_after: int | None
    change: float | None


@dataclass
class AgentReport:
    agent: str
    agent_type: str
    baseline: float | None
    baseline_set_at: datetime | None
    improvement: float | None  # the latest day with tasks, against the baseline
    improvement_day: str | None  # that day (YYYY-MM-DD), so no reader takes it for the latest tasks' change
    achieved: bool
    projection: dict
    success_change: float | None  # success rate, latest day with tasks - first day with tasks
    attributed: float | None
    other: float | None
    checkpoints: list
    daily: list
    strategies: list
    abtests: list
    mitigations: list
    rollbacks: list


@dataclass
class FleetSummary:
    agents: int
    agents_with_baseline: int
    agents_achieved: int
    baseline: float | None
    improvement: float | None
    achieved: bool
    projection: dict
    success_change: float | None
    attributed: float | None
    other: float | None
    checkpoints: list
    daily: list


@dataclass
class Report:
    scope: str  # "fleet" or the agent's id
    start: datetime
    end: datetime
    days: int
    target: float
    generated_at: datetime
    fleet: FleetSummary | None
    agents: list
    # learning.incidents.prevented over the report's agents and period
    incidents_prevented: dict = field(default_factory=dict)
    notes: tuple = NOTES

    def to_dict(self):
        """Plain JSON values: times in ISO 8601, numbers rounded to 6 places."""
        return _plain(dataclasses.asdict(self))


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


# --- queries ------------------------------------------------------------------------------


# What a WindowSums needs, in its order, over a window's snapshots `s`: tasks,
# then the task-weighted sums; satisfaction and efficiency with their own tasks.
_WINDOW_SUMS = ("SUM(s.tasks)", "SUM(s.tasks * s.success_rate)", "SUM(s.tasks * s.avg_execution_ms)",
                "SUM(s.tasks * s.error_rate)", "SUM(s.tasks * s.satisfaction)",
                "SUM(CASE WHEN s.satisfaction IS NOT NULL THEN s.tasks END)", "SUM(s.tasks * s.efficiency)",
                "SUM(CASE WHEN s.efficiency IS NOT NULL THEN s.tasks END)")


def _window_sums(tasks, success, ms, errors, satisfaction, satisfaction_tasks, efficiency, efficiency_tasks):
    if not tasks:
        return None
    # The counts as ints whatever type the database sums them in.
    return report_math.WindowSums(int(tasks), success or 0, ms or 0, errors or 0, satisfaction,
                                  int(satisfaction_tasks or 0), efficiency, int(efficiency_tasks or 0))


def _snapshot_sums(windows, sql, params):
    """Run a statement that joins the VALUES `windows` to the snapshots `s`
    and groups by its leading columns; {those columns: WindowSums}. Each
    window reads its own snapshots through an index: a filtered sum per
    window and figure, or a CASE over all windows per snapshot, cost more to
    build and to run."""
    table = connection.ops.quote_name(Snapshot._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(windows=windows, snapshots=table, sums=", ".join(_WINDOW_SUMS)), params)
        width = len(_WINDOW_SUMS)
        return {tuple(row[:-width]): _window_sums(*row[-width:]) for row in cursor}


def _moment(value):
    return connection.ops.adapt_datetimefield_value(value)


def daily_sums(agent_pks, period):
    """{(agent pk, day index): WindowSums} over the period's day windows, in one grouped query."""
    days = [(index, _moment(start), _moment(end)) for index, (start, end) in enumerate(map(period.window,
                                                                                           range(period.days)))]
    if not agent_pks:
        return {}
    # CROSS JOIN fixes the join order on SQLite: each day, then its snapshots by index.
    sql = ("WITH w(i, start_at, end_at) AS (VALUES {windows}) SELECT s.agent_id, w.i, {sums} "
           "FROM w CROSS JOIN {snapshots} s WHERE s.agent_id IN (" + ", ".join(["%s"] * len(agent_pks)) + ") "
           "AND s.created_at >= w.start_at AND s.created_at < w.end_at GROUP BY s.agent_id, w.i")
    return _snapshot_sums(", ".join(["(%s, %s, %s)"] * len(days)), sql,
                          [value for day in days for value in day] + list(agent_pks))


def rollback_sums(rollbacks, now):
    """{(rollback pk, "before" | "after"): WindowSums or None}: the agent's
    snapshots in the day before and the day after each rollback, in one
    query (the windows of rollbacks close together overlap)."""
    windows = [(rollback.pk, side, rollback.agent_id, _moment(start), _moment(end)) for rollback in rollbacks
               for side, start, end in (
                   ("before", rollback.created_at - EFFECT_WINDOW, rollback.created_at),
                   ("after", rollback.created_at, min(now, rollback.created_at + EFFECT_WINDOW)))]
    if not windows:
        return {}
    sql = ("WITH w(pk, side, agent, start_at, end_at) AS (VALUES {windows}) SELECT w.pk, w.side, {sums} "
           "FROM w CROSS JOIN {snapshots} s WHERE s.agent_id = w.agent AND s.created_at >= w.start_at "
           "AND s.created_at < w.end_at GROUP BY w.pk, w.side")
    found = _snapshot_sums(", ".join(["(%s, %s, %s, %s, %s)"] * len(windows)), sql,
                           [value for window in windows for value in window])
    return {(pk, side): found.get((pk, side)) for pk, side, *_ in windows}


@dataclass
class VersionInfo:
    pk: int
    number: int
    created_at: datetime
    q_entries: int
    patterns: int | None
    exploration_rate: float | None


def versions_by_agent(agent_pks, end):
    """{agent pk: [VersionInfo]} of the versions captured before `end`, oldest
    first, without their payloads (the counts are columns of their own)."""
    found = {}
    for pk, agent_pk, *fields in (
            StateVersion.objects.filter(agent_id__in=agent_pks, created_at__lt=end).order_by("created_at", "number")
            .values_list("pk", "agent_id", "number", "created_at", "q_entries", "patterns", "exploration_rate")):
        found.setdefault(agent_pk, []).append(VersionInfo(pk, *fields))
    return found


def live_states(agent_pks):
    """{agent pk: (patterns, Q entries, exploration rate)} now."""
    q = dict(QEntry.objects.filter(agent_id__in=agent_pks).values("agent").annotate(n=Count("pk"))
             .values_list("agent", "n").order_by())
    patterns = dict(LearnedPattern.objects.filter(agent_id__in=agent_pks).values("agent").annotate(n=Count("pk"))
                    .values_list("agent", "n").order_by())
    rates = dict(LearningProfile.objects.filter(agent_id__in=agent_pks).values_list("agent", "exploration_rate"))
    return {pk: (patterns.get(pk, 0), q.get(pk, 0), rate) for pk, rate in rates.items()}


def _effect(test):
    """(treatment - control success rate, low, high): the interval of the
    decision (always-valid when the test stopped early), else the fixed one."""
    control, treatment = test.control.stats, test.treatment.stats
    if not (control.n and treatment.n):
        return None, None, None
    low, high = test.verdict.get("interval") or stats.fixed_interval(control, treatment)
    return treatment.success_rate - control.success_rate, low, high


@dataclass
class Application:
    """A strategy applied to an agent's task type: an A/B test's winner
    (`test`) or an operator's choice (test None), until it was reverted."""

    agent_pk: int
    task_type: str
    strategy_pk: int
    strategy: str
    applied_at: datetime
    reverted_at: datetime | None
    test: ABTest | None = None


def applications(tests, agent_pks, period):
    """The applications of the period: winners applied before its end and
    not reverted before its start, and the strategies operators applied. A
    winner counts until it was reverted: only tasks its strategy served as
    the applied one count as served, so a later winner that replaced it for
    a while only lowers its share."""
    found = [Application(test.agent_id, test.task_type, test.treatment.strategy_id, test.treatment.label,
                         test.applied_at, test.finished_at if test.state == ABTestState.REVERTED else None, test)
             for test in tests if test.applied_at is not None]
    found += [Application(item.agent_id, item.task_type, item.strategy_id, item.strategy.name, item.applied_at, None)
              for item in AppliedStrategy.objects.filter(agent_id__in=agent_pks, applied_at__lt=period.end)
              .exclude(source__contains="abtest:").select_related("strategy")]
    return sorted((item for item in found if item.applied_at < period.end and (
        item.reverted_at is None or item.reverted_at > period.start)), key=lambda item: item.applied_at)


def _served_sql(windows):
    """Each window (index, agent, from, until) joined to the agent's
    executions in it, counted by task type, strategy and whether an applied
    strategy chose them: one grouped statement. A filtered count per
    application over every execution of the period read each row once per
    application (and compiling those hundreds of filters cost as much)."""
    execution, decision = (connection.ops.quote_name(model._meta.db_table) for model in (Execution, Decision))
    values = ", ".join(["(%s, %s, %s, %s)"] * windows)
    # CROSS JOIN fixes the join order on SQLite: each window, then its agent's executions by index.
    return f"""
        WITH w(i, agent, start_at, end_at) AS (VALUES {values})
        SELECT w.i, e.task_type, e.strategy_id, CASE WHEN d.fallback = %s THEN 1 ELSE 0 END, COUNT(*)
        FROM w CROSS JOIN {execution} e LEFT JOIN {decision} d ON d.id = e.decision_id
        WHERE e.agent_id = w.agent AND e.created_at >= w.start_at AND e.created_at < w.end_at
        GROUP BY 1, 2, 3, 4"""


def served_counts(items, agent_pks, period):
    """[(counted from, served, task type's tasks, all tasks)] of each
    application in the period, counted over the stored executions (from the
    agent's oldest), in two queries."""
    if not items:
        return []
    oldest = dict(Execution.objects.filter(agent_id__in=agent_pks).values("agent").annotate(first=Min("created_at"))
                  .values_list("agent", "first").order_by())
    # Applications of an agent mostly share a window (from its oldest stored execution to the period's end).
    windows, starts = {}, []
    for item in items:
        start = max(item.applied_at, period.start, oldest.get(item.agent_pk, period.end))
        windows.setdefault((item.agent_pk, start, min(item.reverted_at or period.end, period.end)), len(windows))
        starts.append(start)
    params = [value for (agent, start, end), index in windows.items() for value in (
        index, agent, _moment(start), _moment(end))]
    groups = {}  # window -> [(task type, strategy pk, chosen as the applied strategy, executions)]
    with connection.cursor() as cursor:
        cursor.execute(_served_sql(len(windows)), [*params, "applied"])  # the CTE's values come first
        for index, task_type, strategy, applied, count in cursor:
            groups.setdefault(index, []).append((task_type, strategy, applied, count))
    counts = []
    for item, start in zip(items, starts):
        rows = groups.get(windows[item.agent_pk, start, min(item.reverted_at or period.end, period.end)], [])
        of_type = [row for row in rows if row[0] == item.task_type]
        served = sum(count for _, strategy, applied, count in of_type if applied and strategy == item.strategy_pk)
        counts.append((start, served, sum(row[3] for row in of_type), sum(row[3] for row in rows)))
    return counts


def _credit(item, period, all_tasks):
    """Why an application is credited with nothing, or ""."""
    if item.test is None:
        return "applied by an operator: no A/B test measured its effect"
    if item.applied_at < period.start:
        return "applied before the period: day 0 already had it"
    return "" if all_tasks else "no stored executions while it was applied"


# --- building ---------------------------------------------------------------------------------


def _directions(previous, current):
    result = {}
    for name, (higher_is_better, decimals) in report_math.COMPONENT_DIRECTIONS.items():
        arrow, verdict = report_math.direction(getattr(previous, name), getattr(current, name), higher_is_better,
                                               decimals)
        if arrow is not None:
            result[name] = f"{arrow}, {verdict}"
    return result


def _state_at(checkpoint, infos, live):
    """Set the checkpoint's learned state: live at the period's end when it
    ends now, else the latest version stored by then."""
    if live is not None:
        checkpoint.patterns, checkpoint.q_entries, checkpoint.exploration_rate = live
        checkpoint.state_from = "live"
        return
    info = next((info for info in reversed(infos) if info.created_at <= checkpoint.at), None)
    if info is not None:
        checkpoint.patterns, checkpoint.q_entries, checkpoint.exploration_rate = (
            info.patterns, info.q_entries, info.exploration_rate)
        checkpoint.state_from = f"v{info.number} ({info.created_at:%Y-%m-%d %H:%M})"


def _agent_report(agent, profile, period, context):
    baseline = profile.baseline_score if profile else None
    sums = context["daily"]
    daily = [Day(label=f"{period.window(index)[0]:%Y-%m-%d}", day=index).fill(
        report_math.components(sums.get((agent.pk, index))), baseline) for index in range(period.days)]
    checkpoints = []
    days = report_math.checkpoint_days(period.days)
    for position, day in enumerate(days):
        point = Checkpoint(label=f"day {day}", day=day, at=period.moment(day)).fill(
            report_math.components(sums.get((agent.pk, report_math.checkpoint_window(day)))), baseline)
        if checkpoints:
            point.directions = _directions(checkpoints[-1], point)
        live = context["live"] is not None and position == len(days) - 1
        _state_at(point, context["versions"].get(agent.pk, []), context["live"].get(agent.pk) if live else None)
        checkpoints.append(point)
    with_tasks = [day for day in daily if day.tasks]
    improvement = with_tasks[-1].change if with_tasks else None
    improvement_day = with_tasks[-1].label if with_tasks else None
    success_change = with_tasks[-1].success_rate - with_tasks[0].success_rate if len(with_tasks) > 1 else None
    strategies = [row for pk, row in context["strategies"] if pk == agent.pk]
    attributed, other = report_math.remainder(success_change, [row.points for row in strategies])
    return AgentReport(
        agent=agent.agent_id, agent_type=agent.type, baseline=baseline,
        baseline_set_at=profile.baseline_set_at if profile else None, improvement=improvement,
        improvement_day=improvement_day, achieved=improvement is not None and improvement >= TARGET,
        projection=dataclasses.asdict(report_math.projection(
            [day.day + 0.5 for day in daily], [day.change for day in daily],
            (period.end - period.start) / report_math.DAY, improvement, TARGET, period.start)),
        success_change=success_change, attributed=attributed if strategies else None,
        other=other if strategies else success_change, checkpoints=checkpoints, daily=daily, strategies=strategies,
        abtests=[row for pk, row in context["abtests"] if pk == agent.pk],
        mitigations=[row for pk, row in context["mitigations"] if pk == agent.pk],
        rollbacks=[row for pk, row in context["rollbacks"] if pk == agent.pk],
    )


def _applied_rows(tests, agent_pks, period):
    items = applications(tests, agent_pks, period)
    rows = []
    for item, (start, served, type_tasks, all_tasks) in zip(items, served_counts(items, agent_pks, period)):
        test = item.test
        effect, low, high = _effect(test) if test else (None, None, None)
        note = _credit(item, period, all_tasks)
        # Applied before the period, it was in day 0's rate already: listed, not credited with the change.
        credited = effect if test and item.applied_at >= period.start else None
        share = report_math.attribute(credited, low, high, served, type_tasks, all_tasks)
        rows.append((item.agent_pk, AppliedRow(
            label=f"A/B test #{test.pk}" if test else "applied by an operator", task_type=item.task_type,
            strategy=item.strategy,
            replaced=(test.previous_strategy.name if test.previous_strategy else "the learned policy") if test else "",
            abtest=test.pk if test else None, state=test.state if test else "operator", applied_at=item.applied_at,
            reverted_at=item.reverted_at, counted_from=start if all_tasks else None, effect=effect, effect_low=low,
            effect_high=high, served=served, type_tasks=type_tasks, all_tasks=all_tasks,
            share_of_type=share.share_of_type, share_of_all=share.share_of_all, points=share.points,
            points_low=share.low, points_high=share.high, note=note)))
    return rows


def _test_rows(tests, period):
    rows = []
    for test in tests:
        if test.decided_at is None or not period.start <= test.decided_at < period.end:
            continue
        effect, low, high = _effect(test)
        rows.append((test.agent_id, TestRow(
            label=f"A/B test #{test.pk}", abtest=test.pk, task_type=test.task_type, name=test.name, state=test.state,
            decided_at=test.decided_at, decision=test.decision, effect=effect, effect_low=low, effect_high=high,
            n_control=test.control.n, n_treatment=test.treatment.n)))
    return sorted(rows, key=lambda row: row[1].decided_at)


def _mitigation_rows(agents, period):
    return [(item.agent_id, MitigationRow(
        label=f"mitigation #{item.pk}", task_type=item.task_type, failure_class=item.failure_class,
        adjustment=Adjustment(item.adjustment).label, state=item.state, activated_at=item.activated_at,
        tasks_before=item.tasks_before, failures_before=item.failures_before, rate_before=item.rate_before,
        tasks_after=item.tasks_after, failures_after=item.failures_after, rate_after=item.rate_after))
        for item in Mitigation.objects.filter(agent__in=agents, activated_at__gte=period.start,
                                              activated_at__lt=period.end).order_by("activated_at", "pk")]


def _rollback_rows(agents, period, now):
    rollbacks = list(Rollback.objects.filter(agent__in=agents, created_at__gte=period.start,
                                             created_at__lt=period.end)
                     .select_related("from_version", "to_version")
                     .defer("from_version__payload", "to_version__payload").order_by("created_at", "pk"))
    sums = rollback_sums(rollbacks, now)
    rows = []
    for rollback in rollbacks:
        before = report_math.components(sums[rollback.pk, "before"])
        after = report_math.components(sums[rollback.pk, "after"])
        rows.append((rollback.agent_id, RollbackRow(
            label=f"rollback #{rollback.pk}", at=rollback.created_at,
            from_version=rollback.from_version.label if rollback.from_version else "",
            to_version=rollback.to_version.label if rollback.to_version else "a pruned version",
            automatic=rollback.automatic, actor=rollback.actor, reason=rollback.reason,
            score_before=before.score if before else None, tasks_before=before.tasks if before else None,
            score_after=after.score if after else None, tasks_after=after.tasks if after else None,
            change=after.score - before.score if before and after else None)))
    return rows


def _fleet_point(point, points):
    """`point` with the means of `points` (the agents' same checkpoint or day)."""
    known = [item for item in points if item.tasks]
    for name in ("score", "success_rate", "avg_ms", "time_score", "error_rate", "satisfaction", "efficiency",
                 "change"):
        setattr(point, name, report_math.mean(getattr(item, name) for item in known))
    point.tasks = sum(item.tasks for item in known) if known else None
    return point


def _fleet(reports, period):
    daily = [_fleet_point(Day(label=day.label, day=day.day), [report.daily[index] for report in reports])
             for index, day in enumerate(reports[0].daily)]
    checkpoints = []
    for index, first in enumerate(reports[0].checkpoints):
        points = [report.checkpoints[index] for report in reports]
        point = _fleet_point(Checkpoint(label=first.label, day=first.day, at=first.at), points)
        point.agents = sum(1 for item in points if item.tasks)
        stored = [item for item in points if item.state_from]
        if stored:
            point.patterns = sum(item.patterns or 0 for item in stored)
            point.q_entries = sum(item.q_entries or 0 for item in stored)
            point.exploration_rate = report_math.mean(item.exploration_rate for item in stored)
            point.state_from = f"{len(stored)} of {len(points)} agents"
        if checkpoints:
            point.directions = _directions(checkpoints[-1], point)
        checkpoints.append(point)
    improvement = report_math.mean(report.improvement for report in reports)
    # Means over the agents whose change is known; an agent without applied strategies adds 0 attributed.
    measured = [report for report in reports if report.success_change is not None]
    success_change = report_math.mean(report.success_change for report in measured)
    attributed = report_math.mean(report.attributed or 0 for report in measured) \
        if any(report.strategies for report in measured) else None
    return FleetSummary(
        agents=len(reports), agents_with_baseline=sum(1 for report in reports if report.baseline),
        agents_achieved=sum(1 for report in reports if report.achieved),
        baseline=report_math.mean(report.baseline for report in reports), improvement=improvement,
        achieved=improvement is not None and improvement >= TARGET,
        projection=dataclasses.asdict(report_math.projection(
            [day.day + 0.5 for day in daily], [day.change for day in daily],
            (period.end - period.start) / report_math.DAY, improvement, TARGET, period.start)),
        success_change=success_change, attributed=attributed,
        other=None if success_change is None else success_change - (attributed or 0),
        checkpoints=checkpoints, daily=daily)


def build(period, now, agent=None):
    """The report for `period` of one agent, or of the fleet when `agent` is None."""
    agents = [agent] if agent is not None else list(Agent.objects.order_by("team", "agent_id"))
    pks = [item.pk for item in agents]
    profiles = {profile.agent_id: profile for profile in LearningProfile.objects.filter(agent_id__in=pks)}
    tests = list(ABTest.objects.filter(agent_id__in=pks).filter(
        Q(decided_at__gte=period.start, decided_at__lt=period.end) | Q(applied_at__lt=period.end))
        .select_related("previous_strategy").prefetch_related("arms__strategy"))
    context = {
        "daily": daily_sums(pks, period), "versions": versions_by_agent(pks, period.end),
        "live": live_states(pks) if period.end >= now else None,
        "strategies": _applied_rows(tests, pks, period), "abtests": _test_rows(tests, period),
        "mitigations": _mitigation_rows(pks, period), "rollbacks": _rollback_rows(pks, period, now),
    }
    reports = [_agent_report(item, profiles.get(item.pk), period, context) for item in agents]
    fleet = _fleet(reports, period) if agent is None and reports else None
    return Report(scope=agent.agent_id if agent else "fleet", start=period.start, end=period.end,
                  days=period.days, target=TARGET, generated_at=now, fleet=fleet, agents=reports,
                  incidents_prevented=incidents.prevented(Agent.objects.filter(pk__in=pks), period.start, period.end,
                                                          now))


# --- the decision log -------------------------------------------------------------------------

OUTCOME_FIELDS = ("success", "execution_time_ms", "error_count", "failure_classes", "coverage", "satisfaction",
                  "efficiency", "reward", "previous_q", "q_value", "next_state_key")
DECISION_COLUMNS = (
    "decision_id", "decided_at", "task_id", "task_type", "state_key", "strategy", "how_chosen", "explored",
    "propensity", "epsilon", "q_value", "abtest_id", "abtest_arm", "execution_id", "sequence", "reported_at",
    *OUTCOME_FIELDS[:-2], "q_value_after", "next_state_key",
)


def _outcome(execution):
    """The execution's columns, blank for a decision never reported."""
    if execution is None:
        return [""] * (3 + len(OUTCOME_FIELDS))
    return [execution.pk, execution.sequence, execution.created_at.isoformat(),
            *(getattr(execution, name) for name in OUTCOME_FIELDS)]


def decision_log(agent, period, chunk=2000):
    """The agent's decisions in the period with their outcomes, then the
    executions reported without a decision, oldest first within each: rows
    in DECISION_COLUMNS' order, read in chunks (never the whole period at once)."""
    decisions = (Decision.objects.filter(agent=agent, created_at__gte=period.start, created_at__lt=period.end)
                 .select_related("strategy", "abtest_arm", "execution").defer("execution__response")
                 .order_by("created_at", "pk"))
    for decision in decisions.iterator(chunk_size=chunk):
        arm = decision.abtest_arm
        yield [decision.pk, decision.created_at.isoformat(), decision.task_id, decision.task_type,
               decision.state_key, decision.strategy.name, decision.fallback or "q-values", decision.explored,
               decision.propensity, decision.epsilon, decision.q_value, arm.test_id if arm else "",
               arm.role if arm else "", *_outcome(getattr(decision, "execution", None))]
    orphans = (Execution.objects.filter(agent=agent, decision__isnull=True, created_at__gte=period.start,
                                        created_at__lt=period.end)
               .select_related("strategy").defer("response").order_by("created_at", "pk"))
    for execution in orphans.iterator(chunk_size=chunk):
        yield ["", "", execution.task_id, execution.task_type, execution.state_key, execution.strategy.name,
               "reported without a decision", "", "", "", "", "", "", *_outcome(execution)]
