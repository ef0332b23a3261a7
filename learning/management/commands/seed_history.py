"""`manage.py seed_history`: a simulated past for the demo fleet, for demos and benchmarks only."""

from django.core.management.base import BaseCommand, CommandError

from learning.harness import history


class Command(BaseCommand):
    help = (
        "FOR DEMOS AND BENCHMARKS ONLY: fill the database with a simulated learning history of the 17 demo "
        "agents (registered first): per-slot snapshots over --days, A/B tests in every state, applied and "
        "reverted strategies, mitigations, versions, rollbacks, alerts, pattern sharing, the last 1,000 "
        "decisions and executions per agent, --samples performance metrics over the period and --events "
        "memory events over the last 30 days (their TTL). No agent did this work: never run it on a database "
        "whose pages people rely on. It refuses when learning history exists (any executions or snapshots); "
        "--replace first deletes the demo agents' learning rows with their events, metrics and pattern "
        "copies (the append-only audit trail keeps its records of earlier runs)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=90,
                            help=f"Days of history, 1-{history.MAX_DAYS} (default 90).")
        parser.add_argument("--events", type=int, default=1_000_000,
                            help="Memory events in total, all within the last 30 days (default 1,000,000).")
        parser.add_argument("--samples", type=int, default=200_000,
                            help="Performance metric samples (task_score) over the period (default 200,000).")
        parser.add_argument("--seed", type=int, default=1, help="The same seed makes the same history (default 1).")
        parser.add_argument("--replace", action="store_true",
                            help="Delete the demo agents' learning history, events and metrics first.")

    def handle(self, days, events, samples, seed, replace, **options):
        try:
            counts = history.generate(days, events, samples, seed, replace, say=self.stdout.write)
        except history.HistoryExists as error:
            raise CommandError(f"{error} Run with --replace to delete the demo agents' history first.") from None
        except ValueError as error:
            raise CommandError(str(error)) from None
        seconds = counts.pop("seconds")
        self.stdout.write(f"Made {sum(counts.values()):,} rows in {seconds:.1f} s (seed {seed}, {days} days).")
