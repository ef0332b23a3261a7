"""The drills' benchmark (`manage.py drills_bench`, part of `make bench`):
the statistics drills on the simulated fleet's generated history, the fleet's
measured rates against the issue's targets, and the seconds per agent.
Nothing here asserts; the table prints each figure beside its target."""

import time

import numpy as np

from learning import drills
from learning.core import drills as drill_math
from learning.harness import history
from learning.models import DrillRun


def run(days, seed, say):
    """Seed the simulated history, drill every agent, and return the figures."""
    history.generate(days, 10_000, 10_000, seed, replace=False, say=say)
    started = time.perf_counter()
    summary = drills.drill_all("command")
    elapsed = time.perf_counter() - started
    runs = list(DrillRun.objects.latest_per_agent())
    fleet = drills.fleet_figures(runs)
    return {
        "fleet": fleet,
        "elapsed_seconds": elapsed,
        "agents": summary["drilled"],
        "seconds_per_agent": {run.agent.agent_id: run.seconds for run in runs},
        "health": {run.agent.agent_id: run.figures["health"] for run in runs},
        "rules": {run.agent.agent_id: run.figures["rule"] for run in runs},
        "calibration": {run.agent.agent_id: run.figures.get("calibration") for run in runs},
        "score_mean": [run.figures["score_mean"] for run in runs],
        "score_sd": [run.figures["score_sd"] for run in runs],
    }


def _rate(item):
    return f"{item['rate'] * 100:.2f} % [{item['low'] * 100:.2f}, {item['high'] * 100:.2f}] of {item['runs']:,}"


def _tasks(value):
    return "—" if value is None else f"{value:.0f}"


def table(figures):
    fleet = figures["fleet"]
    ten = next(item for item in fleet["drops"] if item["points"] == 10)
    slowest = max(figures["seconds_per_agent"].values())
    fastest = {item["points"]: item for item in fleet["fastest"]}
    rows = [
        (
            "A/A verdicts, winner or loser, every-slot looks",
            _rate(fleet["aa_verdicts"]),
            "within 1 point of 5 % (the rule's two-sided level)",
        ),
        ("A/A false winners, every-slot looks", _rate(fleet["aa"]), "about 2.5 % (one side), at most 5 %"),
        (
            "false rollbacks in stable tasks",
            f"{fleet['stable']['rollbacks']} in {fleet['stable']['tasks']:,} tasks",
            f"0 in {figures['agents']} x {drill_math.STABLE_TASKS:,}",
        ),
        ("stable runs with a false rollback", _rate(fleet["stable"]["runs_with_rollback"]), "0"),
        ("stable checks that warn", _rate(fleet["stable"]["warnings"]), ""),
    ]
    for item in fleet["drops"]:
        rows.append(
            (
                f"{item['points']}-point drop: acted on within {drill_math.DETECT_WITHIN} tasks",
                _rate(item["within"]),
                ">= 95 %" if item is ten else "",
            )
        )
        rows.append(
            (
                f"{item['points']}-point drop: delay median / p90, missed",
                f"{_tasks(item['median'])} / {_tasks(item['p90'])} tasks, {_rate(item['missed'])}",
                "",
            )
        )
        best = fastest[item["points"]]
        rows.append(
            (
                f"  fastest rule (CUSUM, in hindsight): within {drill_math.DETECT_WITHIN}",
                f"{_rate(best['within'])}, median {_tasks(best['median'])} tasks",
                "",
            )
        )
    proposals = [item for item in figures["calibration"].values() if item]
    if proposals:
        rows += [
            (
                "calibrated: agents with a proposal / meeting every target",
                f"{len(proposals)} / {sum(item['meets'] for item in proposals)}",
                "",
            ),
            (
                "calibrated: false rollbacks in stable tasks",
                f"{sum(item['stable_rollbacks'] for item in proposals)} in {sum(item['stable_tasks'] for item in proposals):,}",
                "0",
            ),
            (
                "calibrated: checks that warn, median over agents",
                f"{np.median([item['warnings']['rate'] for item in proposals]) * 100:.1f} %",
                "<= 10 %",
            ),
            (
                "calibrated: 10-point drops within 60 tasks, median over agents",
                f"{np.median([item['within']['rate'] for item in proposals]) * 100:.1f} %",
                ">= 95 %",
            ),
        ]
    rows += [
        (
            "per-task score: mean / spread, median over agents",
            f"{np.median(figures['score_mean']):.3f} / {np.median(figures['score_sd']):.3f}",
            "",
        ),
        ("agents out of band", f"{fleet['out_of_band']} of {figures['agents']}", ""),
        ("agents with a target out of reach (and none out of band)", f"{fleet['out_of_reach']} of {figures['agents']}",
         ""),
        ("drill seconds, slowest agent", f"{slowest:.2f} s", "<= 10 s per agent per day"),
        ("drill seconds, whole fleet", f"{figures['elapsed_seconds']:.2f} s", ""),
    ]
    width = max(len(name) for name, _, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:<48}  {target}" for name, value, target in rows)
