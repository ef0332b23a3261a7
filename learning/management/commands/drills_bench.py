"""`manage.py drills_bench`: the statistics drills on the simulated fleet, on a throw-away database."""

from django.core.management.base import BaseCommand
from django.db import connection
from django.test.utils import setup_test_environment

from learning.harness import drills_bench
from learning.harness.bench import write_json


class Command(BaseCommand):
    help = (
        "Benchmark the statistics drills: seed the simulated fleet's history on a throw-away database, drill "
        "every agent, print the measured rates beside their targets and write JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="Days of simulated history (default 30).")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--out", default="bench-results/drills.json")

    def handle(self, days, seed, out, **options):
        setup_test_environment()
        original = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            figures = drills_bench.run(days, seed, self.stdout.write)
        finally:
            connection.creation.destroy_test_db(original, verbosity=0)
        self.stdout.write(drills_bench.table(figures))
        self.stdout.write(f"JSON written to {write_json(figures, out)}")
