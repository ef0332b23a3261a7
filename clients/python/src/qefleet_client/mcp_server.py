"""`qefleet-mcp`: QE Fleet as tools for an LLM agent, over MCP's stdio transport.

The agent's identity comes from the environment (QEFLEET_URL, QEFLEET_TOKEN,
QEFLEET_AGENT), never from the model: a tool cannot act as another agent.
Each recommendation gets a ticket; reporting with the ticket sends the
decision id and the task exactly as recommended, which is what the server
learns from. The client's retry, fallback and queue rules all apply.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Annotated, Any, Literal

from .client import Client
from .models import ErrorInfo, Recommendation, Result, Task

try:
    from mcp.server.fastmcp import FastMCP
    from pydantic import Field
except ImportError as missing:  # the base install has no MCP SDK
    raise SystemExit("qefleet-mcp needs the MCP SDK: pip install 'qefleet-client[mcp]'") from missing


def plain(obj) -> Any:
    """A model as plain JSON (datetimes as ISO strings)."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


def error_from_text(text: str) -> ErrorInfo:
    """'TimeoutError: the suite hung' as an error of type TimeoutError."""
    kind, _, message = text.partition(":")
    if not message or " " in kind.strip():
        return ErrorInfo("Error", text[:2000])
    return ErrorInfo(kind.strip()[:100], message.strip()[:2000])


Fraction = Annotated[float, Field(ge=0, le=1)]


