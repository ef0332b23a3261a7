"""The learning app's own tables: per-agent config, the strategy catalog,
Q entries, decisions, executions (the experiences), patterns, failure
patterns and performance snapshots.

Hot data lives here rather than in the memory tables; the design's
`phase2/learning/{agentId}/...` keys stay readable through key providers
(providers.py).
"""

import time
import uuid

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.db.models import Q, Sum
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from qefleet.memory.models import Agent

from .core import engine, latency, scoring, stats


class RetryPolicy(models.TextChoices):
    NONE = "none"
    FIXED = "fixed"
    EXPONENTIAL = "exponential"
    ADAPTIVE = "adaptive"


class StrategyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(active=True).order_by("pk")


class Strategy(models.Model):
    """One action of the catalog: a name with fixed parameters."""

    name = models.SlugField(max_length=64, unique=True)
    parallelization = models.FloatField(help_text="0 (sequential) to 1 (fully parallel).")
    retry_policy = models.CharField(max_length=16, choices=RetryPolicy.choices)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(default=False, help_text="The catalog default for states nothing is known about.")
    active = models.BooleanField(default=True, help_text="Inactive strategies are never recommended.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = StrategyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "strategies"
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_strategy")
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if not 0 <= self.parallelization <= 1:
            raise ValidationError({"parallelization": "Must be between 0 and 1."})

    @property
    def action_key(self):
        return engine.action_key(self.name, self.parallelization, self.retry_policy)

    # The active catalog is read on every recommendation; it is cached per
    # process for a few seconds (and dropped at once on a save here), so an
    # edit in another process applies within CATALOG_CACHE_SECONDS.
    CATALOG_CACHE_SECONDS = 5
    _catalog = (0.0, None)

    @classmethod
    def catalog(cls):
        loaded_at, strategies = cls._catalog
        if strategies is None or time.monotonic() - loaded_at > cls.CATALOG_CACHE_SECONDS:
            strategies = list(cls.objects.active())
            cls._catalog = (time.monotonic(), strategies)
        return strategies

    @classmethod
    def forget_catalog(cls, **kwargs):
        cls._catalog = (0.0, None)

    @classmethod
    def by_id(cls, pk):
        """A strategy from the cached catalog, or from the database when it
        is no longer active."""
        return next((item for item in cls.catalog() if item.pk == pk), None) or cls.objects.get(pk=pk)

    @classmethod
    def default(cls):
        strategies = cls.catalog()
        return next((item for item in strategies if item.is_default), strategies[0] if strategies else None)


@receiver([post_save, post_delete], sender=Strategy)
def _strategy_changed(**kwargs):
    Strategy.forget_catalog()


class LearningProfileQuerySet(models.QuerySet):
    def with_live_version(self):
        """With the live version's row but not its payload: every task reads
        the version's number and verdict, only a restore needs the state."""
        return self.select_related("live_version").defer("live_version__payload")


class LearningMode(models.TextChoices):
    ACTIVE = "active", "active"
    SHADOW = "shadow", "shadow"


def initial_mode():
    """A new agent's learning mode: shadow when SHADOW_NEW_AGENTS is set."""
    return LearningMode.SHADOW if settings.SHADOW_NEW_AGENTS else LearningMode.ACTIVE


class LearningProfile(models.Model):
    """An agent's learning config and counters. Config changes apply from the
    next task on; `exploration_rate` is the current epsilon and decays.

    In shadow mode the agent runs its own choice (learning/shadow.py): the
    server still learns from every report and logs what it would have chosen."""

    agent = models.OneToOneField(Agent, on_delete=models.CASCADE, related_name="learning")
    enabled = models.BooleanField(default=True)
    learning_rate = models.FloatField(default=engine.DEFAULT_CONFIG["learning_rate"])
    discount_factor = models.FloatField(default=engine.DEFAULT_CONFIG["discount_factor"])
    exploration_rate = models.FloatField(default=engine.DEFAULT_CONFIG["exploration_rate"])
    exploration_decay = models.FloatField(default=engine.DEFAULT_CONFIG["exploration_decay"])
    min_exploration_rate = models.FloatField(default=engine.DEFAULT_CONFIG["min_exploration_rate"])
    max_experiences = models.PositiveIntegerField(default=engine.DEFAULT_CONFIG["max_experiences"])
    task_count = models.PositiveIntegerField(default=0)
    baseline_window = models.PositiveIntegerField(default=50, help_text="Tasks in the improvement baseline.")
    baseline_score = models.FloatField(null=True, blank=True)
    baseline_set_at = models.DateTimeField(null=True, blank=True)
    baseline_task = models.PositiveIntegerField(null=True, blank=True, help_text="Task count when the baseline window began.")
    live_version = models.ForeignKey("StateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     help_text="The version the live state started from (the timeline has the history).")
    live_since_task = models.PositiveIntegerField(default=0, help_text="Task count when the live version went live.")
    imports_patterns = models.BooleanField(default=True, help_text=(
        "Learn from its swarm: choose by the swarm's pooled values besides its own, and import the patterns the "
        "swarm shares. Off: it learns alone (its outcomes still go to the pool)."))
    disabled_by = models.CharField(max_length=150, blank=True, help_text=(
        "The operator whose action (pause, rollback or undo) turned learning off; empty when the safeguard did."))
    mode = models.CharField(max_length=8, choices=LearningMode.choices, default=initial_mode, help_text=(
        "active: recommendations are the learned policy's. shadow: the agent keeps its own (or the default) "
        "choice while the server learns and logs what it would have chosen, until promoted."))
    shadow_since = models.DateTimeField(null=True, blank=True, help_text="When the agent last went into shadow.")
    updated_at = models.DateTimeField(auto_now=True)

    objects = LearningProfileQuerySet.as_manager()

    def save(self, *args, **kwargs):
        # shadow_since belongs to the mode, however the mode was set (a new
        # agent under SHADOW_NEW_AGENTS, an operation, the admin).
        if (self.mode == LearningMode.SHADOW) != (self.shadow_since is not None):
            self.shadow_since = timezone.now() if self.mode == LearningMode.SHADOW else None
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "shadow_since"}
        super().save(*args, **kwargs)

    @property
    def in_shadow(self):
        return self.mode == LearningMode.SHADOW

    def set_mode(self, mode):
        """Shadow or active from now on; False when it already was."""
        if self.mode == mode:
            return False
        self.mode = mode
        self.save(update_fields=["mode", "updated_at"])
        return True

    def __str__(self):
        return f"learning of {self.agent_id}"

    def config(self):
        return {name: getattr(self, name) for name in engine.DEFAULT_CONFIG}

    def clean(self):
        try:
            engine.validate_config(self.config())
        except engine.ConfigError as error:
            raise ValidationError({error.field: error.message}) from None

    def apply_config(self, config):
        """Validate a complete config and store it (the key provider's write)."""
        clean = engine.validate_config(config)
        for name, value in clean.items():
            setattr(self, name, value)
        self.save()
        return clean

    @property
    def policy_version(self):
        """"v12+37": the live version and the tasks learned since it."""
        if self.live_version is None:
            return None
        return f"{self.live_version.label}+{self.task_count - self.live_since_task}"

    @classmethod
    def locked(cls, agent):
        """The agent's profile, created if missing, locked for this transaction:
        what serialises changes to one agent's learned state."""
        cls.objects.get_or_create(agent=agent)
        return cls.objects.select_for_update(of=("self",)).with_live_version().get(agent=agent)

    def rebaseline(self):
        """Start a new improvement baseline from the next task on."""
        self.baseline_score = None
        self.baseline_set_at = None
        self.baseline_task = self.task_count
        self.save(update_fields=["baseline_score", "baseline_set_at", "baseline_task", "updated_at"])


class AppliedStrategy(models.Model):
    """The strategy an agent uses by default for a task type, set by an
    operator (and by the improvement loop once it applies A/B winners)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="applied_strategies")
    task_type = models.CharField(max_length=64)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=32, default="operator")
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "applied strategies"
        constraints = [models.UniqueConstraint(fields=["agent", "task_type"], name="one_applied_strategy")]

    def __str__(self):
        return f"{self.agent_id}/{self.task_type}: {self.strategy}"


class QEntry(models.Model):
    """Q(s, a) for one agent and task type, with its visit count."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="q_entries")
    task_type = models.CharField(max_length=64)
    state_key = models.CharField(max_length=24)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    q_value = models.FloatField(default=0.0)
    visits = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Q entry"
        verbose_name_plural = "Q entries"
        constraints = [
            models.UniqueConstraint(fields=["agent", "task_type", "state_key", "strategy"], name="one_q_entry")
        ]

    def __str__(self):
        return f"Q({self.task_type} {self.state_key}, {self.strategy_id}) = {self.q_value:.3f}"


class PooledValue(models.Model):
    """What a swarm knows of one strategy at one abstract state of a task
    type (engine.abstract_keys: the complexity x capability bucket, or "*"
    for the whole task type): the mean of its agents' recent outcomes there,
    restarted when they fall well below their longer mean.
    Every agent of the swarm writes it, each report with one atomic UPDATE
    (services.pool_outcome), so none is lost."""

    swarm = models.CharField(max_length=80, help_text="The agents' swarm, or agent:<pk> for an agent without one.")
    task_type = models.CharField(max_length=64)
    abstract_key = models.CharField(max_length=24)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    value = models.FloatField(default=0.0)
    visits = models.PositiveIntegerField(default=0)
    # Since the value last restarted (engine.pooled_update): the evidence the value stands for.
    current_visits = models.PositiveIntegerField(default=0)
    reference = models.FloatField(default=0.0, help_text="The mean of the outcomes since the value last restarted "
                                                         "(over at most the last 100): what a shortfall is measured "
                                                         "against.")
    shortfall = models.FloatField(default=0.0, help_text="How far recent outcomes fell below the reference (<= 0).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["swarm", "task_type", "abstract_key", "strategy"],
                                               name="one_pooled_value")]

    def __str__(self):
        return f"{self.swarm} {self.task_type} {self.abstract_key} {self.strategy_id}: {self.value:.3f}"


