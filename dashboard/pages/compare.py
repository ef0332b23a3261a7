"""Two to four agents side by side: the fleet table's facts for each, and
their composite scores over one window on one chart."""

from django.utils import timezone

from learning.tracker import TARGET

from .. import charts
from ..params import BadParameter
from .agent import score_series
from .common import range_picker
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
    reach, picker = range_picker(query)
    now = timezone.now()
    since = now - reach
    rows = {row.agent.agent_id: row for row in fleet_rows(now, reach)[0]}
    chosen = chosen_agents(query, rows)
    compared = [rows[agent_id] for agent_id in chosen]
    for row in compared:
        row.state, row.trend = state_of(row), trend_of(row.spark_score)
    figure = None
    if len(compared) >= 2:
        series = [(row.agent.agent_id, score_series(row.agent, since)) for row in compared]
        series = [(name, item) for name, item in series if item is not None]
        figure = charts.compare_figure(series) if series else None
    return {
        "agents": sorted(rows), "chosen": chosen, "compared": compared, "figure": figure, **picker,
        "state_words": STATE_WORDS, "target": TARGET, "most": MOST,
    }
