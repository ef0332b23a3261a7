"""`manage.py bench_dashboard`: the dashboard's figures on a long history, in a
throw-away database with the production settings; prints a table, writes JSON."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.test.utils import override_settings, setup_test_environment

from learning.harness import dashboard_bench
from learning.harness.bench import write_json


class Command(BaseCommand):
    help = ("Benchmark the dashboard pages and the admin lists on 90 days of generated history (1,000,000 "
            "events, 200,000 performance samples) in a throw-away database; prints a table and writes JSON.")

    def add_arguments(self, parser):
        parser.add_argument("--samples", type=int, default=20, help="Requests per page.")
        parser.add_argument("--events", type=int, default=1_000_000)
        parser.add_argument("--metrics", type=int, default=200_000, help="Performance samples.")
        parser.add_argument("--out", default="bench-results/dashboard.json")

    def handle(self, samples, events, metrics, out, **options):
        if settings.DEBUG:
            self.stderr.write("DEBUG is on: Django records every query, so figures will be pessimistic.")
        # Pages render with the production static storage, as served.
        call_command("collectstatic", interactive=False, verbosity=0)
        setup_test_environment()
        # The test client speaks plain http; production would redirect it to https.
        override_settings(SECURE_SSL_REDIRECT=False).enable()
        original = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            figures = dashboard_bench.run(samples, self.stdout.write, events=events, metrics=metrics)
        finally:
            connection.creation.destroy_test_db(original, verbosity=0)
        self.stdout.write(dashboard_bench.table(figures))
        self.stdout.write(f"JSON written to {write_json(figures, out)}")
