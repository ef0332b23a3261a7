import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test.utils import override_settings, setup_test_environment

from learning.harness.bench import Bench, table, write_json
from learning.harness.sharing_sim import measure_speedup
from learning.harness.simulator import ClientTransport, prepare_fleet, run_simulation

QUALITY_AGENTS = 17
QUALITY_TASKS_PER_AGENT = 120
QUALITY_SEEDS = 3
QUALITY_FIGURES = ("first_200", "last_200", "random", "oracle", "last_200_expected", "gap_closed",
                   "gap_closed_expected")


class Command(BaseCommand):
    help = (
        "Benchmark the learning loop through the full stack on a throw-away database with the production "
        "settings; prints a table and writes JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tasks", type=int, default=1000, help="Samples per latency figure.")
        parser.add_argument("--growth-tasks", type=int, default=20_000, help="Tasks for the bytes-per-task figure.")
        parser.add_argument("--out", default="bench-results/bench.json")
        parser.add_argument("--seed", type=int, default=1,
                            help=f"First of the {QUALITY_SEEDS} seeds of the simulated fleet for learning quality.")

    def handle(self, tasks, growth_tasks, out, seed, **options):
        if settings.DEBUG:
            self.stderr.write("DEBUG is on: Django records every query, so figures will be pessimistic.")
        setup_test_environment()
        # One bench agent sends thousands of requests a minute: measure the
        # learning loop, not the rate limit. The test client speaks plain
        # http, which production would redirect to https.
        override_settings(RATE_LIMIT_PER_MINUTE=0, SECURE_SSL_REDIRECT=False).enable()
        original = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            figures = Bench(tasks, out).run(growth_tasks, lambda: self.quality(seed),
                                            lambda: measure_speedup(ClientTransport(), seed=seed), self.stdout.write)
        finally:
            connection.creation.destroy_test_db(original, verbosity=0)
        self.stdout.write(table(figures))
        self.stdout.write(f"JSON written to {write_json(figures, out)}")

    def quality(self, seed):
        """17 agents x 120 tasks of the simulated fleet through the real API,
        for QUALITY_SEEDS seeds from `seed` on, each on a fleet of its own (the
        demo fleet has by then been filled with synthetic experiences,
        patterns and A/B tests for the improvement-cycle figures): one run's
        figure moves by ten points and more with its random draws."""
        runs = [self.quality_run(seed + offset) for offset in range(QUALITY_SEEDS)]
        figures = {name: float(np.mean([run[name] for run in runs])) for name in QUALITY_FIGURES}
        figures.update(tasks=runs[0]["tasks"], runs=runs)
        return figures

    def quality_run(self, seed):
        fleet = prepare_fleet(QUALITY_AGENTS, label="bench", prefix=f"seed{seed}-")
        summary = run_simulation(ClientTransport(), fleet, QUALITY_AGENTS * QUALITY_TASKS_PER_AGENT, seed=seed)
        figures = {name: summary[name] for name in ("first_200", "last_200", "random", "oracle", "tasks", "seed")}
        # The hidden success probability of the strategies chosen: the same
        # quantity as the oracle and random figures, without sampling noise.
        figures["last_200_expected"] = summary["last"]["expected"]
        gap = figures["oracle"] - figures["random"]
        figures["gap_closed"] = (figures["last_200"] - figures["random"]) / gap
        figures["gap_closed_expected"] = (figures["last_200_expected"] - figures["random"]) / gap
        return figures