class Decision(models.Model):
    """One recommendation: what was chosen, how, and with what probability."""

    RETENTION_DAYS = 90

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: decision_agent_time leads with the agent.
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="decisions", db_index=False)
    task_id = models.CharField(max_length=128)
    task_type = models.CharField(max_length=64)
    state_key = models.CharField(max_length=24)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    explored = models.BooleanField()
    propensity = models.FloatField()
    epsilon = models.FloatField()
    q_value = models.FloatField()
    fallback = models.CharField(max_length=16, blank=True, help_text=(
        "How the choice was made: '' (this state's own Q-values, blended with the swarm's pooled values by the "
        "agent's visits), pooled (the agent never saw this state: its swarm's values for the state's "
        "complexity x capability bucket, backed off to the task type), pooled-type (neither the agent nor its "
        "swarm saw the bucket: the swarm's values for the task type), nearest, applied, shared, default or "
        "abtest, or shadow (the agent's own choice, the learned one in shadow_strategy)."))
    abtest_arm = models.ForeignKey("ABArm", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   help_text="The A/B test arm this task was assigned to.")
    shadow_strategy = models.ForeignKey(Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                        help_text="In shadow mode: what the learned policy would have chosen "
                                                  "(`strategy` is the agent's own choice, which ran).")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["agent", "created_at"], name="decision_agent_time")]

    def __str__(self):
        return f"{self.agent_id} {self.task_type} -> {self.strategy_id}"


