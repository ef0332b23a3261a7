"""What the client keeps on disk for the times the server cannot be reached:
the last strategy the server recommended per task type, and the reports not
yet delivered.

Every file is written whole to a temporary name and renamed into place, so a
crash never leaves half a report. A queued report keeps the Idempotency-Key
it was first sent with: if the server did receive an earlier attempt, the
redelivery is answered from that first report and counts nothing twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

from .models import Recommendation, from_json

logger = logging.getLogger("qefleet_client")

try:
    import fcntl
except ImportError:  # Windows: one process per agent directory is then the caller's to ensure.
    fcntl = None


def write_atomically(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


class LastStrategies:
    """The last recommendation per task type, for the fallback."""

    def __init__(self, directory: Path):
        self.path = directory / "last-strategies.json"

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def remember(self, task_type: str, recommendation: Recommendation) -> None:
        known = self._read()
        # The strategy and its scalars: the alternatives and an A/B test's arm belong to that one decision.
        known[task_type] = {
            f.name: getattr(recommendation, f.name)
            for f in dataclasses.fields(Recommendation)
            if f.name not in ("alternatives", "abtest")
        }
        try:
            write_atomically(self.path, known)
        except OSError as error:  # a read-only home must not cost the agent its recommendation
            logger.warning("Could not keep the last strategy in %s: %s", self.path, error)

    def recall(self, task_type: str) -> Recommendation | None:
        known = self._read().get(task_type)
        if known is None:
            return None
        known["abtest"] = None
        recommendation = from_json(Recommendation, {**known, "alternatives": []})
        recommendation.decision_id = None
        recommendation.source = "last-known"
        recommendation.reasoning = "QE Fleet could not be reached; the last strategy it recommended for this task type."
        return recommendation


@dataclasses.dataclass
class QueuedReport:
    path: Path
    agent: str
    idempotency_key: str
    body: dict


class ReportQueue:
    """Undelivered reports, one file each, oldest first; bounded."""

    def __init__(self, directory: Path, limit: int):
        self.directory = directory / "queue"
        self.limit = limit

    def put(self, agent: str, idempotency_key: str, body: dict) -> None:
        name = f"{time.time_ns():020d}-{idempotency_key}.json"
        write_atomically(self.directory / name, {"agent": agent, "idempotency_key": idempotency_key, "body": body})
        waiting = self._files()
        for dropped in waiting[: max(0, len(waiting) - self.limit)]:
            logger.warning("Report queue full (%d): dropped the oldest report %s", self.limit, dropped.name)
            dropped.unlink(missing_ok=True)

    def _files(self) -> list[Path]:
        try:
            return sorted(self.directory.glob("*.json"))
        except FileNotFoundError:
            return []

    def __len__(self) -> int:
        return len(self._files())

    def pending(self) -> list[QueuedReport]:
        reports = []
        for path in self._files():
            try:
                data = json.loads(path.read_text())
            except FileNotFoundError:  # delivered by another process meanwhile
                continue
            reports.append(QueuedReport(path, data["agent"], data["idempotency_key"], data["body"]))
        return reports

    def done(self, report: QueuedReport) -> None:
        report.path.unlink(missing_ok=True)

    def reject(self, report: QueuedReport, reason: str) -> None:
        """A report the server refused for good (4xx): kept aside for a person, never resent."""
        logger.error("QE Fleet refused queued report %s: %s", report.idempotency_key, reason)
        target = self.directory.parent / "rejected" / report.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(report.path, target)

    @contextlib.contextmanager
    def draining(self):
        """Held while delivering, so two processes of one agent do not send
        the same queued report at once (harmless, but wasted)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield
