from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MemoryConfig(AppConfig):
    name = "qefleet.memory"
    label = "memory"
    verbose_name = "Swarm memory"

    def ready(self):
        post_migrate.connect(_ensure_schedules, sender=self, dispatch_uid="qefleet-ensure-schedules")


def _ensure_schedules(sender, using="default", **kwargs):
    from qefleet import schedules

    schedules.ensure_schedules(using=using)