class ExecutionQuerySet(models.QuerySet):
    def scores(self):
        """Per-task composite scores, in the queryset's order."""
        rows = self.values_list("success", "execution_time_ms", "error_count", "satisfaction", "efficiency")
        return np.array([scoring.task_score(*row) for row in rows])


class Execution(models.Model):
    """A reported task: the experience (s, a, r, s') and what it taught.

    The last `max_experiences` executions of an agent are its experiences;
    all of them are kept for 90 days for reports and offline evaluation.
    """

    RETENTION_DAYS = 90

    objects = ExecutionQuerySet.as_manager()

    # No index of its own: execution_agent_sequence and one_execution_per_key lead with the agent.
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="executions", db_index=False)
    decision = models.OneToOneField(Decision, null=True, blank=True, on_delete=models.SET_NULL, related_name="execution")
    idempotency_key = models.CharField(max_length=128)
    request_digest = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField(help_text="The agent's task number.")
    task_id = models.CharField(max_length=128)
    task_type = models.CharField(max_length=64)
    state_key = models.CharField(max_length=24)
    next_state_key = models.CharField(max_length=24)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    success = models.BooleanField()
    execution_time_ms = models.PositiveIntegerField()
    error_count = models.PositiveIntegerField(default=0)
    failure_classes = models.CharField(max_length=120, blank=True, help_text="A failed task's error classes, comma-separated.")
    coverage = models.FloatField(null=True, blank=True)
    satisfaction = models.FloatField(null=True, blank=True)
    efficiency = models.FloatField(null=True, blank=True)
    reward = models.FloatField()
    previous_q = models.FloatField()
    q_value = models.FloatField()
    response = models.JSONField(help_text="The first response, returned again to a repeated report.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "idempotency_key"], name="one_execution_per_key"),
        ]
        indexes = [models.Index(fields=["agent", "sequence"], name="execution_agent_sequence")]

    def __str__(self):
        return f"{self.agent_id} #{self.sequence} {self.task_type}"


class LearnedPattern(models.Model):
    """How a strategy does on a task type for one agent (`task_type:strategy`)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="learned_patterns")
    task_type = models.CharField(max_length=64)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    uses = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    confidence = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "task_type", "strategy"], name="one_learned_pattern")]

    def __str__(self):
        return self.key

    @property
    def key(self):
        return f"{self.task_type}:{self.strategy.name}"

    @property
    def success_rate(self):
        return self.successes / self.uses if self.uses else 0.0

    def to_dict(self):
        return {"pattern": self.key, "uses": self.uses, "success_rate": round(self.success_rate, 4),
                "confidence": round(self.confidence, 4)}


class FailurePattern(models.Model):
    """Failures of one class on one task type, with a suggested mitigation."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="failure_patterns")
    task_type = models.CharField(max_length=64)
    failure_class = models.CharField(max_length=16)
    frequency = models.PositiveIntegerField(default=0)
    confidence = models.FloatField(default=0.0, help_text="Share of this task type's tasks failing this way.")
    mitigation = models.TextField()
    last_message = models.CharField(max_length=500, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "task_type", "failure_class"], name="one_failure_pattern")
        ]

    def __str__(self):
        return f"{self.task_type}:{self.failure_class}"

    def to_dict(self):
        return {"id": self.pk, "task_type": self.task_type, "failure_class": self.failure_class,
                "frequency": self.frequency, "confidence": round(self.confidence, 4), "mitigation": self.mitigation,
                "last_message": self.last_message, "first_seen_at": self.first_seen_at.isoformat(),
                "last_seen_at": self.last_seen_at.isoformat()}


