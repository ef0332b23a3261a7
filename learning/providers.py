"""The seed's `phase2/learning/{agentId}/...` keys, served from learning's tables.

Registered with the memory app at start-up (apps.py), so the memory API
reads them like stored entries: owner the agent, level private. Only
`config` accepts writes, validated by the engine; `strategies/` arrives with
the improvement loop.
"""

from qefleet.memory.models import Agent
from qefleet.memory.providers import KeyProvider, ProviderError

from . import engine
from .models import Execution, FailurePattern, LearnedPattern, QEntry, Snapshot, StateVersion
from .services import profile_for
from .tracker import improvement_report
from .versions import decode

PREFIX = "phase2/learning/"
STATE_Q_LIMIT = 10_000
FIXED = ("baseline", "config", "improvement", "state")
LISTED = ("failure-patterns/", "snapshots/", "versions/")


def snapshot_key(snapshot):
    return f"snapshots/{snapshot.pk:010d}"


def state_record(agent, profile):
    """The agent's learned state, as the seed's `state` key holds it: the Q
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
        if kind == "versions" and ident.startswith("v") and ident[1:].isdigit():
            version = StateVersion.objects.filter(agent=agent, number=int(ident[1:])).first()
            if version is not None:
                return version_record(version)
        if ident.isdigit():
            if kind == "snapshots":
                snapshot = Snapshot.objects.filter(agent=agent, pk=int(ident)).first()
                if snapshot is not None:
                    return snapshot.to_dict()
            if kind == "failure-patterns":
                failure = FailurePattern.objects.filter(agent=agent, pk=int(ident)).first()
                if failure is not None:
                    return failure.to_dict()
        raise KeyError(key)

    def is_writable(self, key):
        return key.endswith("/config") and key.count("/") == 3

    def write(self, key, value):
        agent, _ = self._split(key)
        profile = profile_for(agent)
        try:
            return profile.apply_config(value)
        except engine.ConfigError as error:
            raise ProviderError(error.message, f"value.{error.field}") from None

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
            if after.startswith(base + "snapshots/") and after[len(base) + 10:].isdigit():
                snapshots = snapshots.filter(pk__gt=int(after[len(base) + 10:]))
            candidates += [f"{base}snapshots/{pk:010d}" for pk in snapshots[:limit]]
            numbers = StateVersion.objects.filter(agent=agent).values_list("number", flat=True)
            candidates += [f"{base}versions/v{number}" for number in numbers]
            found += sorted(key for key in candidates if key.startswith(prefix) and key > after)
            if len(found) >= limit:
                break
        return sorted(found)[:limit]
