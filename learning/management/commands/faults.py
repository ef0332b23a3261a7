from django.core.management.base import BaseCommand, CommandError
from django.core.management.utils import get_random_secret_key
from django.db import connection

from learning.harness.faults import SCENARIOS, Processes, run_scenarios, table, write_json


class Command(BaseCommand):
    help = ("Fault injection: start gunicorn and qcluster on a fresh SQLite file under var/faults/, kill them "
            "mid-write, fill the database quota, restart under load, kill rollbacks; print a table and write JSON.")

    def add_arguments(self, parser):
        parser.add_argument("scenarios", nargs="*", metavar="scenario",
                            help=f"Some of: {', '.join(SCENARIOS)} (default: all).")
        parser.add_argument("--out", default="bench-results/faults.json")

    def handle(self, scenarios, out, **options):
        unknown = sorted(set(scenarios) - set(SCENARIOS))
        if unknown:
            raise CommandError(f"Unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}.")
        if connection.vendor != "sqlite":
            raise CommandError("The fault harness runs on its own SQLite file; unset DATABASE_URL.")
        # The servers it starts get a random key of their own, as production would.
        processes = Processes(get_random_secret_key())
        results = run_scenarios(scenarios or list(SCENARIOS), processes, self.stdout.write)
        self.stdout.write(table(results))
        self.stdout.write(f"JSON written to {write_json(results, out)}")
        if any(result["passed"] is False for result in results.values()):
            raise CommandError("Some fault scenarios failed.")
