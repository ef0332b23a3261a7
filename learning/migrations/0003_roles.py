from django.db import migrations

from qefleet.memory.roles import ADMIN, OPERATOR, VIEWER, migrate_roles, model_permissions

LEARNED = ["qentry", "decision", "execution", "learnedpattern", "failurepattern", "snapshot"]
CONFIGURED = ["strategy", "learningprofile", "appliedstrategy"]
EVERYTHING = LEARNED + CONFIGURED

ROLE_PERMISSIONS = {
    VIEWER: model_permissions("learning", EVERYTHING, "view"),
    OPERATOR: model_permissions("learning", EVERYTHING, "view"),
    ADMIN: model_permissions("learning", EVERYTHING, "view") + model_permissions(
        "learning", CONFIGURED, "add", "change", "delete"),
}


class Migration(migrations.Migration):
    dependencies = [
        ("learning", "0002_seed_catalog"),
        ("memory", "0002_roles"),
    ]

    operations = [migrations.RunPython(migrate_roles(ROLE_PERMISSIONS), migrations.RunPython.noop)]
