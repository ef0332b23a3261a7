from django.db import migrations, models


def count_current(apps, schema_editor):
    """Every existing value stands for all its visits: none has restarted."""
    PooledValue = apps.get_model("learning", "PooledValue")
    PooledValue.objects.update(current_visits=models.F("visits"))


class Migration(migrations.Migration):
    dependencies = [
        ("learning", "0025_version_counts"),
    ]

    operations = [
        migrations.AddField(
            model_name="pooledvalue",
            name="current_visits",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="pooledvalue",
            name="shortfall",
            field=models.FloatField(default=0.0, help_text="How far recent outcomes fell below the value (<= 0)."),
        ),
        migrations.RunPython(count_current, migrations.RunPython.noop),
    ]
