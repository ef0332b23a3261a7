"""The design's `phase2/learning/{agentId}/...` keys, served from learning's
tables (docs/ARCHITECTURE.md, "Memory keys").

Registered with the memory app at start-up (apps.py), so the memory API
reads them like stored entries: owner the agent, level private. Only
`config` and `strategies/{task type}` accept writes, validated here.
"""

import uuid
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from qefleet.memory.keys import whole_number
from qefleet.memory.models import AccessLevel, Agent
from qefleet.memory.providers import KeyProvider, ProviderError

from .core import engine
from .models import (
    ABTest,
    AppliedStrategy,
    Execution,
    FailurePattern,
    ImprovementCycle,
    LearnedPattern,
    QEntry,
    SharedPattern,
    Snapshot,
    StateVersion,
    Strategy,
)
from .services import profile_for
from .tracker import improvement_report
from .versions import decode

PREFIX = "phase2/learning/"
STATE_Q_LIMIT = 10_000
FIXED = ("baseline", "config", "improvement", "state")
LISTED = ("abtests/", "cycles/", "failure-patterns/", "snapshots/", "strategies/", "versions/")
COPY_DAYS = 30  # the design's TTL of the `abtests/` and `cycles/` copies; the tables keep the history
TASK_TYPE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")


def snapshot_key(snapshot):
    return f"snapshots/{snapshot.pk:010d}"


def state_record(agent, profile):
    """The agent's learned state, as the design's `state` key holds it: the Q
    table (the most visited entries first, at most STATE_Q_LIMIT), the last
    `max_experiences` experiences, patterns, config and performance."""
    entries = (QEntry.objects.filter(agent=agent).select_related("strategy")
               .order_by("-visits", "pk")[:STATE_Q_LIMIT])
    q_table = {}
    for entry in entries:
        q_table.setdefault(entry.task_type, {}).setdefault(entry.state_key, {})[entry.strategy.name] = {
            "q": round(entry.q_value, 6), "visits": entry.visits}
    experiences = (Execution.objects.filter(agent=agent).select_related("strategy")
                   .order_by("-sequence")[:profile.max_experiences])
    return {
        "agent_id": agent.agent_id,
        "q_table": q_table,
        "q_entries_total": QEntry.objects.filter(agent=agent).count(),
        "experiences": [
            {"task": item.sequence, "task_type": item.task_type, "state": item.state_key,
             "action": item.strategy.action_key, "reward": item.reward, "next_state": item.next_state_key,
             "at": item.created_at.isoformat()}
            for item in experiences
        ],
        "patterns": [item.to_dict() for item in
                     LearnedPattern.objects.filter(agent=agent).select_related("strategy").order_by("-confidence")],
        "config": profile.config(),
        "performance": agent.performance,
        "tasks": profile.task_count,
    }


def recent_tests(agent):
    """The A/B tests whose memory copy is live: open, or finished in the last COPY_DAYS."""
    since = timezone.now() - timedelta(days=COPY_DAYS)
    return ABTest.objects.filter(agent=agent).filter(Q(finished_at__isnull=True) | Q(finished_at__gte=since))


def applied_record(applied):
    strategy = applied.strategy
    return {"task_type": applied.task_type, "strategy": strategy.name, "parallelization": strategy.parallelization,
            "retry_policy": strategy.retry_policy, "source": applied.source,
            "applied_at": applied.applied_at.isoformat()}


def version_record(version):
    """A version's metadata and its learned state (the experiences stay in the admin)."""
    payload = decode(version)
    return {"version": version.label, "reason": version.reason, "created_at": version.created_at.isoformat(),
            "tasks": version.task_count, "score": version.score, "checksum": version.checksum,
            "size_bytes": version.size_bytes, "pinned": version.pinned, "known_good": version.known_good,
            "state": payload["state"]}


