"""What several pages share: numpy conversions for the charts, the series
and chart annotations more than one page draws, the agent's optional
one-to-one rows, a filter's agent ids, and the time-range picker every
page with a time series shows. (Parameters are read by dashboard.params.)"""

import math
from dataclasses import dataclass

import numpy as np
from django.db.models import FloatField, Func

from qefleet.memory.models import Agent

from ..params import time_range

# Per chart series; longer windows are averaged in buckets of tasks. The pages
# read it as common.MAX_POINTS when they query, so a test can lower it.
MAX_POINTS = 400
# A page-wide time range (dashboard.params.TIME_RANGES) in words, in the picker's order.
RANGE_WORDS = {"1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days",
               "90d": "last 90 days"}


def range_picker(query, default="7d", allowed=tuple(RANGE_WORDS)):
    """The page's time range (?range=, one of `allowed`), one for all its
    time series: (how far back it reaches, the context of
    dashboard/_range_picker.html and of the words that name the range)."""
    name, reach = time_range(query, default, allowed)
    return reach, {"range": name, "range_words": RANGE_WORDS[name],
                   "ranges": [(value, RANGE_WORDS[value]) for value in allowed]}


def as_datetime64(moments):
    """Aware UTC datetimes as numpy datetime64 (plotly writes them as ISO text)."""
    return np.array([moment.replace(tzinfo=None) for moment in moments], dtype="datetime64[ms]")


def as_floats(values):
    return np.array([np.nan if value is None else value for value in values], dtype=float)


def profile_of(agent):
    """The agent's learning profile, or None before its first task."""
    return getattr(agent, "learning", None)


def safeguard_of(agent):
    return getattr(agent, "safeguard", None)


@dataclass
class ScoreSeries:
    """The agent's snapshots in a window (tasks first_task..last_task),
    averaged in the database over buckets of tasks when there are many."""

    first_task: int
    last_task: int
    at: np.ndarray
    score: np.ndarray
    success_rate: np.ndarray
    time_score: np.ndarray
    error_free: np.ndarray
    satisfaction: np.ndarray
    efficiency: np.ndarray

    @property
    def bucket_tasks(self):
        """Tasks per point that keep a per-task series under MAX_POINTS."""
        return max(1, math.ceil((self.last_task - self.first_task + 1) / MAX_POINTS))


@dataclass
class Marker:
    """A rollback, undo or re-enable on the score chart."""

    at: object
    label: str


@dataclass
class LoopEvent:
    """A moment of the improvement loop on the score chart; `kind` is one of
    charts.LOOP_EVENT_LOOKS' keys (started, ended, applied, reverted)."""

    at: object
    kind: str
    text: str


class EpochSeconds(Func):
    """A datetime column (stored in UTC) as seconds since the epoch, computed
    in the database, so rows can be put in equal spans of time with one
    grouped query (Django's Extract has no portable epoch)."""

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM %(expressions)s)"  # PostgreSQL

    def as_sqlite(self, compiler, connection, **extra_context):
        # SQLite stores the UTC time as text; julianday() reads it, in days from a noon 4714 BC.
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
                           **extra_context)


def options(values):
    """(value, words) pairs of a filter's select that show the values themselves."""
    return [(value, value) for value in values]


def agents_with(relation):
    """Agent ids that have rows in `relation` (e.g. "alerts"), for a page's agent filter."""
    return list(Agent.objects.filter(**{f"{relation}__isnull": False}).distinct().order_by("agent_id")
                .values_list("agent_id", flat=True))
