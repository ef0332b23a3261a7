"""The fleet overview: every agent's latest score, change against its
baseline, safeguard, learning switch, applied strategies, open alerts and
sparkline, the fleet's change chart, the scheduled jobs' heartbeat and the
fleet learning metrics."""

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from learning import sharing, tracker
from learning.models import Alert, AppliedStrategy, LearningProfile, Snapshot
from learning.tracker import TARGET
from qefleet import schedules
from qefleet.memory.models import Agent

from .. import charts
from .common import as_datetime64, as_floats, profile_of, safeguard_of
from .learning_health import fleet_learning_panel

SPARK_POINTS = 30
SPARK_WINDOW = timedelta(hours=24)


@dataclass
class FleetRow:
    agent: Agent
    profile: object
    safeguard: object
    score: float | None  # of its latest baseline window of tasks (tracker.current_scores)
    improvement: float | None  # those tasks' score against the baseline
    applied: list
    open_alerts: int
    spark_at: np.ndarray = None
    spark_score: np.ndarray = None
    sparkline: str | None = None  # the figure's JSON, when there are two points or more


def fleet_rows(now=None):
    """Every agent with the score of its latest tasks and their change vs
    baseline (as the tracker, the API and the fleet metrics measure it, on
    the same tasks), safeguard, learning switch, applied strategies, live
    version, open alerts and the scores of its last snapshots (the sparkline)."""
    now = now or timezone.now()
    agents = (Agent.objects.select_related("learning__live_version", "safeguard")
              .defer("learning__live_version__payload").order_by("team", "agent_id"))
    applied = {}
    for item in AppliedStrategy.objects.select_related("strategy").order_by("task_type"):
        applied.setdefault(item.agent_id, []).append(item)
    open_alerts = dict(Alert.objects.open().filter(agent__isnull=False).values("agent")
                       .annotate(n=Count("pk")).values_list("agent", "n"))
    agents = list(agents)
    current = tracker.current_scores(profile for agent in agents if (profile := profile_of(agent)) is not None)
    rows = {agent.pk: FleetRow(agent, profile_of(agent), safeguard_of(agent), *current.get(agent.pk, (None, None)),
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


def fleet_context():
    rows = fleet_rows()
    for row in rows:
        row.sparkline = charts.sparkline_figure(row.spark_at, row.spark_score) if len(row.spark_at) > 1 else None
    changed = [row for row in rows if row.improvement is not None]
    return {
        "rows": rows,
        "change_figure": charts.fleet_change_figure(
            [row.agent.agent_id for row in changed], [row.improvement for row in changed], TARGET) if changed else None,
        "jobs": schedules.heartbeat(),
        "target": TARGET,
        "metrics": sharing.fleet_metrics([row.profile for row in rows if row.profile is not None],
                                         {row.agent.pk: row.improvement for row in changed}),
        "baseline_window": LearningProfile._meta.get_field("baseline_window").default,
        **fleet_learning_panel(),
    }
