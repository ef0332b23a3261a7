"""The 15 swarm-memory tables.

Every record except the registry and the ACL is *owned*: it carries the owner
agent, its access level, and the owner's team and swarm as they were when it
was written, so the one policy function in access.py can judge any of them.
Expiring tables hide expired rows from `objects` at once; the sweeper deletes
them later through `with_expired`.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from . import rows

DAY = 24 * 3600


class AccessLevel(models.TextChoices):
    PRIVATE = "private"
    TEAM = "team"
    SWARM = "swarm"
    PUBLIC = "public"
    SYSTEM = "system"


class Permission(models.TextChoices):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    SHARE = "share"


class AgentStatus(models.TextChoices):
    ACTIVE = "active"
    IDLE = "idle"
    TERMINATED = "terminated"


class Agent(models.Model):
    """agent_registry: who an agent is; its identity comes from its tokens."""

    agent_id = models.SlugField(max_length=64, unique=True)
    type = models.CharField(max_length=64)
    capabilities = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=AgentStatus.choices, default=AgentStatus.ACTIVE, db_index=True)
    team = models.SlugField(max_length=64, blank=True)
    swarm = models.SlugField(max_length=64, blank=True)
    is_system = models.BooleanField(default=False, help_text="System agents administer the swarm's memory.")
    performance = models.JSONField(default=dict, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "agent_registry"
        ordering = ["agent_id"]

    def __str__(self):
        return self.agent_id

    def heartbeat(self, status=None):
        self.last_heartbeat_at = timezone.now()
        fields = ["last_heartbeat_at", "updated_at"]
        if status:
            self.status = status
            fields.append("status")
        self.save(update_fields=fields)

    def to_dict(self):
        return {
            "agent_id": self.agent_id,
            "type": self.type,
            "capabilities": self.capabilities,
            "status": self.status,
            "team": self.team,
            "swarm": self.swarm,
            "is_system": self.is_system,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_heartbeat_at": self.last_heartbeat_at,
        }


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


class AgentTokenQuerySet(models.QuerySet):
    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class AgentToken(models.Model):
    """A bearer token for one agent. Only its SHA-256 digest is stored.

    256 random bits make a fast hash safe here; a slow password hash would
    cost CPU on every one of the agents' many requests.
    """

    PREFIX_LENGTH = 8

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tokens")
    prefix = models.CharField(max_length=PREFIX_LENGTH, db_index=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AgentTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.agent.agent_id})"

    @classmethod
    def issue(cls, agent, label="", expires_at=None, actor="system", request=None):
        """Create a token; the plain text is returned once and never stored."""
        plain = "qef_" + secrets.token_urlsafe(32)
        with transaction.atomic():
            token = cls.objects.create(
                agent=agent, prefix=plain[4 : 4 + cls.PREFIX_LENGTH], digest=digest(plain), label=label,
                expires_at=expires_at,
            )
            AuditEvent.record(actor, "token_issue", f"agent:{agent.agent_id}", request, prefix=token.prefix,
                              label=label, expires_at=expires_at.isoformat() if expires_at else None)
        return token, plain

    @classmethod
    def find(cls, plain):
        """The usable token of an active agent that `plain` is, or None."""
        if not plain or len(plain) > 200:
            return None
        token = USABLE_TOKEN.first(digest(plain), timezone.now())
        if token is None:
            return None
        return None if token.agent.status == AgentStatus.TERMINATED else token

    @classmethod
    def authenticate(cls, plain):
        """The agent a presented token belongs to, or None."""
        token = cls.find(plain)
        if token is None:
            return None
        token.touch()
        return token.agent

    def touch(self):
        now = timezone.now()
        # Record use at most once a minute: no write on every request.
        if self.last_used_at is None or now - self.last_used_at > timedelta(minutes=1):
            AgentToken.objects.filter(pk=self.pk).update(last_used_at=now)

    @property
    def is_usable(self):
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    def revoke(self, actor="system", request=None):
        if self.revoked_at is None:
            with transaction.atomic():
                self.revoked_at = timezone.now()
                self.save(update_fields=["revoked_at"])
                AuditEvent.record(actor, "token_revoke", f"agent:{self.agent.agent_id}", request, prefix=self.prefix)


# LiveManager's rule as a rows.Query condition (its parameter: now).
UNEXPIRED_SQL = "(T.expires_at IS NULL OR T.expires_at > %s)"

# Every request authenticates: rows.Query spares compiling its lookup each
# time, and reads the token with its agent in one statement
# (AgentTokenQuerySet.usable() is the same rule for other reads).
USABLE_TOKEN = rows.Query(AgentToken, "digest", where=f"T.revoked_at IS NULL AND {UNEXPIRED_SQL}",
                          where_fields=("expires_at",), related="agent")


# --- owned, expiring records -------------------------------------------------


class LiveQuerySet(models.QuerySet):
    def expired(self, now=None):
        return self.filter(expires_at__lte=now or timezone.now())


class LiveManager(models.Manager.from_queryset(LiveQuerySet)):
    """Hides expired rows: they are gone for every read before any cleanup."""

    def get_queryset(self):
        now = timezone.now()
        return (
            super().get_queryset().filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))
        )


class Expiring(models.Model):
    """A row with an optional expiry, computed from the server's UTC clock."""

    DEFAULT_TTL = None  # seconds; None keeps the row until it is deleted

    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = LiveManager()
    with_expired = models.Manager.from_queryset(LiveQuerySet)()

    class Meta:
        abstract = True
        base_manager_name = "with_expired"

    def set_ttl(self, ttl_seconds):
        """ttl_seconds: None for the table's default, 0 for never."""
        if ttl_seconds is None:
            ttl_seconds = self.DEFAULT_TTL
        self.expires_at = timezone.now() + timedelta(seconds=ttl_seconds) if ttl_seconds else None

    @property
    def is_expired(self):
        return self.expires_at is not None and self.expires_at <= timezone.now()


def owner_field(db_index=True):
    return models.ForeignKey(Agent, to_field="agent_id", db_column="owner", on_delete=models.CASCADE,
                             related_name="+", db_index=db_index)


def access_level_field(db_index=True):
    return models.CharField(max_length=8, choices=AccessLevel.choices, default=AccessLevel.PRIVATE,
                            db_index=db_index)


def group_field(db_index=True):
    return models.SlugField(max_length=64, blank=True, db_index=db_index)


class Owned(models.Model):
    """Owner, level, team and swarm: set from the writer's identity on create."""

    DEFAULT_LEVEL = AccessLevel.PRIVATE

    owner = owner_field()
    access_level = access_level_field()
    team = group_field()
    swarm = group_field()

    class Meta:
        abstract = True

    acl = None  # only memory entries carry grants and blocks

    def assign_owner(self, agent, access_level=None):
        self.owner = agent
        self.team = agent.team
        self.swarm = agent.swarm
        self.access_level = access_level or self.DEFAULT_LEVEL

    def ownership_dict(self):
        return {"owner": self.owner_id, "access_level": self.access_level, "team": self.team, "swarm": self.swarm}

    def access_state(self):
        """Everything that decides who may use the record; the audit trail
        keeps it from before and after each change."""
        return self.ownership_dict()


