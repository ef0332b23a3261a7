"""The fleet's timeline: what the agents' learning did (rollbacks, new
failures, mitigations, A/B tests, strategies) and what operators did (the
audit trail, refusals of agents' requests left out), newest first, in one list."""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from qefleet.memory.models import AuditEvent, Event

from .. import words
from ..params import choice

WINDOW_DAYS = (1, 7, 30)
KINDS = {"all": "events and operator actions", "events": "learning events only", "actions": "operator actions only",
         "rollbacks": "rollbacks only"}
# The events an operator reads; training, feedback and progress events come by the thousand.
TIMELINE_EVENTS = ("learning:rollback", "learning:rollback_dry_run", "learning:failure_detected",
                   "learning:mitigation_applied", "learning:mitigation_withdrawn", "learning:abtest_started",
                   "learning:abtest_completed", "learning:strategy_changed", "learning:pattern_discovered")
LIMIT = 200


@dataclass
class Entry:
    at: object
    agent_id: str | None  # the agent it concerns, when it names one
    who: str  # "learning" or the operator's name
    sentence: str
    kind: str  # "event" or "action"


def _events(since, types):
    rows = (Event.objects.filter(type__in=types, timestamp__gte=since).order_by("-timestamp")
            .values_list("timestamp", "owner__agent_id", "type", "payload")[:LIMIT])
    return [Entry(at, agent_id, "learning", words.event_sentence(kind, payload), "event")
            for at, agent_id, kind, payload in rows]


def _actions(since, actions=None):
    rows = AuditEvent.objects.filter(at__gte=since).exclude(action__in=AuditEvent.DENIALS)
    if actions is not None:
        rows = rows.filter(action__in=actions)
    rows = rows.order_by("-at").values_list("at", "actor", "action", "target", "detail")[:LIMIT]
    return [Entry(at, target.partition(":")[2] if target.startswith("agent:") else (detail or {}).get("agent"),
                  actor, words.action_sentence(actor, action, target, detail), "action")
            for at, actor, action, target, detail in rows]


def timeline_context(query):
    days = int(choice(query, "days", [str(days) for days in WINDOW_DAYS], "7"))
    kind = choice(query, "kind", list(KINDS), "all")
    since = timezone.now() - timedelta(days=days)
    entries = []
    if kind in ("all", "events"):
        entries += _events(since, TIMELINE_EVENTS)
    if kind == "rollbacks":
        entries += _events(since, ("learning:rollback",)) + _actions(since, ("rollback", "undo_rollback"))
    if kind in ("all", "actions"):
        entries += _actions(since)
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return {"entries": entries[:LIMIT], "cut": len(entries) > LIMIT, "limit": LIMIT, "days": days,
            "window_days": [(str(value), f"last {value} day{'s' if value > 1 else ''}") for value in WINDOW_DAYS],
            "kind": kind, "kinds": list(KINDS.items())}
