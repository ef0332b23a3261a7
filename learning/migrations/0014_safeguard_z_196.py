from django.db import migrations, models

OLD_DEFAULT, NEW_DEFAULT = 1.645, 1.96


def move_untuned_safeguards(apps, schema_editor):
    # Safeguards still on the old default move with it; tuned ones keep their value.
    apps.get_model("learning", "Safeguard").objects.filter(confidence_z=OLD_DEFAULT).update(confidence_z=NEW_DEFAULT)


def restore_old_default(apps, schema_editor):
    apps.get_model("learning", "Safeguard").objects.filter(confidence_z=NEW_DEFAULT).update(confidence_z=OLD_DEFAULT)


class Migration(migrations.Migration):
    dependencies = [("learning", "0013_overhead_minutes")]

    operations = [
        migrations.AlterField(
            model_name="safeguard",
            name="confidence_z",
            field=models.FloatField(default=NEW_DEFAULT,
                                    help_text="Degraded only if the interval's top is below the line."),
        ),
        migrations.RunPython(move_untuned_safeguards, restore_old_default),
    ]
