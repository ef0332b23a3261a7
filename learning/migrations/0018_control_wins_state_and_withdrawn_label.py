from django.db import migrations, models


def control_wins(apps, schema_editor):
    """Tests the control won were stored as "winner" (the verdict's outcome
    "loser" told them apart): give them, and their timeline, the new state."""
    ABTest = apps.get_model("learning", "ABTest")
    ABTransition = apps.get_model("learning", "ABTransition")
    won = ABTest.objects.filter(state="winner", decision__startswith="control wins")
    ABTransition.objects.filter(test__in=won, to_state="winner").update(to_state="control-wins")
    won.update(state="control-wins")


def winner_again(apps, schema_editor):
    ABTest = apps.get_model("learning", "ABTest")
    ABTransition = apps.get_model("learning", "ABTransition")
    ABTransition.objects.filter(to_state="control-wins").update(to_state="winner")
    ABTest.objects.filter(state="control-wins").update(state="winner")


class Migration(migrations.Migration):

    dependencies = [
        ('learning', '0017_state_versions_load_payload_on_read'),
    ]

    operations = [
        migrations.AlterField(
            model_name='abtest',
            name='state',
            field=models.CharField(choices=[('draft', 'Draft'), ('running', 'Running'), ('winner', 'Winner'), ('control-wins', 'Control wins'), ('inconclusive', 'Inconclusive'), ('aborted', 'Aborted'), ('applied', 'Applied'), ('monitoring', 'Monitoring'), ('kept', 'Kept'), ('reverted', 'Reverted')], default='draft', max_length=16),
        ),
        migrations.RunPython(control_wins, winner_again),
        # evaluate() withdraws mitigations too, not only a rollback.
        migrations.AlterField(
            model_name='mitigation',
            name='state',
            field=models.CharField(choices=[('active', 'Active'), ('effective', 'Effective'), ('ineffective', 'Ineffective'), ('withdrawn', 'Withdrawn')], default='active', max_length=16),
        ),
    ]