class MemoryEntry(Owned, Expiring):
    """memory_entries: the partitioned key-value store."""

    partition = models.CharField(max_length=64, default="default")
    key = models.CharField(max_length=512)
    value = models.JSONField()
    metadata = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1, help_text="Bumped on every change; guards concurrent edits.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(Expiring.Meta):
        db_table = "memory_entries"
        verbose_name_plural = "memory entries"
        # Each swarm has a key space of its own: no agent can take a key from another swarm.
        constraints = [models.UniqueConstraint(fields=["swarm", "partition", "key"], name="memory_entry_swarm_key")]
        indexes = [models.Index(fields=["owner", "partition"], name="memory_entry_owner")]

    def __str__(self):
        return f"{self.partition}:{self.key}"

    @property
    def acl(self):
        try:
            return self.acl_record
        except MemoryACL.DoesNotExist:
            return None

    def access_state(self):
        acl = self.acl
        return {**self.ownership_dict(), "grants": acl.granted_permissions if acl else {},
                "blocks": acl.blocked_agents if acl else []}

    def to_dict(self):
        return {
            "partition": self.partition,
            "key": self.key,
            "value": self.value,
            **self.ownership_dict(),
            "metadata": self.metadata,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
        }


def validate_grants(value):
    if not isinstance(value, dict):
        raise ValidationError("Grants must map agent ids to lists of permissions.")
    allowed = set(Permission.values)
    for agent_id, perms in value.items():
        if (
            not isinstance(perms, list)
            or not perms
            or not all(isinstance(perm, str) and perm in allowed for perm in perms)
        ):
            raise ValidationError(f"Grants for {agent_id!r} must be a non-empty list of: {', '.join(Permission.values)}.")


def validate_agent_list(value):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Blocked agents must be a list of agent ids.")


class MemoryACL(models.Model):
    """memory_acl: explicit grants and blocks on one memory entry.

    A block wins over any grant. Owner, level, team and swarm live on the
    entry itself, so they can never disagree with it.
    """

    entry = models.OneToOneField(MemoryEntry, on_delete=models.CASCADE, related_name="acl_record")
    granted_permissions = models.JSONField(default=dict, blank=True, validators=[validate_grants])
    blocked_agents = models.JSONField(default=list, blank=True, validators=[validate_agent_list])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "memory_acl"
        verbose_name = "memory ACL"

    def __str__(self):
        return f"ACL {self.entry}"

    def clean(self):
        if not isinstance(self.granted_permissions, dict) or not (
            isinstance(self.blocked_agents, list) and all(isinstance(item, str) for item in self.blocked_agents)
        ):
            return  # the field validators report the shape
        known = set(
            Agent.objects.filter(agent_id__in=[*self.granted_permissions, *self.blocked_agents]).values_list(
                "agent_id", flat=True
            )
        )
        unknown = sorted({*self.granted_permissions, *self.blocked_agents} - known)
        if unknown:
            raise ValidationError(f"Unknown agents: {', '.join(unknown)}.")

    def permissions_of(self, agent_id):
        return set(self.granted_permissions.get(agent_id, ()))

    def blocks(self, agent_id):
        return agent_id in self.blocked_agents

    def to_dict(self):
        return {"grants": self.granted_permissions, "blocks": self.blocked_agents}


class OwnedPerTask(Owned):
    """Ownership without single-column indexes, for tables that grow by rows
    every task: their composite indexes lead with the owner, and every read
    narrows by owner or type first, so these would only cost space."""

    owner = owner_field(db_index=False)
    access_level = access_level_field(db_index=False)
    team = group_field(db_index=False)
    swarm = group_field(db_index=False)

    class Meta:
        abstract = True


class Event(OwnedPerTask, Expiring):
    """events: the swarm's event stream (source = the owner)."""

    DEFAULT_TTL = 30 * DAY
    DEFAULT_LEVEL = AccessLevel.SWARM

    type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta(Expiring.Meta):
        db_table = "events"
        indexes = [
            models.Index(fields=["type", "timestamp"], name="event_type_time"),
            models.Index(fields=["owner", "timestamp"], name="event_source_time"),
            # An agent's rare event types (rollbacks, tests, strategy changes)
            # without scanning its many training events.
            models.Index(fields=["owner", "type", "timestamp"], name="event_source_type_time"),
        ]

    def __str__(self):
        return f"{self.type} from {self.owner_id}"

    def to_dict(self):
        return {"id": self.pk, "type": self.type, "payload": self.payload, "source": self.owner_id,
                "timestamp": self.timestamp, "expires_at": self.expires_at, **self.ownership_dict()}


