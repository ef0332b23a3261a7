"""The one access policy every memory operation goes through.

Levels (checked after blocks, owner and system agents):
  private  the owner only
  team     agents of the owner's team in the owner's swarm: read, write, share
  swarm    agents of the owner's swarm: read, write, share
  public   every agent: read, share
  system   the swarm's system agents only (not even a non-system owner)

A team is a team of one swarm (two fleets may both have a `core-testing`),
and an empty team or swarm is nobody's: agents without one share nothing by it.

- A system agent may do everything on its own swarm's records, blocks
  included: it administers that swarm, and no other. Fleet-wide
  administration belongs to the dashboard and the Django admin (roles).
- The owner may do everything on its non-system records and is never blocked.
- A block in the entry's ACL denies every operation, whatever is granted.
- A grant gives the listed permissions on private, team, swarm and public
  records; system-level records ignore grants.
- Delete, clear, changing owner or level, revoking and blocking are never
  granted by the level: only the owner (delete, change) or a system agent.
- `clear` (wipe a partition of the swarm's entries) is for system agents only.

Every refusal names its reason (`why_not`) for the audit trail; the caller
sees only the 404 or 403 itself.
"""

from .models import AccessLevel, Permission

READ = Permission.READ
WRITE = Permission.WRITE
DELETE = Permission.DELETE
SHARE = Permission.SHARE
CHANGE = "change"  # owner, level, blocks and revokes
CLEAR = "clear"

LEVEL_PERMISSIONS = {
    AccessLevel.PRIVATE: set(),
    AccessLevel.TEAM: {READ, WRITE, SHARE},
    AccessLevel.SWARM: {READ, WRITE, SHARE},
    AccessLevel.PUBLIC: {READ, SHARE},
    AccessLevel.SYSTEM: set(),
}


def _same(a, b):
    return bool(a) and a == b


def permissions(actor, record):
    """The set of operations `actor` may perform on `record` (an Owned row or
    a provider's virtual entry). `actor` is an Agent or None."""
    if actor is None:
        return set()
    if administers(actor, record.swarm):
        return {READ, WRITE, DELETE, SHARE, CHANGE}
    if record.access_level == AccessLevel.SYSTEM:
        return set()
    if record.owner_id == actor.agent_id:
        return {READ, WRITE, DELETE, SHARE, CHANGE}
    acl = record.acl
    if acl is not None and acl.blocks(actor.agent_id):
        return set()
    allowed = set(acl.permissions_of(actor.agent_id)) if acl is not None else set()
    level = record.access_level
    if (
        level == AccessLevel.PUBLIC
        or (level == AccessLevel.TEAM and _same(record.team, actor.team) and record.swarm == actor.swarm)
        or (level == AccessLevel.SWARM and _same(record.swarm, actor.swarm))
    ):
        allowed |= LEVEL_PERMISSIONS[level]
    return allowed


def administers(actor, swarm):
    """Whether `actor` is a system agent of `swarm` (a swarm-less system agent administers nobody's)."""
    return actor is not None and actor.is_system and _same(swarm, actor.swarm)


def can(actor, operation, record=None):
    """May `actor` perform `operation` on `record`? `clear` takes no record."""
    if operation == CLEAR:
        return actor is not None and actor.is_system
    return operation in permissions(actor, record)


def can_set_level(actor, level):
    """Only system agents may create or move records to the system level."""
    return level != AccessLevel.SYSTEM or (actor is not None and actor.is_system)


def why_not(actor, operation, record):
    """Why `actor` may not perform `operation` on `record`, in a few words."""
    if actor is None:
        return "anonymous"
    if record.access_level == AccessLevel.SYSTEM:
        return "system-level record"
    acl = record.acl
    if acl is not None and acl.blocks(actor.agent_id):
        return "blocked"
    if operation in (DELETE, CHANGE):
        return f"{operation} needs the owner or a system agent"
    return f"no {operation} permission at the {record.access_level} level"


def target_of(record):
    """How the audit trail names a record: memory entries by partition and key."""
    if hasattr(record, "partition") and hasattr(record, "key"):
        return f"memory:{record.partition}/{record.key}"
    return f"{record._meta.model_name}:{record.pk}"
