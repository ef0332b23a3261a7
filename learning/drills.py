"""Statistics drills: each agent's rules replayed on its own logs (the math
is learning/core/drills.py), kept as DrillRun rows, judged against the
rules' nominal rates, with an alert when a measured rate leaves its band.

The daily job (learning/jobs.py) drills every agent with enough logged
tasks; an operator can drill one agent now (learning/operations.py), and
`manage.py drills` does either from a shell.
"""

import time
from datetime import date

import numpy as np
from django.conf import settings
from django.db import transaction

from . import alerts
from .core import drills, scoring, stats
from .models import DrillRun, Execution, LearningProfile, Safeguard, Severity
from .safeguard import last_restore_task

LOGGED_TASKS = 1000  # the newest policy tasks since the last restore the drills resample
MIN_LOGGED_TASKS = 100
ALERT_KIND = "statistics:out_of_band"
# The bands: where a measured rate says the rule does not hold on this agent's traffic.
WARNING_SHARE = 0.10  # stable checks that warn: above this the window is too noisy to read
HORIZON_DAYS = 30  # an A/A horizon that takes longer than this at the agent's traffic never ends in time


class TooFewTasks(Exception):
    pass


def rule_of(agent):
    """The drills' copy of the agent's safeguard settings (the defaults when it has none)."""
    guard = Safeguard.objects.filter(agent=agent).first() or Safeguard()
    return drills.Rule(
        check_every=guard.check_every,
        window=guard.window,
        threshold_pct=guard.threshold_pct,
        z=guard.confidence_z,
        consecutive=guard.consecutive,
    )


def logged_outcomes(agent):
    """(successes, scores, tasks per cycle slot) of the agent's policy's
    newest LOGGED_TASKS tasks since its last restore, oldest first: the tasks
    the safeguard judges (an A/B test's forced tasks are the test's)."""
    rows = list(
        Execution.objects.filter(agent=agent, sequence__gt=last_restore_task(agent))
        .exclude(decision__fallback="abtest")
        .order_by("-sequence")
        .values_list("success", "execution_time_ms", "error_count", "satisfaction", "efficiency", "created_at")[
            :LOGGED_TASKS
        ]
    )
    if len(rows) < MIN_LOGGED_TASKS:
        raise TooFewTasks(
            f"{agent.agent_id} has {len(rows)} policy tasks since its last restore; the drills need {MIN_LOGGED_TASKS}."
        )
    rows.reverse()
    success, ms, errors, satisfaction, efficiency, at = zip(*rows)
    # None (never reported) becomes NaN, which the array score leaves out.
    scores = scoring.task_scores(
        np.array(success),
        np.array(ms, dtype=float),
        np.array(errors),
        np.array(satisfaction, dtype=float),
        np.array(efficiency, dtype=float),
    )
    slots = max(1.0, (at[-1] - at[0]).total_seconds() / settings.CYCLE_SLOT_SECONDS)
    return np.array(success, dtype=float), scores, len(rows) / slots


def default_seed(agent, day=None):
    """The same agent on the same day drills the same draws (a rerun reproduces the figures)."""
    return (day or date.today()).toordinal() * 100_003 + agent.pk


def drill(agent, trigger, seed=None):
    """Drill one agent now: the DrillRun, with its alert raised or resolved."""
    started = time.perf_counter()
    successes, scores, per_slot = logged_outcomes(agent)
    seed = default_seed(agent) if seed is None else seed
    rule = rule_of(agent)
    figures = drills.run_drills(successes, scores, per_slot / 2, rule, seed)
    figures["tasks_per_slot"] = per_slot
    figures["score_mean"], figures["score_sd"] = float(scores.mean()), float(scores.std(ddof=1))
    figures["health"] = health(figures)
    if not all(item["in_band"] for item in figures["health"] if item["rule"].startswith("Safeguard")):
        detection = next(item for item in figures["health"] if item["rule"] == DETECTION_RULE)
        figures["calibration"] = drills.calibrate(
            scores, rule, seed + 10, detection_in_reach=detection["state"] != OUT_OF_REACH
        )
    with transaction.atomic():
        run = DrillRun.objects.create(
            agent=agent,
            trigger=trigger,
            seed=seed,
            logged_tasks=len(scores),
            seconds=time.perf_counter() - started,
            figures=figures,
        )
        out_of_band = [item for item in figures["health"] if not item["in_band"]]
        if out_of_band:
            alerts.raise_alert(
                ALERT_KIND,
                Severity.WARNING,
                f"{agent.agent_id}: {out_of_band[0]['finding']}",
                {
                    "drill_run": run.pk,
                    "findings": [item["finding"] for item in out_of_band],
                    "advice": [item["advice"] for item in out_of_band],
                },
                agent,
            )
    return run