class Snapshot(models.Model):
    """The composite score over a window of an agent's tasks."""

    RETENTION_DAYS = 90

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="snapshots")
    first_task = models.PositiveIntegerField()
    last_task = models.PositiveIntegerField()
    tasks = models.PositiveIntegerField()
    success_rate = models.FloatField()
    avg_execution_ms = models.FloatField()
    error_rate = models.FloatField()
    satisfaction = models.FloatField(null=True, blank=True)
    efficiency = models.FloatField(null=True, blank=True)
    score = models.FloatField()
    improvement = models.FloatField(null=True, blank=True, help_text="Against the baseline; 0.2 is the target.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["agent", "created_at"], name="snapshot_agent_time")]

    def __str__(self):
        return f"{self.agent_id} tasks {self.first_task}-{self.last_task}: {self.score:.3f}"

    def to_dict(self):
        return {"first_task": self.first_task, "last_task": self.last_task, "tasks": self.tasks,
                "success_rate": round(self.success_rate, 4), "avg_execution_ms": round(self.avg_execution_ms, 1),
                "error_rate": round(self.error_rate, 4), "satisfaction": self.satisfaction,
                "efficiency": self.efficiency, "score": round(self.score, 4), "improvement": self.improvement,
                "created_at": self.created_at.isoformat()}


class VersionReason(models.TextChoices):
    CYCLE = "cycle", "cycle slot"
    TASKS = "tasks", "every 100 tasks"
    ON_DEMAND = "on_demand", "on demand"
    BEFORE_ROLLBACK = "before_rollback", "before a rollback"
    AFTER_ROLLBACK = "after_rollback", "after a rollback"
    BEFORE_APPLY = "before_apply", "before applying an A/B test's winner"


class WithoutPayloadManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().defer("payload")


class StateVersion(models.Model):
    """An immutable, compressed capture of an agent's learned state.

    The checksum covers what a restore brings back (Q entries, patterns,
    applied strategies, config with epsilon); the payload also keeps the
    last experiences and the score at capture time, for review.
    """

    KEEP_LATEST = 48
    KEEP_KNOWN_GOOD = 10

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="state_versions")
    number = models.PositiveIntegerField(help_text="Per agent: v1, v2, ...")
    reason = models.CharField(max_length=16, choices=VersionReason.choices)
    task_count = models.PositiveIntegerField(help_text="The agent's tasks when it was captured.")
    score = models.FloatField(null=True, blank=True)
    q_entries = models.PositiveIntegerField()
    # Read from the payload at capture, so the report's checkpoints need not decode it.
    patterns = models.PositiveIntegerField(null=True, blank=True, help_text="Learned patterns in the state.")
    exploration_rate = models.FloatField(null=True, blank=True, help_text="Epsilon in the state's config.")
    checksum = models.CharField(max_length=64)
    payload = models.BinaryField(editable=False)
    size_bytes = models.PositiveIntegerField()
    pinned = models.BooleanField(default=False, help_text="Pinned versions are never pruned.")
    known_good = models.BooleanField(default=False, help_text="Healthy after it was live, or marked by an operator.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = models.Manager()
    # What related lookups use (a profile's live version, a rollback's or a
    # safeguard's version): they read the number and the verdict on every
    # task, so the payload, up to hundreds of KB, loads only when read.
    without_payload = WithoutPayloadManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "number"], name="one_version_number")]
        ordering = ["-number"]
        base_manager_name = "without_payload"

    def __str__(self):
        return f"{self.agent_id} v{self.number}"

    @property
    def label(self):
        return f"v{self.number}"


class LiveCause(models.TextChoices):
    CAPTURED = "captured", "captured from the live state"
    RESTORED = "restored", "restored by a rollback or roll-forward"


