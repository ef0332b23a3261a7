import django.db.models.deletion
from django.db import migrations, models

# The composite indexes of both tables already lead with the agent. Dropping
# the single-column index with SQL spares SQLite the table rebuild that an
# AlterField of db_index would run on two of the largest tables. The names
# are Django's for these columns, the same on SQLite and PostgreSQL.
INDEXES = {
    "learning_decision": "learning_decision_agent_id_14be6d88",
    "learning_execution": "learning_execution_agent_id_978d1790",
}


class Migration(migrations.Migration):

    dependencies = [
        ("learning", "0015_cycle_trigger_guard"),
        ("memory", "0006_fewer_indexes_on_per_task_rows"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(f"DROP INDEX IF EXISTS {index}", f"CREATE INDEX {index} ON {table} (agent_id)")
                for table, index in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="decision",
                    name="agent",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="decisions", to="memory.agent"),
                ),
                migrations.AlterField(
                    model_name="execution",
                    name="agent",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="executions", to="memory.agent"),
                ),
            ],
        ),
    ]
