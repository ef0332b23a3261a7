from django.db import migrations

from qefleet.memory.roles import ADMIN, OPERATOR, VIEWER, migrate_roles, model_permissions

SEEN = ["safeguard", "rollback", "alert"]

ROLE_PERMISSIONS = {
    VIEWER: model_permissions("learning", SEEN, "view"),
    OPERATOR: model_permissions("learning", SEEN, "view") + ["learning.rollback_agent", "learning.act_on_alert"],
    ADMIN: model_permissions("learning", SEEN, "view") + model_permissions("learning", ["safeguard"], "change")
    + ["learning.rollback_agent", "learning.act_on_alert", "learning.reenable_learning", "memory.view_auditevent"],
}


class Migration(migrations.Migration):
    dependencies = [("learning", "0007_operator_permissions"), ("memory", "0003_audit_trail")]

    operations = [migrations.RunPython(migrate_roles(ROLE_PERMISSIONS), migrations.RunPython.noop)]
