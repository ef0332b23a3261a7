"""What the API's routers share: the error responses every operation may
answer, and the agent a path names."""

from . import access
from .errors import NotFound
from .models import Agent
from .schemas import ErrorOut

ERRORS = {
    400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut, 415: ErrorOut, 422: ErrorOut,
    # Any operation: over the agent's rate limit, or the database is full (both with Retry-After).
    429: ErrorOut, 503: ErrorOut,
}


def ok(schema, created_code=None):
    codes = {200: schema, **ERRORS}
    if created_code:
        codes[created_code] = schema
    return codes


def page(rows, cursor):
    return {"items": [row.to_dict() for row in rows], "next_cursor": cursor}


def agent_for(request, agent_id):
    """The agent a path names: the caller itself, or an agent of its swarm for a system agent."""
    caller = request.agent
    if caller.agent_id == agent_id:
        return caller
    if "\x00" in agent_id:
        # No agent id holds a NUL, and PostgreSQL can neither compare with one nor store it in the audit trail.
        raise NotFound("No such agent.")
    if caller.is_system:
        agent = Agent.objects.filter(agent_id=agent_id).first()
        if agent is not None and access.administers(caller, agent.swarm):
            return agent
    # Audited whether or not the agent exists: the answer is the same either way.
    raise NotFound("No such agent.").denied(caller, "act as", f"agent:{agent_id}", "another agent's routes")
