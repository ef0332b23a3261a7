"""The "Is it learning?" panels: one agent's on its page, every agent's
verdict on the fleet page (learning.learning_health reads the figures; this
module only shapes them for the templates)."""

from learning import learning_health
from learning.core import learning_health as math
from learning.core.numbers import signed_number
from learning.learning_health import NO_PATTERNS
from qefleet.memory.models import Agent

# The badge tone of each verdict lives with the other badges (templatetags BADGES, "learning-health").
REASONS = {
    math.LEARNING: "its outcomes move its learned values and its decisions mostly come from what it learned",
    math.NOT_LEARNING: "outcomes arrive but its learned values do not move",
    math.MOSTLY_DEFAULT: "most of its decisions fall back to the catalog default",
    math.TOO_EARLY: f"fewer than {math.MIN_OUTCOMES} outcomes in the window",
    math.LEARNING_OFF: "its learning is turned off (rolled back or frozen): values are not meant to move",
}


# An agent in shadow learns, but its decisions are its own choices: "from what it learned" would not be true.
SHADOW_REASON = ("its outcomes move its learned values; most of its decisions are its own choices (shadow mode), "
                 "the learned ones logged beside them")


# Nor when most of them were set for it (an applied strategy, an A/B test's arm, several of those with shadow).
SET_REASON = "its outcomes move its learned values; most of its decisions were set for it ({sources}), not chosen by it"


def _with_reason(figures):
    set_for_it = [source for source in figures["borrowed_sources"] if source["source"] in math.SET_FOR_IT]
    if figures["verdict"] == math.LEARNING and sum(source["decisions"] for source in set_for_it) * 2 > figures[
            "decisions"]:
        in_shadow = sum(source["decisions"] for source in set_for_it if source["source"] == "shadow")
        if in_shadow * 2 > figures["decisions"]:
            return {**figures, "reason": SHADOW_REASON}
        sources = ", ".join(f"{source['decisions']} from {source['words']}" for source in set_for_it)
        return {**figures, "reason": SET_REASON.format(sources=sources)}
    return {**figures, "reason": REASONS[figures["verdict"]]}


def _with_regret_words(figures):
    """A table cell's short form of the regret and its 95 % interval: "+5.6 ± 12.5 points"."""
    regret = figures["regret"]
    short = None if regret is None else (f"{signed_number(regret['per_task'] * 100, 1)} ± "
                                         f"{(regret['high'] - regret['per_task']) * 100:.1f} points")
    return {**figures, "regret_words": short}


def agent_learning_panel(agent):
    """The agent page's panel: its figures over its last WINDOW_TASKS tasks."""
    return {"learning_health": _with_reason(learning_health.agent_learning_health(agent))}


def fleet_learning_panel():
    """The fleet page's panel: every agent's verdict and figures, and the
    fleet's pooled over all agents' windows (a fixed number of queries)."""
    fleet = learning_health.FleetHealth()
    use = learning_health.pattern_use(fleet.groups)
    rows = []
    for agent_pk, agent_id in Agent.objects.order_by("team", "agent_id").values_list("pk", "agent_id"):
        patterns = use.get(agent_pk, NO_PATTERNS)
        figures = learning_health.as_dict(fleet.of(agent_pk), fleet.verdict(agent_pk), fleet.tasks, patterns)
        rows.append({"agent_id": agent_id, **_with_regret_words(_with_reason(figures))})
    fleet_figures = _with_regret_words(learning_health.figures_dict(fleet.fleet, fleet.tasks))
    fleet_figures["patterns"] = {key: sum(item[key] for item in use.values()) for key in NO_PATTERNS}
    return {
        "learning_rows": rows,
        "learning_fleet": fleet_figures,
        "learning_counts": ", ".join(
            f"{count} {words}"
            for verdict, words in math.VERDICT_WORDS.items()
            if (count := sum(row["verdict"] == verdict for row in rows))
        )
        or "no agent yet",
    }
