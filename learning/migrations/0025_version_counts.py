import json
import zlib

from django.db import migrations, models


def fill_counts(apps, schema_editor):
    """Read each stored version's pattern count and exploration rate from its payload, once."""
    StateVersion = apps.get_model("learning", "StateVersion")
    versions = StateVersion.objects.filter(patterns__isnull=True).only("pk", "payload")
    changed = []
    for version in versions.iterator(chunk_size=100):
        state = json.loads(zlib.decompress(bytes(version.payload)))["state"]
        version.patterns, version.exploration_rate = len(state["patterns"]), state["config"]["exploration_rate"]
        changed.append(version)
        if len(changed) == 100:
            StateVersion.objects.bulk_update(changed, ["patterns", "exploration_rate"])
            changed = []
    StateVersion.objects.bulk_update(changed, ["patterns", "exploration_rate"])


class Migration(migrations.Migration):
    dependencies = [
        ("learning", "0024_shadow_mode"),
    ]

    operations = [
        migrations.AddField(
            model_name="stateversion",
            name="patterns",
            field=models.PositiveIntegerField(blank=True, help_text="Learned patterns in the state.", null=True),
        ),
        migrations.AddField(
            model_name="stateversion",
            name="exploration_rate",
            field=models.FloatField(blank=True, help_text="Epsilon in the state's config.", null=True),
        ),
        migrations.RunPython(fill_counts, migrations.RunPython.noop),
    ]
