"""Each page's template context, put together from the queries and the
chart builders, so the views only look up, authorize and render."""

from datetime import timedelta

from django.utils import timezone

from learning.models import Severity
from learning.tracker import TARGET
from qefleet import schedules

from . import charts, queries


def fleet_context():
    rows = queries.fleet_rows()
    for row in rows:
        row.sparkline = charts.sparkline_figure(row.spark_at, row.spark_score) if len(row.spark_at) > 1 else None
    changed = [row for row in rows if row.improvement is not None]
    return {
        "rows": rows,
        "change_figure": charts.fleet_change_figure(
            [row.agent.agent_id for row in changed], [row.improvement for row in changed], TARGET) if changed else None,
        "jobs": schedules.heartbeat(),
        "target": TARGET,
    }


def _agent_charts(agent, profile, guard, since, timeline):
    series = queries.score_series(agent, since)
    if series is None:
        return None
    epsilon_at, epsilon = queries.epsilon_series(agent, series)
    versions = [row.version for row in reversed(timeline) if row.version.created_at >= since]
    return {
        "score": charts.score_figure(
            series, baseline=profile.baseline_score if profile else None,
            reference=guard.reference_score if guard else None, threshold_pct=guard.threshold_pct if guard else None,
            markers=queries.chart_markers(agent, since)),
        "components": charts.components_figure(series),
        "exploration": charts.exploration_figure(
            epsilon_at, epsilon, queries.as_datetime64(version.created_at for version in versions),
            queries.as_floats(version.q_entries for version in versions)),
    }


def agent_context(agent, query):
    profile, guard = queries.profile_of(agent), queries.safeguard_of(agent)
    days = queries.window_days(query.get("days", ""))
    timeline = queries.version_timeline(agent, profile)
    search = query.get("q", "").strip()
    return {
        "agent": agent, "profile": profile, "guard": guard, "days": days, "window_days": queries.WINDOW_DAYS,
        "latest": queries.latest_snapshot(agent), "applied": queries.applied_strategies(agent), "target": TARGET,
        "charts": _agent_charts(agent, profile, guard, timezone.now() - timedelta(days=days), timeline),
        "search": search, "q_page": queries.q_table_page(agent, search, query.get("qpage")),
        "decisions": queries.recent_decisions(agent), "failures": queries.failure_patterns(agent),
        "timeline": timeline, "preview_version": queries.preview_version(timeline, query.get("preview", "")),
        "after_rollback": queries.rollback_state(agent, profile), "alerts": queries.open_alerts(agent),
        "events": queries.notable_events(agent), "audit": queries.audit_trail(agent),
    }


def alerts_context(query):
    alert_filter = queries.AlertFilter.from_query(query)
    return {
        "filter": alert_filter, "page": queries.alert_page(alert_filter, query.get("page")),
        "states": queries.ALERT_STATES, "severities": Severity.values, "agents": queries.alert_agents(),
        # datetime-local inputs are naive; the silence action reads them as UTC.
        "silence_default": (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    }