def drill_all(trigger):
    """Drill every agent with enough logged tasks; resolve the alerts of those now in band."""
    runs, skipped = [], []
    for profile in LearningProfile.objects.filter(task_count__gte=MIN_LOGGED_TASKS).select_related("agent"):
        try:
            runs.append(drill(profile.agent, trigger))
        except TooFewTasks:
            skipped.append(profile.agent.agent_id)
    firing = [
        f"{ALERT_KIND}:{run.agent.agent_id}"
        for run in runs
        if not all(item["in_band"] for item in run.figures["health"])
    ]
    alerts.resolve_cleared(
        ALERT_KIND,
        firing + [f"{ALERT_KIND}:{agent_id}" for agent_id in skipped],
        "Resolved: the latest drills measured every rule within its band.",
    )
    return {"drilled": len(runs), "skipped": skipped, "seconds": round(sum(run.seconds for run in runs), 2)}


# --- judging the measured rates ------------------------------------------------------------------


def _tasks(value):
    return "none caught" if value is None else f"{value:.0f} tasks"


def _percent(value):
    return f"{value * 100:.1f} %"


DETECTION_RULE = "Safeguard detection (10 points)"
NEAR_CERTAIN_ADVICE = (
    "The success rate is near 0 or 1, where the interval's normal approximation fails: test a larger minimum "
    "effect (mde) so each arm has more tasks, or test fleet-wide."
)


def health(figures):
    """Each rule's measured rate against its nominal one: [{rule, measured,
    nominal, state, in_band, finding, advice}]. A rate is out of its band
    when its interval lies wholly on the wrong side of the target (or, for
    the target of none, when any happened). A target that even the fastest
    rule misses on these logs is out of reach: no setting meets it, so it
    raises no alert, and the finding says what limits it."""
    aa, stable, rule = figures["aa"], figures["stable"], figures["rule"]
    ten = next(item for item in figures["drops"] if item["points"] == 10)
    fastest = next(item for item in figures["fastest"]["drops"] if item["points"] == 10)
    slots_per_day = 86_400 / settings.CYCLE_SLOT_SECONDS
    horizon_days = aa["horizon"] / max(figures["tasks_per_slot"] / 2 * slots_per_day, 1e-9)
    rollbacks = stable["runs_with_rollback"]
    verdicts = aa["verdicts"]
    detection = detection_state(ten["within"], fastest["within"])
    items = [
        {
            "rule": "A/B verdicts in A/A tests",
            "measured": verdicts["rate"],
            "nominal": stats.ALPHA,
            "state": at_most(verdicts, stats.ALPHA),
            "finding": f"A/A tests ended in a verdict, winner or loser, in {_percent(verdicts['rate'])} (interval "
            f"{_percent(verdicts['low'])} to {_percent(verdicts['high'])}) against the rule's two-sided level of 5 %",
            "advice": NEAR_CERTAIN_ADVICE,
        },
        {
            "rule": "A/B false winners",
            "measured": aa["rate"],
            "nominal": stats.ALPHA,
            "state": at_most(aa, stats.ALPHA),
            "finding": f"A/A false winners {_percent(aa['rate'])} (interval {_percent(aa['low'])} to "
            f"{_percent(aa['high'])}): one side of the 5 % level, so about 2.5 % by design and at most 5 %",
            "advice": NEAR_CERTAIN_ADVICE,
        },
        {
            "rule": "A/B horizon",
            "measured": horizon_days,
            "nominal": HORIZON_DAYS,
            "state": band(horizon_days <= HORIZON_DAYS),
            "finding": f"an A/B test's horizon of {aa['horizon']} tasks per arm takes {horizon_days:.0f} days "
            f"at this agent's traffic",
            "advice": "Too little traffic for the horizon: test a larger minimum effect (mde), or give the "
            "treatment a larger share (control_weight below 0.5).",
        },
        {
            "rule": "Safeguard false rollbacks",
            "measured": stable["per_1000_tasks"],
            "nominal": 0,
            "state": band(rollbacks["hits"] == 0),
            "finding": f"{stable['rollbacks']} false rollbacks in {stable['tasks']:,} stable tasks "
            f"({rollbacks['hits']} of {rollbacks['runs']} runs of {stable['tasks_per_run']:,} tasks)",
            "advice": "The world drifts within the log or the window is too short for this agent's noise: "
            "raise the safeguard's window or confidence_z.",
        },
        {
            "rule": "Safeguard warnings",
            "measured": stable["warnings"]["rate"],
            "nominal": WARNING_SHARE,
            "state": at_most(stable["warnings"], WARNING_SHARE),
            "finding": f"{_percent(stable['warnings']['rate'])} of stable checks warn (window {rule['window']} tasks)",
            "advice": "Warnings this often say little: raise the safeguard's window.",
        },
        {
            "rule": DETECTION_RULE,
            "measured": ten["within"]["rate"],
            "nominal": DETECTED_SHARE,
            "state": detection,
            "finding": f"10-point drops acted on within {ten['within_tasks']} tasks in "
            f"{_percent(ten['within']['rate'])} of drills (median delay {_tasks(ten['median'])}, "
            f"design {ten['nominal']}); the fastest rule on the same draws, tuned in hindsight, in "
            f"{_percent(fastest['within']['rate'])} (median {_tasks(fastest['median'])})"
            + (f": out of reach, as even that rule misses it; at a per-task spread of {figures['score_sd']:.2f} "
               "the target needs quieter scores, not another setting" if detection == OUT_OF_REACH else ""),
            "advice": "A faster rule catches these drops in time on this agent's logs: apply the calibrated "
            "setting below, or check more often (a smaller check_every).",
        },
    ]
    for item in items:
        item["in_band"] = item["state"] != OUT_OF_BAND
    return items


