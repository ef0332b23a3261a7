"""The memory service: every read and write of the swarm memory.

Each function takes the calling agent (from its token, never from a body
field), checks it with access.can(), and changes state in one transaction.
A record the caller may not read answers NotFound, so its existence does not
leak; one it may read but not change answers Forbidden.
"""

import base64
import binascii
import re

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from . import access, providers, rows
from .errors import Conflict, Forbidden, Invalid, NotFound
from .keys import validate_key, validate_partition, whole_number
from .models import (
    AccessLevel,
    Agent,
    AuditEvent,
    ConsensusProposal,
    ConsensusStatus,
    Event,
    GoapAction,
    GoapGoal,
    GoapPlan,
    MemoryACL,
    MemoryEntry,
    Pattern,
    Permission,
    SwarmSession,
    UNEXPIRED_SQL,
)

MAX_PAGE = 200
SWARM_RE = re.compile(r"^[-a-zA-Z0-9_]*$")  # Agent.swarm is a slug


# --- helpers shared by every table -------------------------------------------


def visible_q(actor, with_grants=False):
    """A superset filter of the rows `actor` may read; access.can() decides."""
    if access.administers(actor, actor.swarm):
        return Q(swarm=actor.swarm) | Q(owner_id=actor.agent_id) | Q(access_level=AccessLevel.PUBLIC)
    q = Q(owner_id=actor.agent_id) | Q(access_level=AccessLevel.PUBLIC)
    if actor.team:
        q |= Q(access_level=AccessLevel.TEAM, team=actor.team, swarm=actor.swarm)
    if actor.swarm:
        q |= Q(access_level=AccessLevel.SWARM, swarm=actor.swarm)
    if with_grants:
        q |= Q(acl_record__granted_permissions__has_key=actor.agent_id)
    return q & ~Q(access_level=AccessLevel.SYSTEM)


def check_level(actor, level, target):
    if level not in AccessLevel.values:
        raise Invalid(f"access_level must be one of {', '.join(AccessLevel.values)}.", "access_level")
    if not access.can_set_level(actor, level):
        raise Forbidden("Only system agents may use the system access level.", "access_level").denied(
            actor, "set system level", target, "not a system agent")


def require(actor, operation, record, what="record"):
    """Raise NotFound when `actor` may not even read `record`, Forbidden when
    it may read it but not perform `operation`; both are audited denials."""
    allowed = access.permissions(actor, record)
    if access.READ not in allowed:
        raise NotFound(f"No such {what}.").denied(actor, operation, access.target_of(record),
                                                   access.why_not(actor, access.READ, record))
    if operation not in allowed:
        raise Forbidden(f"You may read this {what} but not {operation} it.").denied(
            actor, operation, access.target_of(record), access.why_not(actor, operation, record))


def encode_cursor(value):
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor):
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Invalid("The cursor is not one this server issued.", "cursor") from None


def check_limit(limit):
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}.", "limit")


def scan_readable(actor, queryset, field, after, limit, descending=False, keep=None):
    """Up to `limit + 1` rows `actor` may read (and `keep` accepts), in `field`
    order after the value `after`, fetched in batches."""
    queryset = queryset.order_by(f"-{field}" if descending else field)
    lookup = f"{field}__lt" if descending else f"{field}__gt"
    found = []
    while len(found) <= limit:
        batch = list((queryset.filter(**{lookup: after}) if after is not None else queryset)[: limit + 1])
        found.extend(row for row in batch if access.can(actor, access.READ, row) and (keep is None or keep(row)))
        if len(batch) <= limit:
            break
        after = getattr(batch[-1], field)
    return found[: limit + 1]


def readable_page(actor, queryset, limit, cursor, newest_first=False, keep=None):
    """One keyset page of `queryset` rows `actor` may read: (rows, next_cursor)."""
    check_limit(limit)
    after = decode_cursor(cursor)
    after_pk = whole_number(after) if after is not None else None
    if after is not None and after_pk is None:
        raise Invalid("The cursor is not one this server issued.", "cursor")
    rows = scan_readable(actor, queryset.filter(visible_q(actor)), "pk", after_pk, limit, newest_first, keep)
    next_cursor = encode_cursor(rows[limit - 1].pk) if len(rows) > limit else None
    return rows[:limit], next_cursor


