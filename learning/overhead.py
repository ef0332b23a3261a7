"""Live learning overhead: how long the server spends on each stage of a
task's learning, measured on every learning request and added up per minute
in the database.

`OverheadMiddleware` starts a `Stopwatch` for every request. The learning
services mark the end of each stage with `lap()` (a no-op outside a
request, as in the simulator's or the benchmark's direct calls) and
`complete()` names a learning request worth recording; the middleware then
adds its laps and the whole request's time to this process's buffer.

The buffer holds count, sum and a latency.py histogram per (minute, stage)
and writes them to `OverheadMinute` rows with atomic increments when a
request arrives in a new minute or FLUSH_SECONDS after the last write:
after the report's transaction has committed and outside it, so the
measuring never adds a write to a report. A failed write is logged and
retried with the next one; it never fails the request. What a worker
killed between writes held (at most FLUSH_SECONDS of its samples, or the
last ones of a worker that got no request since) is lost. Rows are kept
RETENTION_DAYS (the daily prune_history job).
"""

import contextvars
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .core import latency
from .models import OVERHEAD_BINS, OverheadMinute

logger = logging.getLogger("qefleet.learning.overhead")

# Stage -> what it covers, in the order a task goes through them. The two
# requests are measured whole, from the first middleware to the response;
# the report's stages from the service's start to its commit.
STAGES = {
    "recommendation": "recommendation request (whole)",
    "lookup": "profile lock, decision and idempotency check",
    "reward_q": "reward and Q-update (with epsilon decay)",
    "patterns": "patterns and failure patterns",
    "abtest": "A/B arm counters",
    "performance": "performance sample",
    "safeguard": "safeguard check (and rollback)",
    "experience": "execution row (the experience)",
    "events": "training event",
    "snapshot": "snapshot and version capture",
    "commit": "commit",
    "report": "execution report request (whole)",
}
REQUESTS = ("recommendation", "report")
FLUSH_SECONDS = 10

_current = contextvars.ContextVar("learning_overhead_stopwatch", default=None)


class Stopwatch:
    """One request's laps: (stage, ms) since the previous lap or `begin`."""

    __slots__ = ("started", "last", "laps", "kind")

    def __init__(self):
        self.started = self.last = time.perf_counter()
        self.laps = []
        self.kind = None

    def lap(self, stage):
        now = time.perf_counter()
        self.laps.append((stage, (now - self.last) * 1000))
        self.last = now

    def samples(self):
        """The laps and the whole request, timed until now, under its kind."""
        return [*self.laps, (self.kind, (time.perf_counter() - self.started) * 1000)]


@contextmanager
def stopwatch():
    """A Stopwatch that `begin`, `lap` and `complete` use inside the block."""
    watch = Stopwatch()
    token = _current.set(watch)
    try:
        yield watch
    finally:
        _current.reset(token)


def begin():
    """The first stage starts now (not at the request's start)."""
    watch = _current.get()
    if watch is not None:
        watch.last = time.perf_counter()


def lap(stage):
    """The stage `stage` ends now."""
    watch = _current.get()
    if watch is not None:
        watch.lap(stage)


def complete(kind):
    """Record this request, as `kind` (one of REQUESTS), when it ends."""
    watch = _current.get()
    if watch is not None:
        watch.kind = kind


class Tally:
    """Samples of one (minute, stage): how many, their sum, their histogram."""

    __slots__ = ("count", "total_ms", "bins")

    def __init__(self):
        self.count, self.total_ms, self.bins = 0, 0.0, [0] * latency.BINS

    def add(self, ms):
        self.count += 1
        self.total_ms += ms
        self.bins[latency.bin_index(ms)] += 1

    def merge(self, other):
        self.count += other.count
        self.total_ms += other.total_ms
        self.bins = [mine + theirs for mine, theirs in zip(self.bins, other.bins)]


class OverheadBuffer:
    """One process's samples per (minute, stage) until they are written.

    Threads of a worker share it (a lock guards it); separate workers each
    have their own and add into the same rows. While the database refuses
    the writes, the last HELD_MINUTES minutes are kept for the next try."""

    HELD_MINUTES = 60

    def __init__(self, flush_seconds=FLUSH_SECONDS):
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._tallies = {}
        self._minute = None
        self._written_at = None

    def add(self, samples, now):
        """Add [(stage, ms)] measured at `now` (seconds since the epoch);
        True when a write is due (a new minute, or FLUSH_SECONDS since the
        last)."""
        minute = int(now // 60)
        with self._lock:
            for stage, ms in samples:
                tally = self._tallies.get((minute, stage))
                if tally is None:
                    tally = self._tallies[(minute, stage)] = Tally()
                tally.add(ms)
            if self._written_at is None:
                self._written_at = now
            due = minute != self._minute or now - self._written_at >= self.flush_seconds
            self._minute = minute
        return due

    def flush(self, now):
        """Write what is held; False when the database refused it."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
            self._written_at = now
        if not tallies:
            return True
        try:
            OverheadMinute.objects.add({
                (datetime.fromtimestamp(minute * 60, UTC), stage): (tally.count, tally.total_ms, tally.bins)
                for (minute, stage), tally in tallies.items()
            })
        except Exception:
            kept = {key: tally for key, tally in tallies.items() if key[0] > now // 60 - self.HELD_MINUTES}
            logger.exception("Could not write the learning overhead of %d (minute, stage) pairs; %d kept for the "
                             "next try.", len(tallies), len(kept))
            with self._lock:
                for key, tally in kept.items():
                    self._tallies.setdefault(key, Tally()).merge(tally)
            return False
        return True

    def record(self, samples, now):
        """Add the samples and write when due."""
        if self.add(samples, now):
            self.flush(now)


BUFFER = OverheadBuffer()


class OverheadMiddleware:
    """Times every request; records the learning requests in BUFFER after
    the response is made (and after the report's commit)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with stopwatch() as watch:
            response = self.get_response(request)
        if watch.kind is not None:
            BUFFER.record(watch.samples(), time.time())
        return response


# --- reading the rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """One stage's durations over a period, in ms."""

    stage: str
    samples: int
    mean: float
    p50: float
    p95: float
    p99: float

    @property
    def label(self):
        return STAGES.get(self.stage, self.stage)

    @classmethod
    def of(cls, row):
        """From a row of OverheadMinute.objects.summed("stage", ...) with samples."""
        counts = np.array([row[f"sum_{name}"] for name in OVERHEAD_BINS], dtype=float)
        p50, p95, p99 = latency.percentiles(counts)
        return cls(row["stage"], row["samples"], row["sum_ms"] / row["samples"], p50, p95, p99)


def stage_figures(since):
    """Figures of each stage measured in the minutes from `since` on, in
    STAGES order; one query."""
    rows = OverheadMinute.objects.filter(minute__gte=since)
    measured = {row["stage"]: Figures.of(row) for row in rows.summed("stage") if row["samples"]}
    return [measured[stage] for stage in STAGES if stage in measured]