class LiveVersion(models.Model):
    """The timeline: which version was live for an agent, from when to when."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="live_versions")
    version = models.ForeignKey(StateVersion, on_delete=models.CASCADE, related_name="live_periods")
    live_from = models.DateTimeField(default=timezone.now)
    live_until = models.DateTimeField(null=True, blank=True)
    cause = models.CharField(max_length=16, choices=LiveCause.choices)

    class Meta:
        ordering = ["-live_from"]
        indexes = [models.Index(fields=["agent", "live_until"], name="live_version_agent")]

    def __str__(self):
        return f"{self.version} from {self.live_from:%Y-%m-%d %H:%M}"


class SafeguardAction(models.TextChoices):
    ROLLBACK = "rollback", "roll back to the last known good version"
    FREEZE = "freeze", "freeze learning"
    NOTIFY = "notify", "notify only"


class SafeguardState(models.TextChoices):
    INSUFFICIENT = "insufficient-data"
    OK = "ok"
    WARNING = "warning"
    DEGRADED = "degraded"


class Safeguard(models.Model):
    """An agent's safeguard: its settings and the state of its checks.

    Every `check_every` tasks the last `window` tasks are scored against the
    reference (the score measured while the last-known-good version was
    live); `consecutive` degraded checks in a row trigger `action`.
    """

    agent = models.OneToOneField(Agent, on_delete=models.CASCADE, related_name="safeguard")
    check_every = models.PositiveIntegerField(default=10)
    window = models.PositiveIntegerField(default=20, help_text="Tasks scored by each check (at least 20).")
    known_good_after = models.PositiveIntegerField(
        default=50, help_text="Healthy tasks after a version went live before it counts as known good (at least the window).")
    threshold_pct = models.FloatField(default=5.0, help_text="Degraded below this % under the reference.")
    confidence_z = models.FloatField(default=1.96, help_text="Degraded only if the interval's top is below the line.")
    consecutive = models.PositiveIntegerField(default=3, help_text="Degraded checks in a row that trigger the action.")
    action = models.CharField(max_length=16, choices=SafeguardAction.choices, default=SafeguardAction.ROLLBACK)
    dry_run = models.BooleanField(default=False, help_text="Record what would happen instead of doing it.")
    max_auto_rollbacks = models.PositiveIntegerField(default=3, help_text="Per 24 hours; then an operator decides.")
    reference_score = models.FloatField(null=True, blank=True)
    reference_spread = models.FloatField(default=0.0, help_text="Standard error of the reference score.")
    reference_version = models.ForeignKey(StateVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+", help_text="The last known good version.")
    state = models.CharField(max_length=20, choices=SafeguardState.choices, default=SafeguardState.INSUFFICIENT)
    consecutive_degraded = models.PositiveIntegerField(default=0)
    change_pct = models.FloatField(null=True, blank=True, help_text="The last check's window vs the reference.")
    healthy_checks = models.PositiveIntegerField(default=0, help_text="Consecutive ok checks (alerts resolve on 3).")
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"safeguard of {self.agent_id}"

    def clean(self):
        if self.window < 20:
            raise ValidationError({"window": "A check needs at least 20 tasks."})
        if self.known_good_after < self.window:
            raise ValidationError({"known_good_after": "At least one full window."})
        if not 0 < self.threshold_pct < 100:
            raise ValidationError({"threshold_pct": "Must be between 0 and 100."})

    def to_dict(self):
        return {"state": self.state, "consecutive_degraded": self.consecutive_degraded,
                "change_pct": None if self.change_pct is None else round(self.change_pct, 2)}


class Rollback(models.Model):
    """One rollback (or roll-forward), automatic or by an operator: history."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="rollbacks")
    from_version = models.ForeignKey(StateVersion, null=True, on_delete=models.SET_NULL, related_name="+",
                                     help_text="The state before, captured just before restoring.")
    to_version = models.ForeignKey(StateVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    automatic = models.BooleanField()
    actor = models.CharField(max_length=150, blank=True, help_text="The operator, for a manual rollback.")
    reason = models.TextField(blank=True)
    numbers = models.JSONField(default=dict, blank=True, help_text="The degradation that triggered it.")
    undo_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by",
                                   help_text="The rollback this one undid (an undo restores the state before it).")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("rollback_agent", "Can roll an agent back or forward"),
                       ("reenable_learning", "Can re-enable an agent's learning"),
                       ("pause_learning", "Can pause and resume an agent's learning"),
                       ("shadow_learning", "Can put an agent's learning in shadow and promote it")]

    def __str__(self):
        return f"{self.agent_id}: {self.from_version} -> {self.to_version}"

    @property
    def is_undo(self):
        return self.undo_of_id is not None

    @property
    def task_count(self):
        """The agent's tasks when it happened (the state captured just before
        holds them), None once that capture is pruned."""
        return self.from_version.task_count if self.from_version is not None else None

    def undo_until_task(self):
        """The agent's task count up to which this rollback may be undone:
        settings.ROLLBACK_UNDO_TASKS after it. Past them, the state the
        rollback replaced is too old to put back blindly (what was learned
        since would be thrown away, and the safeguard's verdicts were about a
        different state); a normal rollback to the version, with its preview,
        is still there."""
        return None if self.task_count is None else self.task_count + settings.ROLLBACK_UNDO_TASKS

    def undo_refusal(self, profile, latest):
        """Why this rollback cannot be undone now (`latest` is the agent's
        latest rollback), or "" when it can."""
        if self.is_undo:
            return "it is itself an undo; roll back to a version instead"
        if latest is None or latest.pk != self.pk:
            return "a later rollback or undo replaced it"
        if self.from_version is None:
            return "the state before it is no longer stored"
        if profile.task_count > self.undo_until_task():
            return f"the agent has reported more than {settings.ROLLBACK_UNDO_TASKS} tasks since"
        return ""


class Severity(models.TextChoices):
    HIGH = "high"
    WARNING = "warning"
    INFO = "info"


class AlertState(models.TextChoices):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# Most severe first; keyed by value (an enum member hashes by its name).
SEVERITY_RANK = {Severity.HIGH.value: 0, Severity.WARNING.value: 1, Severity.INFO.value: 2}


class AlertQuerySet(models.QuerySet):
    def open(self):
        return self.exclude(state=AlertState.RESOLVED)

    def silenced(self, now):
        return self.filter(silenced_until__gt=now)

    def audible(self, now):
        return self.filter(Q(silenced_until__isnull=True) | Q(silenced_until__lte=now))


class SilenceRuleQuerySet(models.QuerySet):
    def active(self, now):
        return self.filter(until__gt=now)


class SilenceRule(models.Model):
    """Quiets the alerts it matches, raised or open, until a time: an empty
    field matches anything. It ends on its own at `until`; the alerts it
    quieted are heard again from then on (their `silenced_until` is its end)."""

    kind = models.CharField(max_length=32, blank=True, help_text="An alert kind, e.g. failure:needs_operator.")
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="silence_rules")
    task_type = models.CharField(max_length=64, blank=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, blank=True)
    until = models.DateTimeField()
    comment = models.CharField(max_length=500, blank=True, help_text="Why, for whoever reads the list next.")
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = SilenceRuleQuerySet.as_manager()

    class Meta:
        ordering = ["-until"]

    def __str__(self):
        return f"silence {self.describe()} until {self.until:%Y-%m-%d %H:%M} UTC"

    def describe(self):
        parts = [f"{name} {value}" for name, value in (
            ("kind", self.kind), ("agent", self.agent.agent_id if self.agent_id else ""),
            ("task type", self.task_type), ("severity", self.severity)) if value]
        return ", ".join(parts) or "every alert"

    TOO_WIDE = ("kind, agent, task_type or severity must narrow the silence: "
                "one that matches every alert would silence the whole fleet.")

    def narrows(self):
        return bool(self.kind or self.agent_id or self.task_type or self.severity)

    def clean(self):
        if not self.narrows():
            raise ValidationError({"kind": self.TOO_WIDE})

    def matching(self, alerts):
        """`alerts` (a queryset) narrowed to those this rule matches."""
        for field in ("kind", "agent_id", "task_type", "severity"):
            if getattr(self, field):
                alerts = alerts.filter(**{field: getattr(self, field)})
        return alerts

    def matches(self, alert):
        return all(not getattr(self, field) or getattr(self, field) == getattr(alert, field)
                   for field in ("kind", "agent_id", "task_type", "severity"))