def get_readable(actor, model, pk, operation=access.READ, for_update=False):
    queryset = model.objects.all()
    if for_update:
        queryset = queryset.select_for_update()
    record = queryset.filter(pk=pk).first()
    if record is None:
        raise NotFound(f"No such {model._meta.verbose_name}.")
    require(actor, operation, record, model._meta.verbose_name)
    return record


def create_owned(actor, model, access_level=None, ttl_seconds=None, **fields):
    """Create a record owned by `actor`; owner, team and swarm come from it."""
    record = model(**fields)
    level = access_level or model.DEFAULT_LEVEL
    check_level(actor, level, f"{model._meta.model_name}:new")
    record.assign_owner(actor, level)
    if hasattr(record, "set_ttl"):
        record.set_ttl(ttl_seconds)
    return rows.insert(record)


@transaction.atomic
def update_owned(actor, model, pk, **fields):
    record = get_readable(actor, model, pk, access.WRITE, for_update=True)
    for name, value in fields.items():
        setattr(record, name, value)
    record.save()
    return record


# --- events ------------------------------------------------------------------

# Event-type prefixes the server writes, registered by the app that writes
# them (learning: "learning:"), compared without case: an agent's own event
# must never read as the server's on an operator's page.
RESERVED_EVENT_PREFIXES = set()


def reserve_event_types(prefix):
    RESERVED_EVENT_PREFIXES.add(prefix.casefold())


def post_event(actor, type, payload, access_level=None, ttl_seconds=None):
    """An agent's event; the server's own go through create_owned."""
    reserved = next((prefix for prefix in sorted(RESERVED_EVENT_PREFIXES) if type.casefold().startswith(prefix)), None)
    if reserved is not None:
        raise Invalid(f"Event types starting with {reserved!r} are written by the server only.", "type")
    return create_owned(actor, Event, access_level, ttl_seconds, type=type, payload=payload)


# --- memory entries ----------------------------------------------------------


def _provided(partition, key):
    """(provider, virtual entry) when a provider serves the key, else (None, None)."""
    provider = providers.find(partition, key)
    if provider is None:
        return None, None
    owner = Agent.objects.filter(agent_id=provider.owner_of(key) or "").first()
    if owner is None:
        raise NotFound("No such memory entry.")
    entry = providers.ProvidedEntry(partition, key, owner.agent_id, owner.team, owner.swarm, provider.access_level)
    return provider, entry


def _provided_dict(entry, value):
    return {"partition": entry.partition, "key": entry.key, "value": value, "owner": entry.owner_id,
            "access_level": entry.access_level, "team": entry.team, "swarm": entry.swarm, "metadata": {},
            "version": None, "created_at": None, "updated_at": None, "expires_at": None}


def lock_live(queryset):
    """The row of `queryset` locked for update, or None; an expired row that
    still occupies the unique key is deleted, so the key is free again."""
    row = queryset.select_for_update(of=("self",)).first()
    if row is not None and row.is_expired:
        row.delete()
        return None
    return row


def scope_of(actor, swarm=None):
    """The swarm whose key space a request addresses: the caller's own, or
    (reads only) the one it names, where it can read what is public."""
    if swarm is None:
        return actor.swarm
    if len(swarm) > 64 or not SWARM_RE.match(swarm):
        raise Invalid("swarm is up to 64 letters, digits, '_' and '-'.", "swarm")
    return swarm


def _locked_entry(partition, key, swarm):
    # No join of the ACL here: on PostgreSQL a statement that waited for the
    # lock still sees the joined rows as they were when it began, so a grant
    # committed meanwhile would look absent. Read lazily, after the lock.
    return lock_live(MemoryEntry.with_expired.filter(swarm=swarm, partition=partition, key=key))


def get_entry(actor, partition, key, swarm=None):
    validate_partition(partition)
    validate_key(key)
    scope = scope_of(actor, swarm)
    provider, virtual = _provided(partition, key)
    if provider is not None:
        require(actor, access.READ, virtual, "memory entry")
        try:
            return _provided_dict(virtual, provider.read(key))
        except KeyError:
            raise NotFound("No such memory entry.") from None
    entry = MemoryEntry.objects.select_related("acl_record").filter(swarm=scope, partition=partition, key=key).first()
    if entry is None:
        raise NotFound("No such memory entry.")
    require(actor, access.READ, entry, "memory entry")
    return entry.to_dict()


def _check_ttl(ttl_seconds):
    if ttl_seconds is not None and not 0 <= ttl_seconds <= 10 * 365 * 24 * 3600:
        raise Invalid("ttl_seconds must be between 0 (never expires) and ten years.", "ttl_seconds")


