from django.db import migrations, models


def start_references(apps, schema_editor):
    """An existing row's best estimate of its long mean is its value; its
    shortfall was measured against the value, so it starts again at 0."""
    PooledValue = apps.get_model("learning", "PooledValue")
    PooledValue.objects.update(reference=models.F("value"), shortfall=0.0)


class Migration(migrations.Migration):
    dependencies = [
        ("learning", "0026_pooled_value_restarts"),
    ]

    operations = [
        migrations.AddField(
            model_name="pooledvalue",
            name="reference",
            field=models.FloatField(default=0.0, help_text="The mean of the outcomes since the value last restarted "
                                                           "(over at most the last 100): what a shortfall is "
                                                           "measured against."),
        ),
        migrations.AlterField(
            model_name="pooledvalue",
            name="shortfall",
            field=models.FloatField(default=0.0,
                                    help_text="How far recent outcomes fell below the reference (<= 0)."),
        ),
        migrations.RunPython(start_references, migrations.RunPython.noop),
    ]
