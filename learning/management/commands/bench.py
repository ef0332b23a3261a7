from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test.utils import setup_test_environment

from learning.bench import Bench, table, write_json


class Command(BaseCommand):
    help = (
        "Benchmark the learning loop through the full stack on a throw-away database with the production "
        "settings; prints a table and writes JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tasks", type=int, default=1000, help="Samples per latency figure.")
        parser.add_argument("--growth-tasks", type=int, default=20_000, help="Tasks for the bytes-per-task figure.")
        parser.add_argument("--out", default="bench-results/bench.json")

    def handle(self, tasks, growth_tasks, out, **options):
        if settings.DEBUG:
            self.stderr.write("DEBUG is on: Django records every query, so figures will be pessimistic.")
        setup_test_environment()
        original = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            figures = Bench(tasks, out).run(growth_tasks, None, self.stdout.write)
        finally:
            connection.creation.destroy_test_db(original, verbosity=0)
        self.stdout.write(table(figures))
        self.stdout.write(f"JSON written to {write_json(figures, out)}")
