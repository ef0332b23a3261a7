from django.apps import AppConfig
from django.conf import settings


class LearningConfig(AppConfig):
    name = "learning"
    verbose_name = "Learning"

    def ready(self):
        from qefleet import schedules
        from qefleet.memory import providers

        from .providers import LearningKeys

        providers.register(LearningKeys())
        schedules.register(
            "qefleet.learning.every_slot", "learning.tasks.every_slot", max(1, settings.CYCLE_SLOT_SECONDS // 60)
        )
        schedules.register("qefleet.learning.prune_history", "learning.tasks.prune_history", 24 * 60)
        schedules.register("qefleet.learning.watch_schedules", "learning.tasks.watch_schedules", 5)