def put_entry(actor, partition, key, value, ttl_seconds=None, access_level=None, metadata=None):
    """Create or update an entry: (entry dict, created). One transaction."""
    validate_partition(partition)
    validate_key(key)
    _check_ttl(ttl_seconds)
    provider, virtual = _provided(partition, key)
    if provider is not None:
        require(actor, access.WRITE, virtual, "memory entry")
        if not provider.is_writable(key):
            raise Forbidden("This key is served from learned state and is read-only.", "key")
        try:
            with transaction.atomic():
                stored = provider.write(key, value)
        except providers.ProviderError as error:
            raise Invalid(error.message, error.field) from None
        return _provided_dict(virtual, stored), False
    try:
        with transaction.atomic():
            entry = _locked_entry(partition, key, actor.swarm)
            created = entry is None
            if created:
                entry = MemoryEntry(partition=partition, key=key, value=value, metadata=metadata or {})
                level = access_level or AccessLevel.PRIVATE
                check_level(actor, level, access.target_of(entry))
                entry.assign_owner(actor, level)
                entry.set_ttl(ttl_seconds)
            else:
                require(actor, access.WRITE, entry, "memory entry")
                if access_level is not None and access_level != entry.access_level:
                    raise Forbidden("The access level changes only through PUT acl/, by the owner or a system agent.",
                                    "access_level")
                entry.value = value
                if metadata is not None:
                    entry.metadata = metadata
                if ttl_seconds is not None:
                    entry.set_ttl(ttl_seconds)
                entry.version += 1
            entry.save()
    except IntegrityError:
        # Two first writes of one key raced; the loser retries as an update.
        raise Conflict("The entry was created concurrently; retry the request.", "key") from None
    return entry.to_dict(), created


@transaction.atomic
def delete_entry(actor, partition, key):
    validate_partition(partition)
    validate_key(key)
    provider, virtual = _provided(partition, key)
    if provider is not None:
        require(actor, access.DELETE, virtual, "memory entry")
        raise Forbidden("This key is served from learned state and cannot be deleted.", "key")
    entry = _locked_entry(partition, key, actor.swarm)
    if entry is None:
        raise NotFound("No such memory entry.")
    require(actor, access.DELETE, entry, "memory entry")
    entry.delete()


def query_entries(actor, partition, prefix="", limit=50, cursor=None, swarm=None):
    """Entries of a partition (in the key space of the caller's swarm, or the
    one it names) whose key starts with `prefix`, that `actor` may read,
    ordered by key: (entries, next_cursor)."""
    validate_partition(partition)
    scope = scope_of(actor, swarm)
    check_limit(limit)
    if len(prefix) > 512:
        raise Invalid("The prefix is longer than a key can be.", "prefix")
    after = decode_cursor(cursor)
    queryset = (
        MemoryEntry.objects.select_related("acl_record")
        .filter(swarm=scope, partition=partition, key__startswith=prefix)
        .filter(visible_q(actor, with_grants=True))
    )
    found = [entry.to_dict() for entry in scan_readable(actor, queryset, "key", after, limit, keep=matches(prefix))]
    for provider in providers.overlapping(partition, prefix):
        start = prefix if prefix.startswith(provider.prefix) else provider.prefix
        found += _readable_provided(actor, partition, provider, start, after or "", limit)
    found.sort(key=lambda item: item["key"])
    next_cursor = encode_cursor(found[limit - 1]["key"]) if len(found) > limit else None
    return found[:limit], next_cursor


def matches(prefix):
    """A row filter for `startswith` lookups: SQLite's LIKE ignores ASCII case,
    PostgreSQL's does not, and both must answer the same."""
    return lambda row: row.key.startswith(prefix)


def _readable_provided(actor, partition, provider, start, after, limit):
    """Up to `limit + 1` of the provider's keys under `start`, after `after`,
    that `actor` may read, as entries: the access check runs before the page
    is cut, reading on past the keys of owners `actor` may not read."""
    refused = set()
    found = []
    while len(found) <= limit:
        keys = provider.keys(start, after, limit + 1)
        for key in keys:
            if provider.owner_of(key) in refused:
                continue
            try:
                found.append(get_entry(actor, partition, key))
            except NotFound as error:
                if error.denial is not None:
                    refused.add(provider.owner_of(key))
        if len(keys) <= limit:
            break
        after = keys[-1]
    return found[: limit + 1]


