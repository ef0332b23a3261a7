from django.apps import AppConfig
from django.conf import settings


class LearningConfig(AppConfig):
    name = "learning"
    verbose_name = "Learning"

    def ready(self):
        from qefleet import schedules
        from qefleet.memory import providers

        from .providers import LearningKeys, SharedPatternKeys

        providers.register(LearningKeys())
        providers.register(SharedPatternKeys())
        slot_minutes = max(1, settings.CYCLE_SLOT_SECONDS // 60)
        schedules.register("qefleet.learning.every_slot", "learning.tasks.every_slot", slot_minutes)
        schedules.register("qefleet.learning.improvement_cycle", "learning.improvement.run_all", slot_minutes)
        # The guard looks for a lost cycle soon after each slot closes.
        schedules.register("qefleet.learning.cycle_guard", "learning.improvement.rerun_lost_cycle",
                           min(5, slot_minutes))
        schedules.register("qefleet.learning.share_patterns", "learning.sharing.share_and_import", slot_minutes)
        schedules.register("qefleet.learning.prune_history", "learning.tasks.prune_history", 24 * 60)
        schedules.register("qefleet.learning.watch_schedules", "learning.tasks.watch_schedules", 5)
