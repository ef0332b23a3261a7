"""Operator roles: Django groups with the permissions each role needs.

viewer reads; operator also acts on alerts, rollbacks and cycles; admin also
edits thresholds and the swarm memory in the Django admin. Later apps add
their permissions to ROLE_PERMISSIONS through their own migrations.
"""

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"

MEMORY_MODELS = [
    "agent", "agenttoken", "memoryentry", "memoryacl", "event", "pattern", "performancemetric", "workflowstate",
    "consensusproposal", "artifact", "swarmsession", "goapgoal", "goapaction", "goapplan", "oodacycle", "hint",
]


def memory_permissions(*actions):
    return [f"memory.{action}_{model}" for model in MEMORY_MODELS for action in actions]


ROLE_PERMISSIONS = {
    VIEWER: memory_permissions("view"),
    OPERATOR: memory_permissions("view"),
    ADMIN: memory_permissions("view", "add", "change", "delete"),
}


def sync_roles(group_model, permission_model, role_permissions=ROLE_PERMISSIONS):
    """Add to each role group its listed permissions (idempotent)."""
    for role, codenames in role_permissions.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = []
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            wanted.append(permission_model.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.add(*wanted)
