from django.db import migrations

from qefleet.memory.roles import ADMIN, OPERATOR, VIEWER, migrate_roles, model_permissions

ROLE_PERMISSIONS = {
    VIEWER: model_permissions("learning", ["stateversion", "liveversion"], "view"),
    OPERATOR: model_permissions("learning", ["stateversion", "liveversion"], "view"),
    ADMIN: model_permissions("learning", ["stateversion", "liveversion"], "view")
    + model_permissions("learning", ["stateversion"], "change"),
}


class Migration(migrations.Migration):
    dependencies = [("learning", "0004_state_versions")]

    operations = [migrations.RunPython(migrate_roles(ROLE_PERMISSIONS), migrations.RunPython.noop)]