class Pattern(Owned, Expiring):
    """patterns: named patterns with a confidence; several agents may hold the same one."""

    DEFAULT_TTL = 7 * DAY

    pattern = models.CharField(max_length=255)
    confidence = models.FloatField()
    usage_count = models.PositiveIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(Expiring.Meta):
        db_table = "patterns"
        constraints = [models.UniqueConstraint(fields=["owner", "pattern"], name="pattern_owner_pattern")]
        indexes = [models.Index(fields=["confidence"], name="pattern_confidence")]

    def __str__(self):
        return self.pattern

    def to_dict(self):
        return {"id": self.pk, "pattern": self.pattern, "confidence": self.confidence, "usage_count": self.usage_count,
                "metadata": self.metadata, "created_at": self.created_at, "updated_at": self.updated_at,
                "expires_at": self.expires_at, **self.ownership_dict()}


class PerformanceMetric(OwnedPerTask):
    """performance_metrics: scalar samples per agent; permanent."""

    metric = models.CharField(max_length=100)
    value = models.FloatField()
    unit = models.CharField(max_length=32, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "performance_metrics"
        indexes = [models.Index(fields=["owner", "metric", "timestamp"], name="metric_agent_time")]

    def __str__(self):
        return f"{self.metric}={self.value}"


class WorkflowState(Owned):
    """workflow_state: resumable workflow checkpoints."""

    name = models.CharField(max_length=200)
    step = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=32, default="pending", db_index=True)
    checkpoint = models.JSONField(default=dict, blank=True)
    sha = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "workflow_state"

    def __str__(self):
        return self.name

    def to_dict(self):
        return {"id": self.pk, "name": self.name, "step": self.step, "status": self.status, "checkpoint": self.checkpoint,
                "sha": self.sha, "created_at": self.created_at, "updated_at": self.updated_at, **self.ownership_dict()}


class ConsensusStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ConsensusProposal(Owned, Expiring):
    """consensus_state: a proposal decided by a quorum of votes (proposer = owner)."""

    DEFAULT_TTL = 7 * DAY
    DEFAULT_LEVEL = AccessLevel.SWARM

    decision = models.JSONField()
    votes = models.JSONField(default=dict, blank=True, help_text="agent id -> approve | reject")
    quorum = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=ConsensusStatus.choices, default=ConsensusStatus.PENDING, db_index=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta(Expiring.Meta):
        db_table = "consensus_state"

    def __str__(self):
        return f"proposal {self.pk} ({self.status})"

    def tally(self):
        approvals = sum(1 for vote in self.votes.values() if vote == "approve")
        return approvals, len(self.votes) - approvals

    def to_dict(self):
        approvals, rejections = self.tally()
        return {"id": self.pk, "decision": self.decision, "proposer": self.owner_id, "votes": self.votes,
                "approvals": approvals, "rejections": rejections, "quorum": self.quorum, "status": self.status,
                "version": self.version, "created_at": self.created_at, "decided_at": self.decided_at,
                "expires_at": self.expires_at, **self.ownership_dict()}


class ArtifactKind(models.TextChoices):
    CODE = "code"
    DOC = "doc"
    DATA = "data"
    CONFIG = "config"


class Artifact(Owned):
    """artifacts: manifests of produced files; permanent."""

    kind = models.CharField(max_length=16, choices=ArtifactKind.choices, db_index=True)
    path = models.CharField(max_length=1024)
    sha256 = models.CharField(max_length=64)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "artifacts"

    def __str__(self):
        return self.path

    def to_dict(self):
        return {"id": self.pk, "kind": self.kind, "path": self.path, "sha256": self.sha256, "tags": self.tags,
                "metadata": self.metadata, "created_at": self.created_at, **self.ownership_dict()}