def build(client: Client) -> FastMCP:
    server = FastMCP(
        "qefleet",
        instructions=(
            "QE Fleet learns which strategy works best for each kind of quality-engineering task. "
            "Before a task call recommend_strategy, run the task the way it says, then call report_task "
            "with the ticket and the real outcome: that is how the fleet learns. Memory and hints are shared "
            "notes between agents of the swarm."
        ),
    )
    tickets: dict[str, tuple[Task, Recommendation]] = {}

    @server.tool()
    def recommend_strategy(
        task_type: Annotated[str, Field(description="Kind of task, e.g. unit-test, security-scan, e2e-test.")],
        complexity: Annotated[Fraction, Field(description="0 trivial .. 1 hardest.")] = 0.5,
        available_resources: Annotated[Fraction, Field(description="Share of CPU/memory free, 0..1.")] = 1.0,
        previous_attempts: Annotated[int, Field(ge=0, description="Times this task was tried before.")] = 0,
        required_capabilities: Annotated[list[str], Field(description="Capabilities the task needs.")] = [],  # noqa: B006
        time_constraint_ms: Annotated[int | None, Field(ge=0, description="Deadline in ms, if any.")] = None,
    ) -> dict:
        """Ask which strategy to run a task with (parallel, sequential, adaptive retry, resource saving).
        Returns the strategy, its parallelization (0 = one at a time, 1 = all at once), its retry policy,
        the reasoning, and a ticket to pass to report_task. If QE Fleet is unreachable the answer is a
        fallback (source 'last-known' or 'default') and still usable."""
        task = Task(
            type=task_type,
            complexity=complexity,
            available_resources=available_resources,
            previous_attempts=previous_attempts,
            required_capabilities=list(required_capabilities),
            time_constraint_ms=time_constraint_ms,
        )
        recommendation = client.recommend(task)
        ticket = str(uuid.uuid4())
        tickets[ticket] = (task, recommendation)
        keep = (
            "strategy",
            "parallelization",
            "retry_policy",
            "confidence",
            "reasoning",
            "explored",
            "source",
            "decision_id",
        )
        return {"ticket": ticket, **{name: plain(recommendation)[name] for name in keep}}

    @server.tool()
    def report_task(
        ticket: Annotated[str, Field(description="The ticket recommend_strategy returned for this task.")],
        success: Annotated[bool, Field(description="Whether the task achieved its goal.")],
        execution_time_ms: Annotated[int, Field(ge=0, description="How long the task took, in ms.")],
        errors: Annotated[list[str], Field(description="Errors met, as 'ErrorType: message'.")] = [],  # noqa: B006
        coverage: Annotated[Fraction | None, Field(description="Code coverage reached, 0..1, if measured.")] = None,
    ) -> dict:
        """Report how a recommended task went, so QE Fleet learns from it. Counts once however often it is
        retried; if QE Fleet is unreachable the report is queued and delivered later (queued: true)."""
        if ticket not in tickets:
            raise ValueError("Unknown ticket: call recommend_strategy first and pass the ticket it returned.")
        task, recommendation = tickets.pop(ticket)
        result = Result(
            success=success,
            execution_time_ms=execution_time_ms,
            coverage=coverage,
            errors=[error_from_text(text) for text in errors],
        )
        delivery = client.report(task, result, recommendation=recommendation)
        execution = delivery.execution
        return {
            "queued": delivery.queued,
            "execution_id": execution.execution_id if execution else None,
            "reward": execution.reward if execution else None,
        }

    @server.tool()
    def learning_status() -> dict:
        """This agent's learning so far: tasks learned from, exploration rate, score against its baseline,
        whether it met its improvement target, and the strategies applied per task type."""
        return plain(client.learning_status())

    @server.tool()
    def memory_get(
        partition: Annotated[str, Field(description="Memory partition (namespace), e.g. 'notes'.")],
        key: Annotated[str, Field(description="Entry key; '/' separates levels, e.g. 'runs/flaky'.")],
    ) -> dict:
        """Read one shared memory entry (its value, owner, version and expiry)."""
        return plain(client.memory_get(partition, key))

    @server.tool()
    def memory_put(
        partition: Annotated[str, Field(description="Memory partition (namespace), e.g. 'notes'.")],
        key: Annotated[str, Field(description="Entry key; '/' separates levels.")],
        value: Annotated[Any, Field(description="Any JSON value except null.")],
        ttl_seconds: Annotated[int | None, Field(ge=0, description="Expire after this many seconds.")] = None,
        access_level: Annotated[
            Literal["private", "team", "swarm", "public"] | None,
            Field(description="Who may read it (new entries only; default private)."),
        ] = None,
    ) -> dict:
        """Write (create or replace) a shared memory entry."""
        return plain(client.memory_put(partition, key, value, ttl_seconds=ttl_seconds, access_level=access_level))

    @server.tool()
    def memory_query(
        partition: Annotated[str, Field(description="Memory partition (namespace).")],
        prefix: Annotated[str, Field(description="Only keys starting with this.")] = "",
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page.")] = None,
    ) -> dict:
        """List the memory entries of a partition this agent may read, by key prefix, one page at a time."""
        return plain(client.memory_query(partition, prefix, limit, cursor))

    @server.tool()
    def hints_read(
        prefix: Annotated[str, Field(description="Only hints whose key starts with this.")] = "",
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
    ) -> dict:
        """Read the hints other agents left (newest first)."""
        return plain(client.hints(prefix, limit))

    @server.tool()
    def hint_add(
        key: Annotated[str, Field(description="What the hint is about, e.g. 'suite/slow-tests'.")],
        value: Annotated[Any, Field(description="The hint itself: any JSON value.")],
        ttl_seconds: Annotated[int | None, Field(ge=0, description="Expire after this many seconds.")] = None,
        access_level: Annotated[
            Literal["private", "team", "swarm", "public"] | None, Field(description="Who may read it; default private.")
        ] = None,
    ) -> dict:
        """Leave a hint for other agents."""
        return plain(client.add_hint(key, value, ttl_seconds=ttl_seconds, access_level=access_level))

    return server


def main() -> None:
    with Client() as client:
        if not client.settings.agent:  # fail at start, not at the model's first call
            raise SystemExit("qefleet-mcp: set QEFLEET_AGENT (and QEFLEET_URL, QEFLEET_TOKEN).")
        build(client).run("stdio")
