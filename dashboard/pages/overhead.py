"""The Overhead page: the live learning overhead (learning/overhead.py) per
stage and per request, against the budget, over the page's time range
(?range=: the last hour or 24 hours); two queries."""

import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models.functions import Trunc
from django.utils import timezone

from learning import overhead
from learning.models import OverheadMinute

from .. import charts
from .common import as_datetime64, range_picker

# The time ranges offered, each with its chart's bucket. Not the 7 days the
# rows are kept: summing a week of minute rows (121,000 for 12 stages) took
# 1.2 s, past the page's budget of 300 ms.
RANGE_BUCKETS = {"1h": "minute", "24h": "hour"}


@dataclass(frozen=True)
class RequestSeries:
    """One request's percentiles per bucket (ms; inf beyond 10 s)."""

    at: np.ndarray
    p50: np.ndarray
    p95: np.ndarray
    p99: np.ndarray


def request_series(since, bucket):
    """{request: RequestSeries} of the two learning requests per `bucket`
    ("minute" or "hour") from `since` on; one query."""
    rows = (OverheadMinute.objects.filter(minute__gte=since, stage__in=overhead.REQUESTS)
            .annotate(bucket=Trunc("minute", bucket)).summed("stage", "bucket"))
    points = {}
    for row in rows:
        points.setdefault(row["stage"], []).append((row["bucket"], overhead.Figures.of(row)))
    return {
        stage: RequestSeries(as_datetime64(at for at, _ in measured), *(
            np.array([getattr(figures, name) for _, figures in measured], dtype=float) for name in ("p50", "p95", "p99")
        ))
        for stage, measured in points.items()
    }


@dataclass(frozen=True)
class StageRow:
    figures: overhead.Figures
    budget_share: float | None  # p99 / the budget; None beyond the histogram (10 s)

    @property
    def is_request(self):
        return self.figures.stage in overhead.REQUESTS


@dataclass(frozen=True)
class Window:
    bucket: str  # the chart's: "minute" or "hour"
    rows: list
    figure: str | None
    budget: float

    @classmethod
    def measure(cls, since, now, bucket, budget):
        series = request_series(since, bucket)
        rows = [StageRow(figures, _share(figures.p99, budget)) for figures in overhead.stage_figures(since)]
        return cls(bucket, rows, charts.overhead_figure(series, budget, since, now) if series else None, budget)

    @property
    def outside_stages_mean(self):
        """What the report spends outside its stages (authentication, JSON
        parsing, the response), on average: means add up, percentiles do not."""
        means = {row.figures.stage: row.figures.mean for row in self.rows}
        if "report" not in means:
            return None
        return means["report"] - sum(mean for stage, mean in means.items() if stage not in overhead.REQUESTS)

    @property
    def task_p99(self):
        """A task makes both requests: the sum of their p99s (the p99 of a
        task's total when the two rise and fall together, an estimate
        otherwise), or None until both were measured."""
        requests = [row.figures.p99 for row in self.rows if row.is_request]
        return sum(requests) if len(requests) == 2 else None

    @property
    def task_budget_share(self):
        return None if self.task_p99 is None else _share(self.task_p99, self.budget)

    @property
    def task_within_budget(self):
        """The budget is per task, so the task is judged, never a request
        alone: whether task_p99 is within it; with one request measured,
        False when that one alone is over it, else None (not judged yet)."""
        if self.task_p99 is not None:
            return self.task_p99 <= self.budget
        if any(row.figures.p99 > self.budget for row in self.rows if row.is_request):
            return False
        return None


def _share(p99, budget):
    return p99 / budget if math.isfinite(p99) else None


def overhead_context(query):
    now, budget = timezone.now(), settings.LEARNING_OVERHEAD_BUDGET_MS
    reach, picker = range_picker(query, "24h", tuple(RANGE_BUCKETS))
    window = Window.measure(now - reach, now, RANGE_BUCKETS[picker["range"]], budget)
    return {"window": window, "budget": budget, "flush_seconds": overhead.FLUSH_SECONDS,
            "retention_days": OverheadMinute.RETENTION_DAYS, **picker}