class Alert(models.Model):
    """Something an operator should look at; deduplicated by `dedup_key`."""

    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32)
    task_type = models.CharField(max_length=64, blank=True, help_text="The task type it is about, if any.")
    severity = models.CharField(max_length=8, choices=Severity.choices)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.FIRING)
    dedup_key = models.CharField(max_length=200)
    summary = models.CharField(max_length=300)
    numbers = models.JSONField(default=dict, blank=True, help_text="What was measured when it fired.")
    occurrences = models.PositiveIntegerField(default=1)
    silenced_until = models.DateTimeField(null=True, blank=True)
    silenced_by = models.ForeignKey(SilenceRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts",
                                    help_text="The silence rule that quieted it, if one did.")
    acknowledged_by = models.CharField(max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["dedup_key", "state"], name="alert_dedup")]
        permissions = [("act_on_alert", "Can acknowledge, silence and resolve alerts")]

    def __str__(self):
        return f"[{self.severity}] {self.summary}"


# --- the improvement loop ------------------------------------------------------------


class ABTestState(models.TextChoices):
    DRAFT = "draft"
    RUNNING = "running"
    WINNER = "winner"  # the treatment won
    CONTROL_WINS = "control-wins", "Control wins"
    INCONCLUSIVE = "inconclusive"
    ABORTED = "aborted"
    APPLIED = "applied"
    MONITORING = "monitoring"
    KEPT = "kept"
    REVERTED = "reverted"


class ABTestQuerySet(models.QuerySet):
    def running(self):
        return self.filter(state=ABTestState.RUNNING)

    def open(self):
        return self.filter(state__in=OPEN_TEST_STATES)


OPEN_TEST_STATES = (ABTestState.DRAFT, ABTestState.RUNNING)


class ABTest(models.Model):
    """A controlled comparison of two strategies for one agent and task type.

    Draft -> Running -> Winner | Control wins | Inconclusive | Aborted; a
    winner (the treatment) is applied
    (Applied -> Monitoring for MONITOR_DAYS) and then Kept or Reverted. The
    rows are permanent history; the memory copies under `abtests/` show the
    last 30 days.
    """

    MONITOR_DAYS = 7

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="abtests")
    task_type = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=ABTestState.choices, default=ABTestState.DRAFT)
    source = models.CharField(max_length=16, default="admin", help_text="loop, admin or api.")
    created_by = models.CharField(max_length=150, blank=True)
    mde = models.FloatField(default=0.10, help_text="Minimum detectable effect in success rate (0.10 = 10 points).")
    power = models.FloatField(default=0.80)
    horizon = models.PositiveIntegerField(null=True, blank=True, help_text="Samples per arm; set when it starts.")
    verdict = models.JSONField(default=dict, blank=True, help_text="The latest look: interval, p-value, outcome.")
    decision = models.TextField(blank=True, help_text="The decision in plain words.")
    previous_strategy = models.ForeignKey(Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                          help_text="The applied strategy before the winner replaced it.")
    version_before = models.ForeignKey(StateVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", help_text="Captured just before applying.")
    reference_score = models.FloatField(null=True, blank=True, help_text="The winning arm's score, monitored.")
    reference_spread = models.FloatField(default=0.0)
    degraded_checks = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    monitor_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ABTestQuerySet.as_manager()

    class Meta:
        verbose_name = "A/B test"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "task_type"], condition=models.Q(state__in=["draft", "running"]),
                                    name="one_open_abtest"),
        ]
        indexes = [models.Index(fields=["state", "agent"], name="abtest_state_agent")]

    def __str__(self):
        return f"#{self.pk} {self.name}"

    def to_dict(self):
        """The test as the API and the memory key `abtests/{id}` show it."""
        moments = ("created_at", "started_at", "decided_at", "applied_at", "monitor_until", "finished_at")
        return {
            "id": self.pk, "agent": self.agent.agent_id, "task_type": self.task_type, "name": self.name,
            "hypothesis": self.hypothesis, "state": self.state, "source": self.source, "created_by": self.created_by,
            "mde": self.mde, "power": self.power, "horizon": self.horizon,
            "arms": [arm.to_dict() for arm in self.arms.all()],
            "verdict": self.verdict, "decision": self.decision,
            "previous_strategy": self.previous_strategy.name if self.previous_strategy else None,
            "transitions": [{"from_state": item.from_state or None, "to_state": item.to_state,
                             "reason": item.reason, "at": item.at.isoformat()} for item in self.transitions.all()],
            **{name: getattr(self, name).isoformat() if getattr(self, name) else None for name in moments},
        }

    @property
    def control(self):
        return next(arm for arm in self.arms.all() if arm.role == ArmRole.CONTROL)

    @property
    def treatment(self):
        return next(arm for arm in self.arms.all() if arm.role == ArmRole.TREATMENT)


class ArmRole(models.TextChoices):
    CONTROL = "control"
    TREATMENT = "treatment"


