from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "learning"
    verbose_name = "Learning"

    def ready(self):
        from qefleet.memory import providers, store

        from . import events, jobs
        from .providers import LearningKeys, SharedPatternKeys

        providers.register(LearningKeys())
        providers.register(SharedPatternKeys())
        store.reserve_event_types(events.PREFIX)
        jobs.register()
