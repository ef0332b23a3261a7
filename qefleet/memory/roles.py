"""Operator roles: Django groups with the permissions each role needs.

viewer reads; operator also acts (acknowledge, roll back, run a cycle, as
those arrive); admin also edits thresholds, config and the swarm memory in
the Django admin. Each app gives the roles its own permissions through a
data migration built with `migrate_roles`.
"""

from django.contrib.auth.management import create_permissions

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)

MEMORY_MODELS = [
    "agent", "agenttoken", "memoryentry", "memoryacl", "event", "pattern", "performancemetric", "workflowstate",
    "consensusproposal", "artifact", "swarmsession", "goapgoal", "goapaction", "goapplan", "oodacycle", "hint",
]


def model_permissions(app_label, models, *actions):
    return [f"{app_label}.{action}_{model}" for model in models for action in actions]


ROLE_PERMISSIONS = {
    VIEWER: model_permissions("memory", MEMORY_MODELS, "view"),
    OPERATOR: model_permissions("memory", MEMORY_MODELS, "view"),
    ADMIN: model_permissions("memory", MEMORY_MODELS, "view", "add", "change", "delete"),
}


def sync_roles(group_model, permission_model, role_permissions):
    """Add to each role group its listed permissions (idempotent)."""
    for role, dotted_names in role_permissions.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = []
        for dotted in dotted_names:
            app_label, codename = dotted.split(".")
            wanted.append(permission_model.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.add(*wanted)


def migrate_roles(role_permissions):
    """A RunPython function that gives the roles the listed permissions."""

    def run(apps, schema_editor):
        # Permissions are normally created after all migrations; make them now.
        for app_label in sorted({name.split(".")[0] for names in role_permissions.values() for name in names}):
            app_config = apps.get_app_config(app_label)
            app_config.models_module = True
            create_permissions(app_config, apps=apps, verbosity=0)
        sync_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), role_permissions)

    return run
