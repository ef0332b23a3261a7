"""The fleet overview: triage tiles (the fleet's health in one line), then
every agent's state, latest score, change against its baseline, trend,
safeguard, learning switch, applied strategies, open alerts and sparkline,
sortable and filterable; the fleet's change chart, the scheduled jobs'
heartbeat and the fleet learning metrics."""

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.db.models import Avg, Count, Min
from django.db.models.functions import Floor
from django.utils import timezone

from learning import sharing, tracker
from learning.models import Alert, AppliedStrategy, LearningProfile, Rollback, Snapshot
from learning.tracker import TARGET
from qefleet import schedules
from qefleet.memory.models import Agent

from .. import charts
from ..params import choice
from .common import EpochSeconds, profile_of, range_picker, safeguard_of
from .learning_health import fleet_learning_panel

SPARK_POINTS = 30  # equal spans of the page's time range, each its snapshots' mean score


@dataclass
class FleetRow:
    agent: Agent
    profile: object
    safeguard: object
    score: float | None  # of its latest baseline window of tasks (tracker.current_scores)
    improvement: float | None  # those tasks' score against the baseline
    applied: list
    open_alerts: int
    spark_score: np.ndarray = field(default_factory=lambda: np.full(SPARK_POINTS, np.nan))  # spark_scores()
    sparkline: str | None = None  # an inline SVG on the fleet's shared score axis
    change_bar: str | None = None  # an inline SVG on the fleet's shared change axis
    state: str = "waiting"  # one of STATES
    trend: str = "unknown"  # one of TRENDS
    band: str | None = None  # charts.change_band()


def fleet_rows(now, reach):
    """Every agent with the score of its latest tasks and their change vs
    baseline (as the tracker, the API and the fleet metrics measure it, on
    the same tasks), safeguard, learning switch, applied strategies, live
    version, open alerts and its snapshots' scores over the `reach` before
    `now` (the sparkline and the trend: each page passes its own range, so
    there is no default to disagree with it); and the fleet's open alerts by severity."""
    agents = (Agent.objects.select_related("learning__live_version", "safeguard")
              .defer("learning__live_version__payload").order_by("team", "agent_id"))
    applied = {}
    for item in AppliedStrategy.objects.select_related("strategy").order_by("task_type"):
        applied.setdefault(item.agent_id, []).append(item)
    open_alerts, by_severity = {}, {}
    for agent_pk, severity, count in (Alert.objects.open().values("agent", "severity").annotate(n=Count("pk"))
                                      .values_list("agent", "severity", "n")):
        if agent_pk is not None:
            open_alerts[agent_pk] = open_alerts.get(agent_pk, 0) + count
        by_severity[severity] = by_severity.get(severity, 0) + count
    agents = list(agents)
    current = tracker.current_scores(profile for agent in agents if (profile := profile_of(agent)) is not None)
    rows = {agent.pk: FleetRow(agent, profile_of(agent), safeguard_of(agent), *current.get(agent.pk, (None, None)),
                               applied.get(agent.pk, []), open_alerts.get(agent.pk, 0)) for agent in agents}
    for agent_pk, scores in spark_scores(now - reach, now).items():
        if agent_pk in rows:
            rows[agent_pk].spark_score = scores
    return list(rows.values()), by_severity


def spark_scores(since, now):
    """{agent pk: its snapshots' mean score in each of SPARK_POINTS equal
    spans of time from `since` (or the fleet's first snapshot after it) to
    `now`, NaN where it has none}: one axis of time for every agent, in two
    queries whatever the number of snapshots."""
    first = Snapshot.objects.filter(created_at__gte=since, created_at__lte=now).aggregate(first=Min("created_at"))
    if first["first"] is None:
        return {}
    start = first["first"]
    span = max((now - start).total_seconds(), 1.0) / SPARK_POINTS
    spans = (Snapshot.objects.filter(created_at__gte=start, created_at__lte=now)
             .annotate(span=Floor((EpochSeconds("created_at") - start.timestamp()) / span))
             .values("agent", "span").annotate(score=Avg("score")).order_by()
             .values_list("agent", "span", "score"))
    scores = {}
    for agent_pk, index, score in spans:
        # Rounding may put a snapshot at `start` or `now` exactly one span outside.
        index = min(max(int(index), 0), SPARK_POINTS - 1)
        scores.setdefault(agent_pk, np.full(SPARK_POINTS, np.nan))[index] = score
    return scores


