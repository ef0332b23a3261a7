"""Two to four agents side by side: the fleet table's facts for each, and
their composite scores over one window on one chart."""

from datetime import timedelta

from django.utils import timezone

from learning.tracker import TARGET

from .. import charts
from ..params import BadParameter, choice
from .agent import WINDOW_DAYS, score_series
from .fleet import STATE_WORDS, fleet_rows, state_of, trend_of

MOST = 4


def chosen_agents(query, known):
    """The `agent` parameters (repeated), each a known agent id, at most MOST."""
    chosen = list(dict.fromkeys(query.getlist("agent"))) if hasattr(query, "getlist") else []
    unknown = [agent_id for agent_id in chosen if agent_id not in known]
    if unknown:
        raise BadParameter("agent must name registered agents.")
    if len(chosen) > MOST:
        raise BadParameter(f"agent may be given at most {MOST} times.")
    return chosen


def compare_context(query):
    rows = {row.agent.agent_id: row for row in fleet_rows()[0]}
    chosen = chosen_agents(query, rows)
    days = int(choice(query, "days", [str(days) for days in WINDOW_DAYS], "7"))
    since = timezone.now() - timedelta(days=days)
    compared = [rows[agent_id] for agent_id in chosen]
    for row in compared:
        row.state, row.trend = state_of(row), trend_of(row.spark_score)
    figure = None
    if len(compared) >= 2:
        series = [(row.agent.agent_id, score_series(row.agent, since)) for row in compared]
        series = [(name, item) for name, item in series if item is not None]
        figure = charts.compare_figure(series) if series else None
    return {
        "agents": sorted(rows), "chosen": chosen, "compared": compared, "figure": figure, "days": days,
        "window_days": [(str(value), f"last {value} day{'s' if value > 1 else ''}") for value in WINDOW_DAYS],
        "state_words": STATE_WORDS, "target": TARGET, "most": MOST,
    }