@transaction.atomic
def clear_partition(actor, partition):
    """Delete every stored entry of a partition that belongs to the caller's
    swarm. System agents only."""
    validate_partition(partition)
    if not access.can(actor, access.CLEAR):
        raise Forbidden("Only system agents may clear a partition.").denied(
            actor, access.CLEAR, f"partition:{partition}", "not a system agent")
    _, deleted = MemoryEntry.with_expired.filter(partition=partition, swarm=actor.swarm).delete()
    return deleted.get(MemoryEntry._meta.label, 0)


def get_acl(actor, partition, key):
    validate_partition(partition)
    validate_key(key)
    entry = MemoryEntry.objects.select_related("acl_record").filter(
        swarm=actor.swarm, partition=partition, key=key).first()
    if entry is None:
        raise NotFound("No such memory entry.")
    require(actor, access.SHARE, entry, "memory entry")
    return _acl_dict(entry)


def _acl_dict(entry):
    acl = entry.acl
    return {"partition": entry.partition, "key": entry.key, **entry.ownership_dict(),
            "grants": acl.granted_permissions if acl else {}, "blocks": acl.blocked_agents if acl else []}


def _check_agents(agent_ids, field, swarm):
    """An ACL names agents of its entry's swarm; one that does not exist and
    one of another swarm answer alike, so ids cannot be probed across swarms."""
    known = set(Agent.objects.filter(agent_id__in=agent_ids, swarm=swarm).values_list("agent_id", flat=True))
    unknown = sorted(set(agent_ids) - known)
    if unknown:
        raise Invalid(f"Unknown agents in this swarm: {', '.join(unknown)}.", field)


@transaction.atomic
def set_acl(actor, partition, key, grants, blocks, access_level=None, owner=None, request=None):
    """Replace an entry's grants and blocks, and optionally its level or owner.

    Sharing (adding grants of permissions one holds) is open to anyone with
    `share`; removing grants, blocking, and changing level or owner need
    `change`: the owner or a system agent. A change is audited (`request`
    says where it came from).
    """
    validate_partition(partition)
    validate_key(key)
    for agent_id, perms in grants.items():
        bad = sorted(set(perms) - set(Permission.values))
        if bad or not perms:
            raise Invalid(f"Grants for {agent_id} must be a non-empty list of {', '.join(Permission.values)}.",
                          "grants")
    # The entry and the caller's right to share it first: a missing key must
    # answer 404 whatever agents the body names.
    entry = _locked_entry(partition, key, actor.swarm)
    if entry is None:
        raise NotFound("No such memory entry.")
    held = access.permissions(actor, entry)
    require(actor, access.SHARE, entry, "memory entry")
    _check_agents(list(grants), "grants", entry.swarm)
    _check_agents(blocks, "blocks", entry.swarm)
    before = entry.access_state()
    acl = entry.acl or MemoryACL(entry=entry)
    current = {agent: set(perms) for agent, perms in acl.granted_permissions.items()}
    wanted = {agent: set(perms) for agent, perms in grants.items()}
    only_adds = all(current[agent] <= wanted.get(agent, set()) for agent in current)
    changes_structure = (
        not only_adds
        or set(blocks) != set(acl.blocked_agents)
        or (access_level is not None and access_level != entry.access_level)
        or (owner is not None and owner != entry.owner_id)
    )
    if changes_structure and access.CHANGE not in held:
        raise Forbidden("Only the owner or a system agent may revoke, block, or change the level or owner.").denied(
            actor, access.CHANGE, access.target_of(entry), access.why_not(actor, access.CHANGE, entry))
    added = set().union(*(wanted[agent] - current.get(agent, set()) for agent in wanted)) if wanted else set()
    if not added <= held:
        raise Forbidden("You can only grant permissions you hold yourself.", "grants").denied(
            actor, access.SHARE, access.target_of(entry), f"granting {', '.join(sorted(added - held))} it lacks")
    if access_level is not None and access_level != entry.access_level:
        check_level(actor, access_level, access.target_of(entry))
        entry.access_level = access_level
    if owner is not None and owner != entry.owner_id:
        new_owner = Agent.objects.filter(agent_id=owner, swarm=entry.swarm).first()
        if new_owner is None:
            raise Invalid(f"Unknown agents in this swarm: {owner}.", "owner")
        entry.assign_owner(new_owner, entry.access_level)
    acl.granted_permissions = {agent: sorted(perms) for agent, perms in wanted.items()}
    acl.blocked_agents = sorted(set(blocks))
    acl.save()
    entry.version += 1
    entry.save()
    entry.acl_record = acl
    after = entry.access_state()
    if after != before:
        AuditEvent.record(actor.agent_id, "acl_change", access.target_of(entry), request, before=before, after=after)
    return _acl_dict(entry)


