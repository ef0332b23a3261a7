"""Each page's template context, put together from the queries and the
chart builders, and what the actions say, so the views only look up,
authorize, act and render."""

from datetime import timedelta

from django.utils import timezone

from learning.models import Adjustment
from learning.tracker import TARGET

from .. import charts, queries
from .common import as_datetime64, as_floats, profile_of, safeguard_of


def _agent_charts(agent, profile, guard, since, timeline, rollbacks, loop_events):
    series = queries.score_series(agent, since)
    if series is None:
        return None
    epsilon_at, epsilon = queries.epsilon_series(agent, series)
    versions = [row.version for row in reversed(timeline) if row.version.created_at >= since]
    return {
        "score": charts.score_figure(
            series, baseline=profile.baseline_score if profile else None,
            reference=guard.reference_score if guard else None, threshold_pct=guard.threshold_pct if guard else None,
            markers=queries.chart_markers(agent, since, rollbacks), events=loop_events),
        "components": charts.components_figure(series),
        "exploration": charts.exploration_figure(
            epsilon_at, epsilon, as_datetime64(version.created_at for version in versions),
            as_floats(version.q_entries for version in versions)),
    }


def agent_context(agent, query):
    profile, guard = profile_of(agent), safeguard_of(agent)
    days = queries.window_days(query.get("days", ""))
    since = timezone.now() - timedelta(days=days)
    timeline = queries.version_timeline(agent, profile)
    search = query.get("q", "").strip()
    rollbacks = queries.rollbacks(agent, since)
    abtests, loop_events = queries.abtest_activity(agent, since)
    return {
        "agent": agent, "profile": profile, "guard": guard, "days": days, "window_days": queries.WINDOW_DAYS,
        "latest": queries.latest_snapshot(agent), "applied": queries.applied_strategies(agent), "target": TARGET,
        "charts": _agent_charts(agent, profile, guard, since, timeline, rollbacks, loop_events),
        "abtests": abtests, "mitigations": queries.mitigations(agent),
        "search": search, "q_page": queries.q_table_page(agent, search, query.get("qpage")),
        "decisions": queries.recent_decisions(agent), "failures": queries.failure_patterns(agent),
        "timeline": timeline, "preview_version": queries.preview_version(timeline, query.get("preview", "")),
        "after_rollback": queries.rollback_state(profile, rollbacks), "alerts": queries.open_alerts(agent),
        "events": queries.notable_events(agent), "audit": queries.audit_trail(agent),
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