# The table's filters and sort keys (the query's `state`, `trend`, `team`, `sort`).
STATES = ("degraded", "learning-off", "warning", "healthy", "waiting")
STATE_WORDS = {"degraded": "degraded", "learning-off": "learning off", "warning": "warning", "healthy": "healthy",
               "waiting": "no verdict yet"}
TRENDS = ("falling", "flat", "rising", "unknown")
# A sparkline's last third against its first third, in score points, past which it is not flat.
TREND_STEP = 0.01
INCIDENT_WINDOW = timedelta(days=7)


def state_of(row):
    """The one word the triage table files an agent under, worst first: the
    safeguard's verdict, with learning off above a warning."""
    guard_state = row.safeguard.state if row.safeguard else None
    if guard_state == "degraded":
        return "degraded"
    if row.profile is not None and not row.profile.enabled:
        return "learning-off"
    if guard_state in ("warning", "ok"):
        return "warning" if guard_state == "warning" else "healthy"
    return "waiting"


MODES = ("active", "shadow")


def mode_of(row):
    """The agent's learning mode (an agent with no profile yet is active)."""
    return row.profile.mode if row.profile is not None else "active"


def trend_of(scores):
    """rising / falling / flat from the mean of the last third of the points
    against the first third; unknown under three points."""
    scores = scores[~np.isnan(scores)] if len(scores) else scores
    if len(scores) < 3:
        return "unknown"
    third = max(1, len(scores) // 3)
    step = float(scores[-third:].mean() - scores[:third].mean())
    return "rising" if step > TREND_STEP else "falling" if step < -TREND_STEP else "flat"


# The sort keys and how the sort select names them (a column heading sorts too).
SORT_WORDS = {"state": "state, worst first", "-state": "state, best first", "agent": "agent, A-Z",
              "-agent": "agent, Z-A", "team": "team, A-Z", "-team": "team, Z-A", "score": "score, lowest first",
              "-score": "score, highest first", "change": "change, lowest first", "-change": "change, highest first",
              "trend": "trend, falling first", "-trend": "trend, rising first", "alerts": "open alerts, most first",
              "-alerts": "open alerts, fewest first"}
SORTS = {
    "agent": lambda row: row.agent.agent_id,
    "team": lambda row: (row.agent.team or "", row.agent.agent_id),
    "state": lambda row: (STATES.index(row.state), row.agent.agent_id),
    "score": lambda row: (row.score is None, row.score or 0),
    "change": lambda row: (row.improvement is None, row.improvement or 0),
    "trend": lambda row: (TRENDS.index(row.trend), row.agent.agent_id),
    "alerts": lambda row: (-row.open_alerts, row.agent.agent_id),
}


def triage_tiles(rows, severities, now):
    """The fleet's health in one line: agents per triage state (each tile
    counts exactly the rows its link filters: an agent with learning off and
    a safeguard warning is filed once, under learning off; the states' tiles
    add up to the fleet, no verdict yet included), open alerts by
    severity, agents at the target and incidents this week (the safeguard's
    automatic rollbacks in the last 7 days)."""
    changed = [row.improvement for row in rows if row.improvement is not None]
    return {
        "healthy": sum(row.state == "healthy" for row in rows),
        "warning": sum(row.state == "warning" for row in rows),
        "degraded": sum(row.state == "degraded" for row in rows),
        "learning_off": sum(row.state == "learning-off" for row in rows),
        "waiting": sum(row.state == "waiting" for row in rows),
        "shadow": sum(mode_of(row) == "shadow" for row in rows),
        "alerts": [(severity, severities.get(severity, 0)) for severity in ("high", "warning", "info")],
        "on_target": sum(change >= TARGET for change in changed),
        "with_baseline": len(changed),
        "mean_change": float(np.mean(changed)) if changed else None,
        "incidents": Rollback.objects.filter(automatic=True, created_at__gte=now - INCIDENT_WINDOW).count(),
    }


def _sparkline_axis(rows):
    """One score axis for every sparkline (the fleet's lowest and highest
    point, baselines and targets included), so a steep line is a steep change."""
    values = [value for row in rows for value in row.spark_score if not np.isnan(value)]
    values += [level for row in rows if row.profile and row.profile.baseline_score is not None
               for level in (row.profile.baseline_score, row.profile.baseline_score * (1 + TARGET))]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    pad = max(0.01, (high - low) * 0.08)
    return low - pad, high + pad


def _change_axis(rows):
    """One percent axis for every change bar: zero and the target always on it."""
    changes = [row.improvement for row in rows if row.improvement is not None]
    return min([-0.1, *changes]), max([TARGET * 1.5, *changes])


def fleet_context(query=None):
    query = query or {}
    now = timezone.now()
    # The page's only time series are the sparklines: the range sets them and the trend read from them.
    reach, picker = range_picker(query, "24h")
    rows, severities = fleet_rows(now, reach)
    for row in rows:
        row.state = state_of(row)
        row.trend = trend_of(row.spark_score)
        row.band = charts.change_band(row.improvement, TARGET)
    tiles = triage_tiles(rows, severities, now)
    teams = sorted({row.agent.team for row in rows if row.agent.team})
    chosen = {"state": choice(query, "state", STATES), "trend": choice(query, "trend", TRENDS),
              "team": choice(query, "team", teams), "mode": choice(query, "mode", MODES)}
    sort = choice(query, "sort", list(SORT_WORDS), "state")
    shown = [row for row in rows if (not chosen["state"] or row.state == chosen["state"])
             and (not chosen["trend"] or row.trend == chosen["trend"])
             and (not chosen["team"] or row.agent.team == chosen["team"])
             and (not chosen["mode"] or mode_of(row) == chosen["mode"])]
    shown.sort(key=SORTS[sort.lstrip("-")], reverse=sort.startswith("-"))
    score_axis, change_axis = _sparkline_axis(rows), _change_axis(rows)
    for row in shown:
        baseline = row.profile.baseline_score if row.profile else None
        row.sparkline = charts.sparkline_svg(row.spark_score, score_axis, baseline,
                                             baseline * (1 + TARGET) if baseline is not None else None)
        row.change_bar = charts.change_bar(row.improvement, change_axis, TARGET) if row.improvement is not None else None
    changed = [row for row in rows if row.improvement is not None]
    return {
        "rows": shown, "all_rows": len(rows), "tiles": tiles, "sort": sort, "chosen": chosen,
        "sorts": list(SORT_WORDS.items()), **picker,
        "filters": {"state": [(value, STATE_WORDS[value]) for value in STATES],
                    "trend": [(value, value if value != "unknown" else "no trend yet") for value in TRENDS],
                    "team": [(team, team) for team in teams],
                    "mode": [("active", "active"), ("shadow", "in shadow")]},
        "change_figure": charts.fleet_change_figure(
            [row.agent.agent_id for row in changed], [row.improvement for row in changed], TARGET) if changed else None,
        "jobs": schedules.heartbeat(),
        "target": TARGET, "spark_points": SPARK_POINTS, "trend_step": TREND_STEP,
        "metrics": sharing.fleet_metrics([row.profile for row in rows if row.profile is not None],
                                         {row.agent.pk: row.improvement for row in changed}),
        "baseline_window": LearningProfile._meta.get_field("baseline_window").default,
        **fleet_learning_panel(),
    }
