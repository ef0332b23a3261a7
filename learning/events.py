"""Learning events: rows in the memory `events` table, owned by the agent."""

from qefleet.memory import store as memory_store
from qefleet.memory.models import Event

PREFIX = "learning:"  # every type emitted here; reserved for the server (apps.py)


def emit(agent, type, payload):
    memory_store.create_owned(agent, Event, None, None, type=type, payload=payload)
