"""`manage.py simulate_fleet`: the demo fleet working against a hidden environment.

Each simulated agent asks the real API for a strategy
(POST /api/v1/agents/{id}/recommendations), "runs" the task in the hidden
environment of learning/harness/simulator.py, and reports the outcome
(POST /api/v1/agents/{id}/executions), so the server learns exactly as it
would from real agents.

The environment: every team has 2-3 task types (`core-testing:unit-tests`);
a task falls in one of six buckets of its type (complexity low/medium/high x
few/many required capabilities). Per bucket each of the four catalog
strategies has a hidden success probability: the best one in [0.80, 0.90],
the others in [0.30, 0.60], and the best strategy changes from one bucket to
the next. Durations, errors on failure (timeout, network, validation,
memory...), coverage and efficiency are sampled around per-strategy means.

Modes: in-process (default) calls the API through Django's test client;
`--url http://127.0.0.1:8000` calls a running server over HTTP. Either way the
command opens the database of its settings to register the demo fleet (when
missing) and to issue a fresh token per simulated agent (label
"simulate_fleet", expiring a day after the run's expected end), so with --url
it must run with the same settings/DATABASE_URL as the server.
"""

import math
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from learning.harness.simulator import (
    ClientTransport,
    FleetEnvironment,
    HttpTransport,
    Poison,
    Simulation,
    SimulationError,
    demo_agent_ids,
    in_process_host,
    prepare_fleet,
)


def _f(value, digits=3):
    return "  n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def check_numbers(agents, tasks, rate, every, timeout, wait):
    total = len(demo_agent_ids())
    if not 1 <= agents <= total:
        raise CommandError(f"--agents must be between 1 and {total}.")
    if tasks < 1:
        raise CommandError("--tasks must be at least 1.")
    if rate < 0 or not math.isfinite(rate):
        raise CommandError("--rate must be 0 (as fast as possible) or a positive number of tasks per second.")
    if every is not None and every < 1:
        raise CommandError("--every must be at least 1.")
    if not (timeout > 0 and wait >= 0):
        raise CommandError("--timeout must be positive and --wait at least 0.")


