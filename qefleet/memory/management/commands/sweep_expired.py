from django.core.management.base import BaseCommand

from qefleet.memory.ttl import sweep_expired


class Command(BaseCommand):
    help = "Delete expired rows from the memory tables, in short batches."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--pause-ms", type=int, default=None)

    def handle(self, batch_size, pause_ms, **options):
        counts = sweep_expired(batch_size=batch_size, pause_ms=pause_ms)
        for table, count in counts.items():
            self.stdout.write(f"{table}: {count} deleted")
        self.stdout.write(f"total: {sum(counts.values())} deleted")
