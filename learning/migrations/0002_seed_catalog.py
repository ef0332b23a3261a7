from django.db import migrations

CATALOG = [
    ("parallel-execution", 1.0, "exponential", "Run everything in parallel; retry failures with exponential backoff.", False),
    ("sequential-execution", 0.0, "fixed", "Run one step at a time; retry a fixed number of times.", True),
    ("adaptive-retry", 0.5, "adaptive", "Half parallel; retry only errors that look transient, backing off adaptively.", False),
    ("resource-optimization", 0.3, "exponential", "Low parallelism to save memory and CPU; exponential backoff.", False),
]


def seed(apps, schema_editor):
    Strategy = apps.get_model("learning", "Strategy")
    for name, parallelization, retry_policy, description, is_default in CATALOG:
        Strategy.objects.get_or_create(
            name=name,
            defaults={"parallelization": parallelization, "retry_policy": retry_policy,
                      "description": description, "is_default": is_default},
        )


class Migration(migrations.Migration):
    dependencies = [("learning", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