# --- consensus ---------------------------------------------------------------


@transaction.atomic
def vote(actor, proposal_id, choice):
    """Record one vote; the proposal is decided once either side reaches quorum."""
    if choice not in ("approve", "reject"):
        raise Invalid("vote must be 'approve' or 'reject'.", "vote")
    proposal = get_readable(actor, ConsensusProposal, proposal_id, access.READ, for_update=True)
    if proposal.status != ConsensusStatus.PENDING:
        raise Conflict(f"The proposal is already {proposal.status}.", "vote")
    if actor.agent_id in proposal.votes:
        raise Conflict("You have already voted on this proposal.", "vote")
    proposal.votes = {**proposal.votes, actor.agent_id: choice}
    approvals, rejections = proposal.tally()
    if approvals >= proposal.quorum:
        proposal.status = ConsensusStatus.APPROVED
    elif rejections >= proposal.quorum:
        proposal.status = ConsensusStatus.REJECTED
    if proposal.status != ConsensusStatus.PENDING:
        proposal.decided_at = timezone.now()
    proposal.version += 1
    proposal.save()
    return proposal


# --- patterns, sessions and plans --------------------------------------------


# The learning loop refreshes its copy on every task: no query compiling.
LIVE_PATTERN = rows.Query(Pattern, "owner", "pattern", where=UNEXPIRED_SQL, where_fields=("expires_at",))


def upsert_pattern(actor, pattern, confidence, metadata, ttl_seconds=None, access_level=None, usage_count=None):
    """Store the caller's own copy of a pattern; returns True when it was created.

    Refreshing a live copy at its current level is one UPDATE: the learning
    loop mirrors its patterns here on every task.
    """
    fields = {"confidence": confidence, "metadata": metadata, "updated_at": timezone.now()}
    if usage_count is not None:
        fields["usage_count"] = usage_count
    probe = Pattern()
    probe.set_ttl(ttl_seconds)
    fields["expires_at"] = probe.expires_at
    if access_level is None and LIVE_PATTERN.update(fields, actor, pattern, fields["updated_at"]):
        return False
    with transaction.atomic():
        existing = lock_live(Pattern.with_expired.filter(owner_id=actor.agent_id, pattern=pattern))
        if existing is None:
            create_owned(actor, Pattern, access_level, ttl_seconds, pattern=pattern,
                         **{name: value for name, value in fields.items() if name != "expires_at"})
            return True
        if access_level is not None and access_level != existing.access_level:
            check_level(actor, access_level, f"pattern:{pattern}")
            existing.access_level = access_level
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.save()
        return False


MAX_SESSION_CHECKPOINTS = 100


@transaction.atomic
def add_session_checkpoint(actor, session_id, checkpoint):
    """Append a checkpoint, keeping the newest MAX_SESSION_CHECKPOINTS."""
    session = get_readable(actor, SwarmSession, session_id, access.WRITE, for_update=True)
    entry = {"at": timezone.now().isoformat(), "data": checkpoint}
    session.checkpoints = [*session.checkpoints, entry][-MAX_SESSION_CHECKPOINTS:]
    session.save(update_fields=["checkpoints"])
    return session


@transaction.atomic
def resume_session(actor, session_id):
    session = get_readable(actor, SwarmSession, session_id, access.WRITE, for_update=True)
    session.last_resumed = timezone.now()
    session.save(update_fields=["last_resumed"])
    return session


@transaction.atomic
def create_plan(actor, goal_id, sequence, access_level=None):
    """A plan for a readable goal from readable actions; its cost is their sum."""
    try:
        goal = get_readable(actor, GoapGoal, goal_id)
    except NotFound as error:
        error.field = "goal_id"  # the body field that named it
        raise
    actions = {action.pk: action for action in GoapAction.objects.filter(pk__in=sequence)}
    missing = [pk for pk in sequence if pk not in actions or not access.can(actor, access.READ, actions[pk])]
    if missing:
        raise Invalid(f"No such GOAP actions: {', '.join(map(str, sorted(set(missing))))}.", "sequence")
    total = sum(actions[pk].cost for pk in sequence)
    return create_owned(actor, GoapPlan, access_level, goal=goal, sequence=sequence, total_cost=total)
