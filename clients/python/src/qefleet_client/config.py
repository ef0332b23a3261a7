"""The client's settings: QEFLEET_URL, QEFLEET_TOKEN and QEFLEET_AGENT from
the environment by default, every one of them overridable in code."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .models import Recommendation


def default_state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("QEFLEET_STATE_DIR") or Path(base) / "qefleet")


def default_recommendation(strategy="sequential-execution", parallelization=0.0, retry_policy="fixed"):
    """What to run when the server cannot be reached and has recommended
    nothing for the task type yet. The default matches the server's own
    default catalog strategy (sequential, fixed retries): the safe choice."""
    return Recommendation(
        decision_id=None,
        strategy=strategy,
        parallelization=parallelization,
        retry_policy=retry_policy,
        action_key=f"{strategy}:{parallelization:g}:{retry_policy}",
        state_key="",
        confidence=0.0,
        expected_improvement=0.0,
        reasoning="QE Fleet could not be reached; the configured default strategy.",
        alternatives=[],
        explored=False,
        propensity=1.0,
        policy_version=None,
        source="default",
    )


@dataclass
class Settings:
    url: str = field(default_factory=lambda: os.environ.get("QEFLEET_URL", "http://127.0.0.1:8000"))
    token: str | None = field(default_factory=lambda: os.environ.get("QEFLEET_TOKEN"))
    agent: str | None = field(default_factory=lambda: os.environ.get("QEFLEET_AGENT"))
    # One HTTP attempt's connect/read timeout, seconds.
    timeout: float = field(default_factory=lambda: float(os.environ.get("QEFLEET_TIMEOUT", "10")))
    # A recommendation answers within this many seconds, from the server or
    # from the fallback: an agent never waits longer for a strategy.
    fallback_after: float = field(default_factory=lambda: float(os.environ.get("QEFLEET_FALLBACK_AFTER", "3")))
    # A report keeps retrying this long, then goes to the on-disk queue.
    report_budget: float = field(default_factory=lambda: float(os.environ.get("QEFLEET_REPORT_BUDGET", "15")))
    # Other calls (memory, hints, events, status) retry this long, then raise Unavailable.
    call_budget: float = 15.0
    max_attempts: int = 6
    backoff_base: float = 0.25
    backoff_cap: float = 8.0
    default: Recommendation = field(default_factory=default_recommendation)
    state_dir: Path = field(default_factory=default_state_dir)
    # At most this many undelivered reports are kept; past it the oldest is dropped (and logged).
    max_queued_reports: int = 1000

    @property
    def api(self) -> str:
        return self.url.rstrip("/") + "/api/v1"

    def agent_dir(self, agent: str) -> Path:
        """Where one agent's state for one server lives: its queue and its last strategies."""
        server = hashlib.sha256(self.url.rstrip("/").encode()).hexdigest()[:12]
        return Path(self.state_dir) / server / agent