class Command(BaseCommand):
    help = (
        "Simulate the demo fleet against a hidden environment through the real learning API, and report "
        "how its success rate improves. --tasks is the TOTAL number of tasks (recommendation + execution "
        "report) across the fleet, handed out round-robin over the agents. Environment: each team has 2-3 "
        "task types (e.g. core-testing:unit-tests); a task falls in a bucket of its type (complexity "
        "low/medium/high x few/many capabilities); per bucket each of the 4 catalog strategies has a hidden "
        "success probability, the best in [0.80, 0.90] and the others in [0.30, 0.60], and the best strategy "
        "differs between buckets. Outcomes (success, duration, errors, coverage) are sampled from it. "
        "In-process by default; --url drives a running server over HTTP. Either way the command registers "
        "the demo fleet if missing and issues one fresh token per agent in its own settings' database, so "
        "with --url run it against the database the server uses. Prints progress every ~10% of the run "
        "and a summary: success of the first vs last 200 tasks next to the oracle's and a random policy's "
        "expected success. Exits non-zero on any non-2xx answer."
    )

    def add_arguments(self, parser):
        total = len(demo_agent_ids())
        parser.add_argument("--agents", type=int, default=total,
                            help=f"How many demo agents take part (the first N of the fleet, 1-{total}; "
                                 f"default {total}).")
        parser.add_argument("--tasks", type=int, default=1000,
                            help="Total tasks across the fleet, round-robin over the agents (default 1000).")
        parser.add_argument("--seed", type=int, default=None,
                            help="Seed for the hidden environment and the task stream (default: random, printed).")
        parser.add_argument("--rate", type=float, default=0.0,
                            help="Tasks per second over the whole fleet; 0 (default) runs as fast as possible.")
        parser.add_argument("--url", default=None,
                            help="Base URL of a running server, e.g. http://127.0.0.1:8000 (default: in-process).")
        parser.add_argument("--timeout", type=float, default=10.0, help="Seconds per HTTP request with --url.")
        parser.add_argument("--wait", type=float, default=30.0,
                            help="With --url, seconds to wait for the server to come up before the first task "
                                 "(default 30).")
        parser.add_argument("--every", type=int, default=None,
                            help="Progress line every N tasks (default 10%% of the run, at most 500; and at "
                                 "least every 30 s).")
        parser.add_argument("--quiet", action="store_true", help="No progress lines, only the summary.")
        parser.add_argument("--poison-at", type=int, default=None,
                            help="Poisoning scenario: from this task number of each poisoned agent, its world "
                                 "favours the worst strategy of every bucket (success 0.95, the others 0.05).")
        parser.add_argument("--poison-len", type=int, default=60, help="How many tasks the poisoning lasts.")
        parser.add_argument("--poison-agents", default=None,
                            help="Comma-separated agent ids to poison (default: the first simulated agent).")
        parser.add_argument("--playbook", default="",
                            help="Playbook scenario: comma-separated agent ids that start with a hand-written "
                                 "strategy applied (through the memory API) for their team's task types where one "
                                 "strategy is best everywhere (integration-tests, security-scan): "
                                 "sequential-execution, or resource-optimization where sequential is the best, "
                                 "which that world punishes. The improvement loop should find the better "
                                 "strategy, test it and apply the winner.")

    def handle(self, agents, tasks, seed, rate, url, timeout, wait, every, quiet, poison_at, poison_len,
               poison_agents, playbook, **options):
        check_numbers(agents, tasks, rate, every, timeout, wait)
        try:
            transport = HttpTransport(url, timeout) if url else ClientTransport(in_process_host())
        except ValueError as error:
            raise CommandError(str(error)) from None

        expected_run = timedelta(seconds=tasks / rate) if rate else timedelta(0)
        fleet = prepare_fleet(agents, token_lifetime=timedelta(days=1) + expected_run)
        poison = None
        if poison_at is not None:
            chosen = poison_agents.split(",") if poison_agents else [fleet[0].agent_id]
            unknown = sorted(set(chosen) - {agent.agent_id for agent in fleet})
            if unknown or poison_at < 1 or poison_len < 1:
                raise CommandError(f"--poison-at and --poison-len must be positive and the agents simulated: "
                                   f"{', '.join(unknown)}" if unknown else "--poison-at and --poison-len must be positive.")
            poison = Poison(frozenset(chosen), poison_at, poison_len)
        environment = FleetEnvironment({agent.agent_id: agent.team for agent in fleet}, seed, poison=poison)
        playbook_agents = {agent_id for agent_id in playbook.split(",") if agent_id}
        without = sorted(agent.agent_id for agent in fleet
                         if agent.agent_id in playbook_agents and not environment.playbook(agent.team))
        unknown = sorted(playbook_agents - {agent.agent_id for agent in fleet})
        if unknown or without:
            raise CommandError(f"--playbook: not simulated: {', '.join(unknown)}" if unknown else
                               f"--playbook: no task type of their team has a playbook: {', '.join(without)}")
        per_agent = f"{tasks // agents}" + (f"-{tasks // agents + 1}" if tasks % agents else "")
        types = sorted({t for agent in fleet for t in environment.task_types(agent.team)})
        self.stdout.write(
            f"Simulating {agents} agents, {tasks} tasks in total (round-robin, {per_agent} per agent), "
            f"{'over HTTP to ' + url if url else 'in-process'}, seed {environment.seed}, "
            f"{f'{rate:g} tasks/s' if rate else 'as fast as possible'}.")
        self.stdout.write(
            f"Environment: {len(types)} task types x {len(environment.buckets())} buckets "
            "(complexity low/medium/high x capabilities few/many), 4 strategies; best p 0.80-0.90, others 0.30-0.60.")

        try:
            if url:
                transport.wait_until_up(wait)
        except SimulationError as error:
            raise CommandError(str(error)) from None
        simulation = Simulation(transport, fleet, environment, tasks, rate or None,
                                None if quiet else self.progress, every)
        try:
            for agent_id, applied in simulation.apply_playbooks(playbook_agents).items():
                self.stdout.write(f"Playbook for {agent_id}: " + ", ".join(
                    f"{strategy} on {task_type}" for task_type, strategy in applied.items()))
            summary = simulation.run()
        except SimulationError as error:
            if simulation.done:
                self.print_summary(simulation.summary())
            raise CommandError(f"Stopped after {simulation.done} tasks: {error}") from None
        self.print_summary(summary)

    def progress(self, report):
        percent = 100 * report["done"] / report["total"]
        self.stdout.write(
            f"[{percent:3.0f}%] {report['done']:>{len(str(report['total']))}}/{report['total']} tasks | "
            f"last {report['window']}: success {_f(report['success_rate'])}, "
            f"mean reward {report['mean_reward']:+.3f}, explored {_f(report['explored'], 2)} | "
            f"mean epsilon {_f(report['epsilon'])} over {report['agents_reporting']} agents | "
            f"{report['tasks_per_s']:.1f} tasks/s")

    def print_summary(self, summary):
        first, last = summary["first"], summary["last"]
        note = " (interrupted)" if summary["interrupted"] else ""
        self.stdout.write(
            f"Summary after {summary['tasks']} of {summary['requested']} tasks{note}, "
            f"{summary['elapsed_s']:.1f} s, seed {summary['seed']}:")
        self.stdout.write(f"  {'':<16} {'success':>8} {'expected':>9} {'oracle':>7} {'random':>7}")
        for name, part in ((f"first {first['tasks']} tasks", first), (f"last {last['tasks']} tasks", last)):
            self.stdout.write(
                f"  {name:<16} {_f(part['success']):>8} {_f(part['expected']):>9} "
                f"{_f(part['oracle']):>7} {_f(part['random']):>7}")
        self.stdout.write(
            "  (success: observed; expected: hidden success probability of the strategies the API chose; "
            "oracle: always the best strategy; random: a uniformly random strategy)")
        closed = summary["gap_closed"]
        self.stdout.write(
            f"  Gap from random to oracle closed on the last {last['tasks']} tasks: "
            f"{'n/a' if math.isnan(closed) else f'{closed:.0%}'}; overall success {_f(summary['success_rate'])}; "
            f"mean epsilon {_f(summary['epsilon'])}.")
        for agent, tasks_at in summary["rollbacks"].items():
            self.stdout.write(f"  Rolled back: {agent} at its task(s) {', '.join(map(str, tasks_at))}.")
        for agent, entry in (summary["poisoning"] or {}).items():
            self.stdout.write(
                f"  Poisoned {agent}: success {_f(entry['before'])} before, {_f(entry['after'])} right after; "
                + (f"rolled back at its task {entry['rolled_back_at']} ({entry['rollback_delay']:+d} tasks from the "
                   f"poison's end); success {_f(entry['recovered'])} over the 30 tasks after both were over."
                   if entry["rolled_back_at"] else "no rollback."))
