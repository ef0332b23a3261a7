"""The Statistics health page: each rule's rate as the drills measured it on
the agents' own logs (learning/drills.py) beside the rate it is designed
for, for the fleet and per agent; two queries."""

from learning import drills
from learning.core import drills as drill_math
from learning.core import stats
from learning.models import DrillRun
from qefleet.memory.models import Agent


def _fleet_rows(fleet):
    """The fleet's rules: (rule, measured rate, its interval and runs, nominal, band state)."""
    aa, stable = fleet["aa"], fleet["stable"]
    ten = next(item for item in fleet["drops"] if item["points"] == 10)
    fastest = next((item for item in fleet["fastest"] if item["points"] == 10), None)
    return [
        {
            "rule": "A/A tests ending in a verdict, winner or loser (a look every slot)",
            "rate": fleet["aa_verdicts"],
            "nominal": "5 % (the rule's two-sided level)",
            "state": drills.at_most(fleet["aa_verdicts"], stats.ALPHA),
        },
        {
            "rule": "A/A tests naming a false winner",
            "rate": aa,
            "nominal": "about 2.5 % (one side), at most 5 %",
            "state": drills.at_most(aa, stats.ALPHA),
        },
        {
            "rule": f"Stable runs of {drill_math.STABLE_TASKS:,} tasks with a false rollback",
            "rate": stable["runs_with_rollback"],
            "nominal": "none",
            "state": drills.band(stable["rollbacks"] == 0),
        },
        {
            "rule": "Stable safeguard checks that warn",
            "rate": stable["warnings"],
            "nominal": f"at most {drills.WARNING_SHARE * 100:.0f} %",
            "state": drills.at_most(stable["warnings"], drills.WARNING_SHARE),
        },
        {
            "rule": f"10-point drops acted on within {drill_math.DETECT_WITHIN} tasks",
            "rate": ten["within"],
            "nominal": f"at least {drills.DETECTED_SHARE * 100:.0f} %",
            "state": drills.detection_state(ten["within"], fastest["within"] if fastest else None),
        },
    ]


def statistics_context(agent=None):
    """The fleet's figures and each agent's newest run; with `agent`, that agent's run in full."""
    runs = list(DrillRun.objects.latest_per_agent())
    fleet = drills.fleet_figures(runs) if runs else None
    chosen = next((run for run in runs if agent is not None and run.agent_id == agent.pk), None)
    return {
        "fleet": fleet,
        "fleet_rows": _fleet_rows(fleet) if fleet else [],
        # Each drop size beside the fastest rule's figures for it (empty when no run has them).
        "detection": [(drop, next((item for item in fleet["fastest"] if item["points"] == drop["points"]), {}))
                      for drop in fleet["drops"]] if fleet else [],
        "agents": [drills.agent_health(run) for run in runs],
        "undrilled": Agent.objects.exclude(pk__in=[run.agent_id for run in runs])
        .filter(is_system=False)
        .order_by("agent_id")
        .values_list("agent_id", flat=True),
        "agent": agent,
        "detail": drills.agent_health(chosen) if chosen else None,
        "stable_tasks": drill_math.STABLE_TASKS,
        "detect_within": drill_math.DETECT_WITHIN,
        "drop_horizon": drill_math.DROP_HORIZON,
        "block": drill_math.BLOCK,
        "min_logged_tasks": drills.MIN_LOGGED_TASKS,
        "retention_days": DrillRun.RETENTION_DAYS,
    }