class ABArm(models.Model):
    """One arm of a test: a strategy, its assignment weight and its outcomes."""

    test = models.ForeignKey(ABTest, on_delete=models.CASCADE, related_name="arms")
    role = models.CharField(max_length=16, choices=ArmRole.choices)
    strategy = models.ForeignKey(Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 help_text="Empty for a control that is the agent's own policy.")
    weight = models.FloatField(default=0.5)
    n = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    total_ms = models.BigIntegerField(default=0)
    error_tasks = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "A/B test arm"
        ordering = ["test", "role"]
        constraints = [models.UniqueConstraint(fields=["test", "role"], name="one_arm_per_role")]

    def __str__(self):
        return f"{self.role}: {self.label}"

    @property
    def label(self):
        return self.strategy.name if self.strategy_id else "the learned policy"

    @property
    def stats(self):
        return stats.ArmStats(n=self.n, successes=self.successes, total_ms=float(self.total_ms),
                              error_tasks=self.error_tasks)

    def to_dict(self):
        return {"role": self.role, "strategy": self.strategy.name if self.strategy_id else None, "label": self.label,
                "weight": self.weight, **self.stats.to_dict()}


class ABTransition(models.Model):
    """The lifecycle timeline: every state change of a test, when and why."""

    test = models.ForeignKey(ABTest, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return f"{self.from_state or 'new'} -> {self.to_state}"


class ABLook(models.Model):
    """One look at a running test (one per cycle slot): the interval over time."""

    test = models.ForeignKey(ABTest, on_delete=models.CASCADE, related_name="looks")
    slot_start = models.DateTimeField()
    n_control = models.PositiveIntegerField()
    n_treatment = models.PositiveIntegerField()
    low = models.FloatField()
    high = models.FloatField()
    p_value = models.FloatField()
    srm_p_value = models.FloatField()
    outcome = models.CharField(max_length=16)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at"]
        constraints = [models.UniqueConstraint(fields=["test", "slot_start"], name="one_look_per_slot")]


class ImprovementCycle(models.Model):
    """One run of the improvement cycle for an agent and slot: its inputs,
    decisions and duration. Kept 30 days (the design's `cycles/` TTL)."""

    RETENTION_DAYS = 30

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="improvement_cycles")
    slot_start = models.DateTimeField()
    trigger = models.CharField(max_length=16, default="schedule", help_text="schedule, command, operator or guard (a lost cycle run again).")
    steps = models.JSONField(default=list, blank=True, help_text="Steps completed, so a re-run skips them.")
    inputs = models.JSONField(default=dict, blank=True)
    decisions = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-slot_start"]
        constraints = [models.UniqueConstraint(fields=["agent", "slot_start"], name="one_cycle_per_slot")]
        permissions = [("run_cycle", "Can run an improvement cycle")]

    def __str__(self):
        return f"cycle of {self.agent_id} at {self.slot_start:%Y-%m-%d %H:%M}"

    def to_dict(self):
        return {"id": self.pk, "slot_start": self.slot_start.isoformat(), "trigger": self.trigger,
                "steps": self.steps, "inputs": self.inputs, "decisions": self.decisions,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 1)}


class Adjustment(models.TextChoices):
    LESS_PARALLEL = "less_parallel", "lower parallelization"
    MORE_RETRIES = "more_retries", "a retrying strategy with lower parallelization"
    BACKOFF_RETRY = "backoff_retry", "exponential or adaptive retry"
    NONE = "none", "no strategy change: an operator checks"


class MitigationState(models.TextChoices):
    ACTIVE = "active"
    EFFECTIVE = "effective"
    INEFFECTIVE = "ineffective"
    WITHDRAWN = "withdrawn"  # by a rollback, or because the task type succeeded less often under it


class Mitigation(models.Model):
    """A failure class's adjustment, applied to an agent's recommendations for
    one task type, with the failure rate before and after."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="mitigations")
    task_type = models.CharField(max_length=64)
    failure_class = models.CharField(max_length=16)
    adjustment = models.CharField(max_length=16, choices=Adjustment.choices)
    strategies = models.JSONField(default=list, blank=True,
                                  help_text="The strategies whose tasks fail this way; only they are replaced.")
    state = models.CharField(max_length=16, choices=MitigationState.choices, default=MitigationState.ACTIVE)
    tasks_before = models.PositiveIntegerField()
    failures_before = models.PositiveIntegerField()
    tasks_after = models.PositiveIntegerField(default=0)
    failures_after = models.PositiveIntegerField(default=0)
    activated_at = models.DateTimeField(default=timezone.now)
    activated_after_task = models.PositiveIntegerField(help_text="The agent's task count when it was applied.")
    concluded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-activated_at"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "task_type", "failure_class"],
                                    condition=models.Q(state="active"), name="one_active_mitigation"),
        ]

    def __str__(self):
        return f"{self.agent_id} {self.task_type}:{self.failure_class} -> {self.adjustment}"

    @property
    def rate_before(self):
        return self.failures_before / self.tasks_before if self.tasks_before else None

    @property
    def rate_after(self):
        return self.failures_after / self.tasks_after if self.tasks_after else None


class SharedPatternStatus(models.TextChoices):
    ACTIVE = "active"
    QUARANTINED = "quarantined"


class SharedPattern(models.Model):
    """A high-confidence pattern an agent published to its swarm, served as
    `phase2/learning/shared/patterns/{id}` (swarm access, owned by the source)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="shared_patterns")
    task_type = models.CharField(max_length=64)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    confidence = models.FloatField()
    success_rate = models.FloatField()
    lower_bound = models.FloatField(help_text="Wilson lower bound of the success rate.")
    uses = models.PositiveIntegerField()
    source_version = models.CharField(max_length=16, blank=True, help_text="The source's live version when shared.")
    status = models.CharField(max_length=16, choices=SharedPatternStatus.choices, default=SharedPatternStatus.ACTIVE)
    published_at = models.DateTimeField(default=timezone.now, db_index=True)
    quarantined_at = models.DateTimeField(null=True, blank=True)
    quarantine_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-published_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "task_type", "strategy"], condition=models.Q(status="active"),
                                    name="one_active_shared_pattern"),
        ]

    def __str__(self):
        return self.key

    @property
    def key(self):
        return f"{self.task_type}:{self.strategy.name}"