IN_BAND, OUT_OF_BAND, OUT_OF_REACH = "in-band", "out-of-band", "out-of-reach"
DETECTED_SHARE = 0.95  # the target share of 10-point drops acted on within DETECT_WITHIN tasks


STATE_SENTENCES = {
    IN_BAND: "every rule within its band",
    OUT_OF_BAND: "a rule out of its band",
    OUT_OF_REACH: "every rule within its band but a target out of reach at this agent's noise",
}


def band(within):
    return IN_BAND if within else OUT_OF_BAND


def at_most(rate, bound):
    """A measured rate against an upper bound: out of band when its whole interval lies above it."""
    return band(rate["low"] <= bound)


def detection_state(within, fastest_within=None):
    """The detection target against the share of drops the rule caught in
    time and the fastest rule's (None: not drilled, so never out of reach)."""
    if within["high"] >= DETECTED_SHARE:
        return IN_BAND
    reachable = fastest_within is None or fastest_within["high"] >= DETECTED_SHARE
    return OUT_OF_BAND if reachable else OUT_OF_REACH


def run_state(health_items):
    """One drill run's state: out of band when any rule is, else out of reach when any target is."""
    states = {item.get("state", band(item["in_band"])) for item in health_items}
    for state in (OUT_OF_BAND, OUT_OF_REACH):
        if state in states:
            return state
    return IN_BAND


# --- the fleet ----------------------------------------------------------------------------------


def _summed(rates):
    """One rate from several (hits and runs summed, the interval recomputed)."""
    rates = list(rates)
    return drills.rate(sum(item["hits"] for item in rates), sum(item["runs"] for item in rates))


def _fleet_drops(per_run):
    """The fleet's delay figures per drop size from each run's list of them (DROP_POINTS order)."""
    fleet = []
    for index, points in enumerate(drills.DROP_POINTS):
        items = [drops[index] for drops in per_run]
        delays = [delay for item in items for delay in item["delays"]]
        fleet.append(
            {
                "points": points,
                "runs": sum(item["runs"] for item in items),
                "missed": _summed(item["missed"] for item in items),
                "within": _summed(item["within"] for item in items),
                "median": float(np.median(delays)) if delays else None,
                "p90": float(np.percentile(delays, 90)) if delays else None,
            }
        )
    return fleet


def fleet_figures(runs):
    """The fleet's rates: the latest run of every agent, counts summed and
    intervals recomputed. Runs drilled before a figure existed ("verdicts",
    "fastest") are left out of that figure's sums."""
    runs = list(runs)
    stable = [run.figures["stable"] for run in runs]
    return {
        "agents": len(runs),
        "aa": _summed(run.figures["aa"] for run in runs),
        "aa_verdicts": _summed(run.figures["aa"]["verdicts"] for run in runs if "verdicts" in run.figures["aa"]),
        "stable": {
            "runs_with_rollback": _summed(item["runs_with_rollback"] for item in stable),
            "rollbacks": sum(item["rollbacks"] for item in stable),
            "tasks": sum(item["tasks"] for item in stable),
            "warnings": _summed(item["warnings"] for item in stable),
        },
        "drops": _fleet_drops([run.figures["drops"] for run in runs]),
        "fastest": _fleet_drops([run.figures["fastest"]["drops"] for run in runs if "fastest" in run.figures]),
        "out_of_band": sum(run_state(run.figures["health"]) == OUT_OF_BAND for run in runs),
        "out_of_reach": sum(run_state(run.figures["health"]) == OUT_OF_REACH for run in runs),
        "seconds": max((run.seconds for run in runs), default=None),
    }


def agent_health(run):
    """One drill run as the API and the page show it."""
    return {
        "agent": run.agent.agent_id,
        "drill_run": run.pk,
        "drilled_at": run.created_at.isoformat(),
        "trigger": run.trigger,
        "seed": run.seed,
        "logged_tasks": run.logged_tasks,
        "seconds": round(run.seconds, 3),
        "in_band": all(item["in_band"] for item in run.figures["health"]),
        "state": run_state(run.figures["health"]),
        "health": [{"state": band(item["in_band"]), **item} for item in run.figures["health"]],
        "figures": {
            name: run.figures[name]
            for name in ("aa", "stable", "drops", "fastest", "rule", "tasks_per_slot", "score_mean", "score_sd")
            if name in run.figures
        },
        "calibration": run.figures.get("calibration"),
    }


def fleet_health(agents):
    """The fleet's measured rates and each agent's, over the newest drill run of each of `agents`."""
    runs = list(DrillRun.objects.filter(agent__in=agents).latest_per_agent())
    return {"fleet": fleet_figures(runs), "agents": [agent_health(run) for run in runs]}