class LearningKeys(KeyProvider):
    partition = "learning"
    prefix = PREFIX

    def _split(self, key):
        agent_id, _, rest = key[len(PREFIX):].partition("/")
        agent = Agent.objects.filter(agent_id=agent_id).first()
        if agent is None:
            raise KeyError(key)
        return agent, rest

    def serves(self, key):
        rest = key[len(PREFIX):].partition("/")[2]
        return rest in FIXED or any(rest.startswith(kind) for kind in LISTED)

    def read(self, key):
        agent, rest = self._split(key)
        profile = profile_for(agent)
        if rest == "config":
            return profile.config()
        if rest == "state":
            return state_record(agent, profile)
        if rest == "baseline":
            if profile.baseline_score is None:
                raise KeyError(key)
            return {"score": profile.baseline_score, "window": profile.baseline_window,
                    "first_task": (profile.baseline_task or 0) + 1,
                    "set_at": profile.baseline_set_at.isoformat()}
        if rest == "improvement":
            return improvement_report(agent, profile)
        kind, _, ident = rest.partition("/")
        if kind == "strategies":
            applied = AppliedStrategy.objects.filter(agent=agent, task_type=ident).select_related("strategy").first()
            if applied is not None:
                return applied_record(applied)
        version_number = whole_number(ident[1:]) if kind == "versions" and ident.startswith("v") else None
        if version_number is not None:
            version = StateVersion.objects.filter(agent=agent, number=version_number).first()
            if version is not None:
                return version_record(version)
        number = whole_number(ident)
        if number is not None:
            if kind == "snapshots":
                snapshot = Snapshot.objects.filter(agent=agent, pk=number).first()
                if snapshot is not None:
                    return snapshot.to_dict()
            if kind == "failure-patterns":
                failure = FailurePattern.objects.filter(agent=agent, pk=number).first()
                if failure is not None:
                    return failure.to_dict()
            if kind == "abtests":
                test = recent_tests(agent).filter(pk=number).first()
                if test is not None:
                    return test.to_dict()
            if kind == "cycles":
                since = timezone.now() - timedelta(days=COPY_DAYS)
                cycle = ImprovementCycle.objects.filter(agent=agent, pk=number, created_at__gte=since).first()
                if cycle is not None:
                    return cycle.to_dict()
        raise KeyError(key)

    def is_writable(self, key):
        rest = key[len(PREFIX):].partition("/")[2]
        kind, _, task_type = rest.partition("/")
        return rest == "config" or (kind == "strategies" and 0 < len(task_type) <= 64
                                    and set(task_type) <= TASK_TYPE_CHARS)

    def write(self, key, value):
        agent, rest = self._split(key)
        if rest == "config":
            try:
                return profile_for(agent).apply_config(value)
            except engine.ConfigError as error:
                raise ProviderError(error.message, f"value.{error.field}") from None
        return self._apply_strategy(agent, rest.partition("/")[2], value)

    @staticmethod
    def _apply_strategy(agent, task_type, value):
        """`strategies/{task type}` = {"strategy": name}: what the agent uses
        for that task type when it is not exploring or testing."""
        if not isinstance(value, dict) or set(value) != {"strategy"} or not isinstance(value["strategy"], str):
            raise ProviderError('Send {"strategy": "<catalog name>"}.', "value")
        strategy = Strategy.objects.active().filter(name=value["strategy"]).first()
        if strategy is None:
            raise ProviderError(f"No active strategy {value['strategy']!r} in the catalog.", "value.strategy")
        applied, _ = AppliedStrategy.objects.update_or_create(
            agent=agent, task_type=task_type,
            defaults={"strategy": strategy, "source": "memory-api", "applied_at": timezone.now()})
        return applied_record(applied)

    def keys(self, prefix, after, limit):
        """Keys under `prefix` sorting after `after`, in order, at most `limit`."""
        rest = prefix[len(PREFIX):]
        agent_part, slash, _ = rest.partition("/")
        agents = Agent.objects.order_by("agent_id")
        agents = agents.filter(agent_id=agent_part) if slash else agents.filter(agent_id__startswith=agent_part)
        found = []
        for agent in agents.iterator():
            base = f"{PREFIX}{agent.agent_id}/"
            if after >= base + "~":
                continue
            candidates = [base + name for name in FIXED]
            failures = FailurePattern.objects.filter(agent=agent).order_by("pk").values_list("pk", flat=True)
            candidates += [f"{base}failure-patterns/{pk}" for pk in failures[:STATE_Q_LIMIT]]
            snapshots = Snapshot.objects.filter(agent=agent).order_by("pk").values_list("pk", flat=True)
            after_snapshot = whole_number(after[len(base) + 10:]) if after.startswith(base + "snapshots/") else None
            if after_snapshot is not None:
                snapshots = snapshots.filter(pk__gt=after_snapshot)
            candidates += [f"{base}snapshots/{pk:010d}" for pk in snapshots[:limit]]
            numbers = StateVersion.objects.filter(agent=agent).values_list("number", flat=True)
            candidates += [f"{base}versions/v{number}" for number in numbers]
            candidates += [f"{base}abtests/{pk}" for pk in recent_tests(agent).values_list("pk", flat=True)]
            since = timezone.now() - timedelta(days=COPY_DAYS)
            cycles = ImprovementCycle.objects.filter(agent=agent, created_at__gte=since).values_list("pk", flat=True)
            candidates += [f"{base}cycles/{pk}" for pk in cycles]
            task_types = AppliedStrategy.objects.filter(agent=agent).values_list("task_type", flat=True)
            candidates += [f"{base}strategies/{task_type}" for task_type in task_types]
            found += sorted(key for key in candidates if key.startswith(prefix) and key > after)
            if len(found) >= limit:
                break
        return sorted(found)[:limit]


