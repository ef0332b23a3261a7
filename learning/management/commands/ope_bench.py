import json
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import connection

from learning.harness import ope_bench


class Command(BaseCommand):
    help = ("Check offline evaluation against truth: interval coverage and error on the simulated world, and the "
            "Open Bandit Dataset's Thompson sampling log; prints tables and writes JSON.")

    def add_arguments(self, parser):
        parser.add_argument("--seeds", type=int, default=50)
        parser.add_argument("--tasks", type=int, default=1000, help="Logged tasks per agent.")
        parser.add_argument("--first-seed", type=int, default=1)
        parser.add_argument("--cache", default="var/cache", help="Where obp's source archive is kept.")
        parser.add_argument("--skip-open-bandit", action="store_true", help="Only the simulated world.")
        parser.add_argument("--out", default="bench-results/ope.json")

    def handle(self, seeds, tasks, first_seed, cache, skip_open_bandit, out, **options):
        figures = {"whatif_time": self.time_whatif()}
        if not skip_open_bandit:
            figures["open_bandit"] = ope_bench.open_bandit_check(cache)
        figures["simulation"] = ope_bench.coverage_study(seeds, tasks, first_seed,
                                                         progress=lambda line: self.stderr.write(line))
        figures["shadow"] = ope_bench.shadow_study(seeds, tasks, first_seed=first_seed)
        self.stdout.write(ope_bench.tables(figures))
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2))
        self.stdout.write(f"JSON written to {path}")

    def time_whatif(self):
        """The what-if's time on a throw-away database, as the bench does."""
        original = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            return ope_bench.time_whatif()
        finally:
            connection.creation.destroy_test_db(original, verbosity=0)
