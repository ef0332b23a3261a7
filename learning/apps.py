from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "learning"
    verbose_name = "Learning"

    def ready(self):
        from qefleet.memory import providers

        from . import jobs
        from .providers import LearningKeys, SharedPatternKeys

        providers.register(LearningKeys())
        providers.register(SharedPatternKeys())
        jobs.register()