class ImportStatus(models.TextChoices):
    PROBATION = "probation"
    ACTIVE = "active"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"


class PatternImport(models.Model):
    """A shared pattern as one agent of the swarm took it in: on probation,
    with discounted confidence, until its own tasks confirm or reject it."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="pattern_imports")
    shared = models.ForeignKey(SharedPattern, on_delete=models.CASCADE, related_name="imports")
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.PROBATION)
    confidence = models.FloatField(help_text="The shared confidence, discounted while on probation.")
    imported_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-imported_at"]
        constraints = [models.UniqueConstraint(fields=["agent", "shared"], name="one_import_per_agent")]

    def __str__(self):
        return f"{self.agent_id} <- {self.shared}"


class OverheadMinuteQuerySet(models.QuerySet):
    def add(self, tallies):
        """Add {(minute, stage): (count, sum of ms, bin counts)} into the
        rows, in one short transaction: per row one upsert that adds to
        what is there (INSERT ... ON CONFLICT DO UPDATE, the same SQL on
        SQLite and PostgreSQL), so workers adding into the same minute, or
        creating its row at the same moment, never lose each other's
        samples. Rows go in a fixed order, so concurrent writers on
        PostgreSQL take their locks without deadlock. Plain SQL: the ORM
        would spend milliseconds compiling fifty F() expressions per row."""
        connection = connections[self.db]
        quote = connection.ops.quote_name
        table = quote(OverheadMinute._meta.db_table)
        columns = [quote(name) for name in ("minute", "stage", "count", "total_ms", *OVERHEAD_BINS)]
        sums = ", ".join(f"{column} = {table}.{column} + excluded.{column}" for column in columns[2:])
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
               f"ON CONFLICT ({columns[0]}, {columns[1]}) DO UPDATE SET {sums}")
        rows = [(connection.ops.adapt_datetimefield_value(minute), stage, count, total_ms, *bins)
                for (minute, stage), (count, total_ms, bins) in sorted(tallies.items())]
        with transaction.atomic(using=self.db), connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def summed(self, *group_by):
        """Samples, their sum and each bin summed, grouped by `group_by`."""
        return self.values(*group_by).annotate(
            samples=Sum("count"), sum_ms=Sum("total_ms"), **{f"sum_{name}": Sum(name) for name in OVERHEAD_BINS},
        ).order_by(*group_by)


class OverheadMinute(models.Model):
    """The learning overhead measured in one minute for one stage (see
    learning/overhead.py): how many samples, their sum, and a histogram of
    their durations in learning.core.latency's fixed bins. Each bin is a column
    of its own so workers add into a row with one atomic upsert and the
    database sums any period in one grouped query. Kept 7 days."""

    RETENTION_DAYS = 7

    minute = models.DateTimeField(help_text="The minute's start (UTC).")
    stage = models.CharField(max_length=16)
    count = models.PositiveBigIntegerField(default=0)
    total_ms = models.FloatField(default=0.0)

    objects = OverheadMinuteQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["minute", "stage"], name="one_overhead_row_per_minute")]

    def __str__(self):
        return f"{self.stage} at {self.minute:%Y-%m-%d %H:%M}: {self.count}"


# bin00 (under 0.01 ms) ... bin49 (10 s and over), added to the model here
# rather than written out fifty times.
OVERHEAD_BINS = tuple(f"bin{index:02d}" for index in range(latency.BINS))
for _name in OVERHEAD_BINS:
    OverheadMinute.add_to_class(_name, models.PositiveIntegerField(default=0))
del _name


class DrillTrigger(models.TextChoices):
    SCHEDULE = "schedule"
    OPERATOR = "operator"
    COMMAND = "command"


class DrillRunQuerySet(models.QuerySet):
    def latest_per_agent(self):
        """Each agent's newest drill run (one query: the newest pk per agent)."""
        newest = self.values("agent").annotate(newest=models.Max("pk")).values("newest")
        return self.filter(pk__in=newest).select_related("agent").order_by("agent__agent_id")


class DrillRun(models.Model):
    """One agent's statistics drills (learning/drills.py): its rules replayed
    on its own logged outcomes, with each measured rate. Kept 90 days."""

    RETENTION_DAYS = 90

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="drill_runs")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    trigger = models.CharField(max_length=16, choices=DrillTrigger.choices)
    seed = models.BigIntegerField()
    logged_tasks = models.PositiveIntegerField(help_text="Policy tasks the drills resampled.")
    seconds = models.FloatField(help_text="Wall time of the drills, reading the logs included.")
    figures = models.JSONField(default=dict, help_text="The drills' counts, rates and intervals.")

    objects = DrillRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["agent", "-created_at"], name="drill_run_agent_newest")]

    def __str__(self):
        return f"drills of {self.agent_id} at {self.created_at:%Y-%m-%d %H:%M}"
