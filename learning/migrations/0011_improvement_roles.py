from django.db import migrations

from qefleet.memory.roles import ADMIN, OPERATOR, VIEWER, migrate_roles, model_permissions

SEEN = ["abtest", "abarm", "abtransition", "ablook", "improvementcycle", "mitigation", "sharedpattern",
        "patternimport"]
EDITED = ["abtest", "abarm", "mitigation", "sharedpattern", "patternimport"]

ROLE_PERMISSIONS = {
    VIEWER: model_permissions("learning", SEEN, "view"),
    OPERATOR: model_permissions("learning", SEEN, "view") + ["learning.run_cycle"],
    ADMIN: model_permissions("learning", SEEN, "view") + model_permissions("learning", EDITED, "add", "change")
    + ["learning.run_cycle"],
}


class Migration(migrations.Migration):
    dependencies = [("learning", "0010_improvement_loop")]

    operations = [migrations.RunPython(migrate_roles(ROLE_PERMISSIONS), migrations.RunPython.noop)]
