from django.core.management.base import BaseCommand

from qefleet import schedules


class Command(BaseCommand):
    help = "Create, update or remove django-q2 schedules to match the registry (idempotent)."

    def handle(self, **options):
        created, updated, removed = schedules.ensure_schedules()
        for job in schedules.jobs():
            self.stdout.write(f"{job.name}: {job.func} every {job.minutes} min")
        self.stdout.write(f"created {created}, updated {updated}, removed {removed}")
