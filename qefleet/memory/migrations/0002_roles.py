from django.db import migrations

from qefleet.memory.roles import ROLE_PERMISSIONS, migrate_roles


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(migrate_roles(ROLE_PERMISSIONS), migrations.RunPython.noop)]
