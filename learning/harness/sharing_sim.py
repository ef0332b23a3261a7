"""The learning speed-up from sharing, measured on the simulated fleet.

An agent that learns from its swarm (`imports_patterns`, on by default)
chooses by the swarm's pooled values per (task type, complexity x
capability bucket), backed off to the task type (services, engine), and
imports the `task_type:strategy` patterns its swarm shares for task types
it knows nothing of. The pooled values are the granularity that carries in
this world, where a task type's best strategy changes between buckets; a
task-type pattern mixes good and bad buckets and passes the sharing bar
only after hundreds of tasks. The measurement puts agents in front of task
types others already learned:

1. Teachers, one per task type of each team in `teams`, learn their main
   task type for `teacher_tasks` tasks each, with the sharing job running
   every `slot_tasks` tasks per agent (a fast cycle slot). 1,000 teacher
   tasks let patterns pass the sharing bar too, and two teams (5 task
   types) keep the run short.
2. Newcomers join the same swarm and teams: per task type `pairs` that
   learn from the swarm and `pairs` that do not (`imports_patterns=False`:
   they learn alone, from their own outcomes only, though those still go to
   the pool). They work `learner_tasks` tasks each, the sharing job still
   running every slot.

For each newcomer, tasks-to-threshold is the task number at which its
success rate over the last `window` tasks first reaches `threshold`; the
speed-up is the non-importers' median over the importers'. Success is the
simulator's observed outcome; the same figures on the hidden success
probability of the strategies chosen (no sampling noise) come alongside, as
do the decisions that used an import and how they fared.

Everything runs through the real API in this process (ClientTransport) and
registers agents: run it on a throw-away database, as the benchmark does.
With ClientTransport the exploration draws are seeded from `seed`
(services.seed_draws), so a seed's figures are the same in every run.
"""

from datetime import timedelta

import numpy as np
from django.db.models import Count, Q
from django.utils import timezone

from learning import services, sharing
from learning.models import Execution, LearningProfile, PatternImport, SharedPattern
from qefleet.memory.fleet import issue_token, register_agent

from .simulator import ClientTransport, FleetEnvironment, SimAgent, Simulation

SWARM = "sharing-sim"
DEFAULT_TEAMS = ("core-testing", "performance-security")


def tasks_to_threshold(successes, threshold, window):
    """1-based task number at which the mean of the last `window` values first
    reaches `threshold`, or None."""
    values = np.asarray(successes, dtype=float)
    if len(values) < window:
        return None
    sums = np.convolve(values, np.ones(window), mode="valid")
    reached = np.flatnonzero(sums >= threshold * window - 1e-9)
    return int(reached[0]) + window if len(reached) else None


