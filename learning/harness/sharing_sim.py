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
speed-up is the non-importers' median over the importers', with a 95 %
bootstrap interval. It is computed twice: on the simulator's observed
outcomes, and on expected success, the hidden success probability of the
strategies chosen (free of coin-flip noise, as the issue measures learning).
The decisions that used what the swarm knows, and how they fared, come
alongside.

Read the observed figure with two limits in mind. No agent can reach the
threshold before task `window`, and importers that start from the swarm's
values are there from their first task: nearly all reach it at exactly
`window`, so the ratio is the non-importers' median over `window`, a
ceiling that no better sharing can lift. And a rolling rate of coin flips
reaches 14 of 20 by chance: an agent that learns nothing, at a success
probability of 0.6, does so at a median task 32 (0.55: 49). So on observed
outcomes the non-importers' median measures partly when luck arrives; on
expected success it measures when their choices are good.

`over_seeds` (`measure_over_seeds`) gives the distribution over seeds: each
seed's figures, the seeds that met the target (2x or more with the interval
above 1), and the ratio of medians over all seeds' newcomers together, its
interval resampling agents within each seed.

The newcomers' tasks run through the real API in this process
(ClientTransport by default), the teachers' through the same service
functions without HTTP (quality.ServiceTransport: the same decisions, a
quarter less time for a seed). It registers agents: run it on a throw-away
database, as the benchmark does.
Everything random derives from the seed: the world and its task streams,
and the recommendations' exploration draws (services.seeded_exploration;
in-process requests run in the calling thread), so a seed's figures repeat
exactly. `transport` carries the newcomers' tasks only (the teachers' run
in this process whatever it is); over a transport to another process the
newcomers' draws are that server's, unseeded.
"""

from datetime import timedelta

import numpy as np
from django.db.models import Count, Q
from django.utils import timezone

from learning import services, sharing
from learning.models import Execution, LearningProfile, PatternImport, SharedPattern
from qefleet.memory.fleet import issue_token, register_agent

from .quality import ServiceTransport
from .simulator import ClientTransport, FleetEnvironment, SimAgent, Simulation

DEFAULT_TEAMS = ("core-testing", "performance-security")
# The recommendations' exploration draws come from the world's seed too (a
# stream of their own), so a seed's figures repeat decision for decision.
EXPLORATION_STREAM = 5


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


def _fleet(pairs, teams, seed):
    """[(agent id, team, role)] in the environment's member order: each team's
    teachers first (one per task type), then blocks of importers and
    non-importers that each cover every task type once. Each seed has a
    fleet of its own, so seeds can run one after another in one database."""
    roster = []
    for team in teams:
        types = FleetEnvironment.task_types(team)
        roster += [(f"s{seed}-teach-{team}-{n}", team, "teacher") for n in range(len(types))]
        for block in range(2 * pairs):
            role = "importer" if block % 2 == 0 else "non_importer"
            roster += [(f"s{seed}-{role.replace('_', '-')}-{team}-{block // 2}-{n}", team, role)
                       for n in range(len(types))]
    return roster


def _register(roster, swarm):
    expires_at = timezone.now() + timedelta(days=1)
    agents = []
    for agent_id, team, role in roster:
        agent, _ = register_agent(agent_id, "sharing-sim", team, swarm)
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
        # The first task at which a window can be full: no agent can be faster.
        "reached_at_first_possible": sum(value == window for value in observed),
        "median_tasks_to_threshold": _median(observed),
        "tasks_to_threshold": observed,
        "median_tasks_to_threshold_expected": _median(expected),
        "tasks_to_threshold_expected": expected,
        f"success_first_{early}": float(np.mean([r[0] for agent in agent_ids for r in records[agent][:early]])),
        f"expected_first_{early}": float(np.mean([r[2] for agent in agent_ids for r in records[agent][:early]])),
        f"oracle_first_{early}": float(np.mean([r[3] for agent in agent_ids for r in records[agent][:early]])),
        f"random_first_{early}": float(np.mean([r[4] for agent in agent_ids for r in records[agent][:early]])),
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
    """A 95 % bootstrap interval of the ratio of medians. `slow` and `fast`
    are lists of groups (one per seed), each resampled within itself, so a
    figure over several seeds keeps each seed's share of agents; an agent
    that never reached the threshold counts as `censor` tasks (so the
    interval leans towards no speed-up)."""
    rng = np.random.default_rng(seed)

    def resampled_medians(groups):
        arrays = [np.array([censor if value is None else value for value in group], dtype=float) for group in groups]
        return np.median(np.hstack([rng.choice(array, (rounds, len(array))) for array in arrays]), axis=1)

    ratios = resampled_medians(slow) / resampled_medians(fast)
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
    roster = _fleet(pairs, teams, seed)
    agents = dict(zip([agent_id for agent_id, _, _ in roster], _register(roster, f"sharing-sim-{seed}")))
    environment = FleetEnvironment({agent_id: team for agent_id, team, _ in roster}, seed)
    by_role = {}
    for agent_id, _, role in roster:
        by_role.setdefault(role, []).append(agent_id)
    records = {}
    newcomers = [agents[i] for pair in zip(by_role["importer"], by_role["non_importer"]) for i in pair]
    with services.seeded_exploration([environment.seed, EXPLORATION_STREAM]):
        # The teachers only prepare the swarm: the API's service functions
        # without HTTP give the same decisions in about 60 % of the time.
        _run(ServiceTransport(), [agents[i] for i in by_role["teacher"]], environment, teacher_tasks, slot_tasks,
             records)
        shared = SharedPattern.objects.filter(source__agent_id__in=by_role["teacher"])
        shared_by_teachers = {"patterns": shared.count(),
                              "task_types": shared.values("task_type").distinct().count(),
                              "of_task_types": sum(len(FleetEnvironment.task_types(team)) for team in teams)}
        _run(transport, newcomers, environment, learner_tasks, slot_tasks, records)
    importers = _group(by_role["importer"], records, threshold, window, early)
    others = _group(by_role["non_importer"], records, threshold, window, early)
    return {
        "seed": environment.seed, "threshold": threshold, "window": window, "teacher_tasks": teacher_tasks,
        "learner_tasks": learner_tasks, "slot_tasks": slot_tasks, "teachers": len(by_role["teacher"]),
        "importers": importers, "non_importers": others,
        "speedup": _ratio(others["median_tasks_to_threshold"], importers["median_tasks_to_threshold"]),
        "speedup_interval": _interval([others["tasks_to_threshold"]], [importers["tasks_to_threshold"]],
                                      learner_tasks + 1, environment.seed),
        "speedup_expected": _ratio(others["median_tasks_to_threshold_expected"],
                                   importers["median_tasks_to_threshold_expected"]),
        "speedup_expected_interval": _interval([others["tasks_to_threshold_expected"]],
                                               [importers["tasks_to_threshold_expected"]], learner_tasks + 1,
                                               environment.seed),
        "shared_by_teachers": shared_by_teachers,
        "imports": PatternImport.objects.filter(agent__agent_id__in=by_role["importer"]).count(),
        # What the swarm told the importers where they knew nothing: its pooled values or a shared pattern.
        "shared_decisions": _decisions(by_role["importer"], "pooled", "pooled-type", "shared"),
        "default_decisions": _decisions(by_role["non_importer"], "default"),
    }


def measure_over_seeds(seeds, say=None, **options):
    """`measure_speedup` for each of `seeds` (fleets of their own), and
    their distribution (`over_seeds`)."""
    runs = []
    for seed in seeds:
        runs.append(measure_speedup(seed=seed, **options))
        if say:
            low, high = runs[-1]["speedup_interval"]
            say(f"  sharing, seed {seed}: {_times(runs[-1]['speedup'])} ({low:.2f}-{high:.2f}x)")
    return over_seeds(runs)


def _bounded_speedup(run, censor):
    """A seed's speed-up for the distribution over seeds. Where a group's
    median was not reached: the non-importers' (sharing's best case) counts
    as `censor` tasks, a lower bound of the ratio; the importers', as no
    speed-up (0)."""
    if run["speedup"] is not None:
        return run["speedup"]
    fast = _median(run["importers"]["tasks_to_threshold"])
    return censor / fast if fast else 0.0


def over_seeds(runs):
    """The distribution of several seeds' figures: per-seed speed-ups with
    the lowest and the median, the seeds that met the target (2x or more
    with the interval above 1), and the figure over all seeds' newcomers
    together (the ratio of the two groups' medians, its interval resampling
    agents within each seed)."""
    censor = runs[0]["learner_tasks"] + 1
    groups = {group: [run[group]["tasks_to_threshold"] for run in runs] for group in ("non_importers", "importers")}
    expected = {group: [run[group]["tasks_to_threshold_expected"] for run in runs] for group in groups}
    speedups = [_bounded_speedup(run, censor) for run in runs]
    return {
        "seeds": [run["seed"] for run in runs], "runs": runs,
        "speedups": [run["speedup"] for run in runs],
        "median_speedup": float(np.median(speedups)), "lowest_speedup": float(np.min(speedups)),
        "seeds_meeting_target": sum(speedup >= 2 and run["speedup_interval"][0] > 1
                                    for speedup, run in zip(speedups, runs)),
        "pooled_speedup": _ratio(*(_median(sum(groups[group], [])) for group in groups)),
        "pooled_interval": _interval(groups["non_importers"], groups["importers"], censor, runs[0]["seed"]),
        "pooled_speedup_expected": _ratio(*(_median(sum(expected[group], [])) for group in groups)),
        "pooled_expected_interval": _interval(expected["non_importers"], expected["importers"], censor,
                                              runs[0]["seed"]),
        "importers_at_first_possible": sum(run["importers"]["reached_at_first_possible"] for run in runs),
        "importers": sum(run["importers"]["agents"] for run in runs),
    }


def _times(speedup):
    return "not reached" if speedup is None else f"{speedup:.2f}x"