class SessionMode(models.TextChoices):
    SWARM = "swarm"
    HIVE_MIND = "hive-mind"


class SwarmSession(Owned):
    """sessions: resumable work sessions with their checkpoints."""

    mode = models.CharField(max_length=16, choices=SessionMode.choices, default=SessionMode.SWARM)
    state = models.JSONField(default=dict, blank=True)
    checkpoints = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_resumed = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "sessions"
        verbose_name = "session"

    def __str__(self):
        return f"session {self.pk}"

    def to_dict(self):
        return {"id": self.pk, "mode": self.mode, "state": self.state, "checkpoints": self.checkpoints,
                "created_at": self.created_at, "last_resumed": self.last_resumed, **self.ownership_dict()}


class GoapGoal(Owned):
    name = models.CharField(max_length=200)
    conditions = models.JSONField(default=dict, blank=True)
    cost = models.FloatField(default=0)
    priority = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "goap_goals"
        verbose_name = "GOAP goal"

    def __str__(self):
        return self.name

    def to_dict(self):
        return {"id": self.pk, "name": self.name, "conditions": self.conditions, "cost": self.cost,
                "priority": self.priority, "created_at": self.created_at, **self.ownership_dict()}


class GoapAction(Owned):
    name = models.CharField(max_length=200)
    preconditions = models.JSONField(default=dict, blank=True)
    effects = models.JSONField(default=dict, blank=True)
    cost = models.FloatField(default=1)
    agent_type = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "goap_actions"
        verbose_name = "GOAP action"

    def __str__(self):
        return self.name

    def to_dict(self):
        return {"id": self.pk, "name": self.name, "preconditions": self.preconditions, "effects": self.effects,
                "cost": self.cost, "agent_type": self.agent_type, "created_at": self.created_at, **self.ownership_dict()}


class GoapPlan(Owned):
    goal = models.ForeignKey(GoapGoal, on_delete=models.CASCADE, related_name="plans")
    sequence = models.JSONField(default=list, help_text="Ordered GOAP action ids.")
    total_cost = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "goap_plans"
        verbose_name = "GOAP plan"

    def __str__(self):
        return f"plan {self.pk} for {self.goal}"

    def to_dict(self):
        return {"id": self.pk, "goal_id": self.goal_id, "sequence": self.sequence, "total_cost": self.total_cost,
                "created_at": self.created_at, **self.ownership_dict()}


class OodaPhase(models.TextChoices):
    OBSERVE = "observe"
    ORIENT = "orient"
    DECIDE = "decide"
    ACT = "act"


class OodaCycle(Owned):
    phase = models.CharField(max_length=8, choices=OodaPhase.choices, default=OodaPhase.OBSERVE, db_index=True)
    observations = models.JSONField(default=list, blank=True)
    orientation = models.JSONField(default=dict, blank=True)
    decision = models.JSONField(default=dict, blank=True)
    action = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)
    completed = models.BooleanField(default=False)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "ooda_cycles"
        verbose_name = "OODA cycle"

    def __str__(self):
        return f"OODA {self.pk} ({self.phase})"

    def to_dict(self):
        return {"id": self.pk, "phase": self.phase, "observations": self.observations, "orientation": self.orientation,
                "decision": self.decision, "action": self.action, "timestamp": self.timestamp,
                "completed": self.completed, "result": self.result, **self.ownership_dict()}


class Hint(Owned, Expiring):
    """hints: the blackboard; short notes agents leave for each other."""

    DEFAULT_LEVEL = AccessLevel.SWARM

    key = models.CharField(max_length=512)
    value = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(Expiring.Meta):
        db_table = "hints"
        indexes = [models.Index(fields=["key"], name="hint_key")]

    def __str__(self):
        return self.key

    def to_dict(self):
        return {"id": self.pk, "key": self.key, "value": self.value, "created_at": self.created_at,
                "expires_at": self.expires_at, **self.ownership_dict()}