def _median(numbers):
    """Median with None as 'not reached' (after every number); None when
    at least half never reached the threshold."""
    ordered = sorted(numbers, key=lambda value: (value is None, value or 0))
    middle = ordered[(len(ordered) - 1) // 2: len(ordered) // 2 + 1]
    return None if any(value is None for value in middle) else float(np.mean(middle))


def _fleet(pairs, teams):
    """[(agent id, team, role)] in the environment's member order: each team's
    teachers first (one per task type), then blocks of importers and
    non-importers that each cover every task type once."""
    roster = []
    for team in teams:
        types = FleetEnvironment.task_types(team)
        roster += [(f"teach-{team}-{n}", team, "teacher") for n in range(len(types))]
        for block in range(2 * pairs):
            role = "importer" if block % 2 == 0 else "non_importer"
            roster += [(f"{role.replace('_', '-')}-{team}-{block // 2}-{n}", team, role) for n in range(len(types))]
    return roster


def _register(roster):
    expires_at = timezone.now() + timedelta(days=1)
    agents = []
    for agent_id, team, role in roster:
        agent, _ = register_agent(agent_id, "sharing-sim", team, SWARM)
        LearningProfile.objects.update_or_create(agent=agent, defaults={"imports_patterns": role != "non_importer"})
        agents.append(SimAgent(agent_id, team, issue_token(agent, "sharing_sim", expires_at)[1]))
    return agents


def _run(transport, agents, environment, tasks_each, slot_tasks, records):
    """Round-robin `tasks_each` tasks per agent; the sharing job every slot."""
    simulation = Simulation(transport, agents, environment, len(agents) * tasks_each)
    sharing.share_and_import()  # the slot in which these agents start
    for number in range(len(agents) * tasks_each):
        agent = agents[number % len(agents)]
        records.setdefault(agent.agent_id, []).append(simulation.step(agent))
        if (number + 1) % (slot_tasks * len(agents)) == 0:
            sharing.share_and_import()


def _group(agent_ids, records, threshold, window, early):
    observed = [tasks_to_threshold([r[0] for r in records[agent]], threshold, window) for agent in agent_ids]
    expected = [tasks_to_threshold([r[2] for r in records[agent]], threshold, window) for agent in agent_ids]
    return {
        "agents": len(agent_ids),
        "reached": sum(value is not None for value in observed),
        "median_tasks_to_threshold": _median(observed),
        "tasks_to_threshold": observed,
        "median_tasks_to_threshold_expected": _median(expected),
        f"success_first_{early}": float(np.mean([r[0] for agent in agent_ids for r in records[agent][:early]])),
        f"expected_first_{early}": float(np.mean([r[2] for agent in agent_ids for r in records[agent][:early]])),
        "success_all": float(np.mean([r[0] for agent in agent_ids for r in records[agent]])),
    }


def _decisions(agent_ids, *fallbacks):
    """How many decisions of these agents were made one of the ways
    `fallbacks` names, and their success rate."""
    stats = Execution.objects.filter(agent__agent_id__in=agent_ids, decision__fallback__in=fallbacks).aggregate(
        n=Count("pk"), successes=Count("pk", filter=Q(success=True)))
    return {"decisions": stats["n"], "success": stats["successes"] / stats["n"] if stats["n"] else None}


def _ratio(slow, fast):
    return slow / fast if slow is not None and fast else None


def _interval(slow, fast, censor, seed, rounds=2000):
    """A 95 % bootstrap interval of the ratio of medians; an agent that never
    reached the threshold counts as `censor` tasks (so the interval leans
    towards no speed-up)."""
    rng = np.random.default_rng(seed)
    slow = np.array([censor if value is None else value for value in slow], dtype=float)
    fast = np.array([censor if value is None else value for value in fast], dtype=float)
    ratios = (np.median(rng.choice(slow, (rounds, len(slow))), axis=1)
              / np.median(rng.choice(fast, (rounds, len(fast))), axis=1))
    return [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]


def measure_speedup(transport=None, seed=1, teacher_tasks=1000, learner_tasks=100, pairs=3, slot_tasks=10,
                    threshold=0.7, window=20, early=50, teams=DEFAULT_TEAMS):
    """Run the two phases and return the figures (see the module docstring):
    per group (importers, non_importers) the tasks-to-threshold and early
    success, `speedup` (non-importers' median tasks-to-threshold over the
    importers'; None when either median was not reached) with a 95 %
    bootstrap interval, its counterpart on expected success, what was shared
    and imported, and how the decisions that used an import did against the
    non-importers' catalog-default ones."""
    transport = transport or ClientTransport()
    # The exploration draws from the seed too, so a seed's figures repeat (in
    # this process; a server behind HttpTransport draws its own).
    services.seed_draws([seed, 2])
    roster = _fleet(pairs, teams)
    agents = dict(zip([agent_id for agent_id, _, _ in roster], _register(roster)))
    environment = FleetEnvironment({agent_id: team for agent_id, team, _ in roster}, seed)
    by_role = {}
    for agent_id, _, role in roster:
        by_role.setdefault(role, []).append(agent_id)
    records = {}
    _run(transport, [agents[i] for i in by_role["teacher"]], environment, teacher_tasks, slot_tasks, records)
    shared = SharedPattern.objects.filter(source__agent_id__in=by_role["teacher"])
    shared_by_teachers = {"patterns": shared.count(),
                          "task_types": shared.values("task_type").distinct().count(),
                          "of_task_types": sum(len(FleetEnvironment.task_types(team)) for team in teams)}
    newcomers = [agents[i] for pair in zip(by_role["importer"], by_role["non_importer"]) for i in pair]
    _run(transport, newcomers, environment, learner_tasks, slot_tasks, records)
    importers = _group(by_role["importer"], records, threshold, window, early)
    others = _group(by_role["non_importer"], records, threshold, window, early)
    return {
        "seed": environment.seed, "threshold": threshold, "window": window, "teacher_tasks": teacher_tasks,
        "learner_tasks": learner_tasks, "slot_tasks": slot_tasks, "teachers": len(by_role["teacher"]),
        "importers": importers, "non_importers": others,
        "speedup": _ratio(others["median_tasks_to_threshold"], importers["median_tasks_to_threshold"]),
        "speedup_interval": _interval(others["tasks_to_threshold"], importers["tasks_to_threshold"],
                                      learner_tasks + 1, environment.seed),
        "speedup_expected": _ratio(others["median_tasks_to_threshold_expected"],
                                   importers["median_tasks_to_threshold_expected"]),
        "shared_by_teachers": shared_by_teachers,
        "imports": PatternImport.objects.filter(agent__agent_id__in=by_role["importer"]).count(),
        # What the swarm told the importers where they knew nothing: its pooled values or a shared pattern.
        "shared_decisions": _decisions(by_role["importer"], "pooled", "pooled-type", "shared"),
        "default_decisions": _decisions(by_role["non_importer"], "default"),
    }