# --- shared patterns ------------------------------------------------------------------

SHARED_PREFIX = "phase2/learning/shared/patterns/"


def shared_pattern_record(shared):
    """A shared pattern as the design's `shared/patterns/{id}` holds it, with
    its status: quarantined patterns stay readable so operators see them."""
    return {"id": str(shared.pk), "pattern": shared.key, "task_type": shared.task_type,
            "strategy": shared.strategy.name, "confidence": round(shared.confidence, 4),
            "success_rate": round(shared.success_rate, 4), "lower_bound": round(shared.lower_bound, 4),
            "uses": shared.uses, "source": shared.source.agent_id, "source_version": shared.source_version,
            "status": shared.status, "published_at": shared.published_at.isoformat(),
            "quarantined_at": shared.quarantined_at.isoformat() if shared.quarantined_at else None,
            "quarantine_reason": shared.quarantine_reason}


class SharedPatternKeys(KeyProvider):
    """`phase2/learning/shared/patterns/{id}`: read-only, swarm access, owned
    by the source agent. The whole prefix is served, so no agent can store
    an entry that poses as a shared pattern."""

    partition = "learning"
    prefix = SHARED_PREFIX
    access_level = AccessLevel.SWARM

    def _shared(self, key):
        try:
            pk = uuid.UUID(key[len(SHARED_PREFIX):])
        except ValueError:
            return None
        return SharedPattern.objects.select_related("source", "strategy").filter(pk=pk).first()

    def owner_of(self, key):
        shared = self._shared(key)
        return shared.source.agent_id if shared else None

    def read(self, key):
        shared = self._shared(key)
        if shared is None:
            raise KeyError(key)
        return shared_pattern_record(shared)

    def keys(self, prefix, after, limit):
        """Keys under `prefix` sorting after `after`, in order, at most `limit`
        (UUIDs sort alike as text and in the database)."""
        ids = SharedPattern.objects.order_by("pk").values_list("pk", flat=True)
        if after.startswith(SHARED_PREFIX):
            try:
                ids = ids.filter(pk__gte=uuid.UUID(after[len(SHARED_PREFIX):]))
            except ValueError:
                pass  # a partial id: the text comparison below decides
        found = []
        for pk in ids.iterator():
            key = f"{SHARED_PREFIX}{pk}"
            if key.startswith(prefix) and key > after:
                found.append(key)
                if len(found) == limit:
                    break
        return found