EXPIRING_MODELS = [MemoryEntry, Event, Pattern, ConsensusProposal, Hint]


def _encode_controls(text):
    """CR and LF encoded so a value can never forge a log line; NUL, which
    PostgreSQL cannot store in text, encoded too."""
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\x00", "\\x00")


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The audit trail is append-only.")

    def delete(self):
        raise TypeError("The audit trail is append-only.")


class AuditEvent(models.Model):
    """Append-only record of who did what to what, and when (UTC)."""

    actor = models.CharField(max_length=150, help_text="A user name, an agent id, 'cli:<user>' or 'system'.")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=300, help_text="What it was done to, e.g. agent:test-generator.")
    detail = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=32, blank=True)
    remote_addr = models.GenericIPAddressField(
        null=True, blank=True, help_text="The peer's address (a proxy's, behind one); empty outside a request."
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    DENIALS = ("access_denied", "rate_limited")  # what agents' refused requests write

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["actor", "at"], name="audit_actor_at"),
            models.Index(fields=["action", "at"], name="audit_action_at"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The audit trail is append-only.")

    @classmethod
    def past_retention(cls, now):
        """Rows past their retention (agents' refused requests after
        AUDIT_DENIAL_RETENTION_DAYS, the rest after AUDIT_RETENTION_DAYS) as a
        plain queryset that can delete them: the one deletion the trail allows,
        run by the daily prune_history job."""
        denials_before = now - timedelta(days=settings.AUDIT_DENIAL_RETENTION_DAYS)
        before = now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
        return models.QuerySet(cls).filter(models.Q(action__in=cls.DENIALS, at__lt=denials_before) | models.Q(at__lt=before))

    @classmethod
    def _fit(cls, field, text):
        """`text` cut to the column with a closing "…": a record may be named by a
        512-character key, and a refusal must be audited, not fail (PostgreSQL
        checks lengths, SQLite does not)."""
        limit = cls._meta.get_field(field).max_length
        return text if len(text) <= limit else text[: limit - 1] + "…"

    @classmethod
    def record(cls, actor, action, target, request=None, **detail):
        clean = {key: _encode_controls(value) if isinstance(value, str) else value for key, value in detail.items()}
        return cls.objects.create(actor=cls._fit("actor", _encode_controls(str(actor))), action=action,
                                  target=cls._fit("target", _encode_controls(target)), detail=clean,
                                  request_id=getattr(request, "id", "") if request else "",
                                  remote_addr=(request.META.get("REMOTE_ADDR") or None) if request else None)


class RateWindow(models.Model):
    """How many API requests an agent made in one fixed window (rate limiting
    on the database: every worker process counts in the same row)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    window_start = models.BigIntegerField(help_text="In seconds since the epoch (UTC).")
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "rate_windows"
        constraints = [models.UniqueConstraint(fields=["agent", "window_start"], name="rate_window_agent_start")]

    def __str__(self):
        return f"{self.agent_id}@{self.window_start}: {self.hits}"

    @classmethod
    def hit(cls, agent, window_start):
        """Count one request of `agent` in the window; its requests so far, this one
        included. One statement, atomic on SQLite and PostgreSQL alike, so
        concurrent workers never lose or double a request."""
        table = connection.ops.quote_name(cls._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (agent_id, window_start, hits) VALUES (%s, %s, 1) "
                f"ON CONFLICT (agent_id, window_start) DO UPDATE SET hits = {table}.hits + 1 RETURNING hits",
                [agent.pk, window_start],
            )
            hits = cursor.fetchone()[0]
        if hits == 1:
            # The agent's first request of a window: its older windows are done.
            cls.objects.filter(agent=agent, window_start__lt=window_start).delete()
        return hits
