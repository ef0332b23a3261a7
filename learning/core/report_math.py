"""The improvement report's arithmetic: pure functions, no Django, no database.

The period, its checkpoints (day 0, every 7 days, the last day), the
composite score of a window from its snapshots' task-weighted sums, the
direction of each component, the projection to the improvement target on a
least-squares line, and the attribution of a change in success rate to
applied strategies (learning/report.py gathers the inputs; README and
docs/ARCHITECTURE.md say why it is computed this way).
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

import numpy as np

from . import engine, scoring

DAY = timedelta(days=1)
DEFAULT_DAYS = 30
MAX_DAYS = 90           # snapshots, decisions and executions are kept 90 days
PROJECTION_DAYS = 365   # a projected date further out than this is no projection


class PeriodError(ValueError):
    """A period the report cannot be built for; the message says why."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @property
    def days(self):
        """Day windows in the period (the last one may be cut short by `end`)."""
        return max(1, math.ceil((self.end - self.start) / DAY))

    def window(self, index):
        """[from, until) of the period's day `index` (0-based)."""
        return self.start + index * DAY, min(self.start + (index + 1) * DAY, self.end)

    def moment(self, day):
        return min(self.start + day * DAY, self.end)

    def label(self):
        return f"{self.start:%Y-%m-%d}_{self.end:%Y-%m-%d}"


def _date(value, name):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PeriodError(f"{name} must be a date, YYYY-MM-DD.") from None


def parse_period(query, now):
    """The period a query asks for: `days` (1-90, ending now; default 30) or
    `start` and `end` (UTC dates, both included, cut at now)."""
    days, start, end = (query.get(name, "").strip() for name in ("days", "start", "end"))
    if days and (start or end):
        raise PeriodError("Give either days or start and end, not both.")
    if start or end:
        if not (start and end):
            raise PeriodError("Give both start and end (YYYY-MM-DD).")
        first, last = _date(start, "start"), _date(end, "end")
        if last < first:
            raise PeriodError("end must not be before start.")
        begin = datetime.combine(first, time(), tzinfo=dt_timezone.utc)
        if begin >= now:
            raise PeriodError("The period must start before now.")
        if begin < now - MAX_DAYS * DAY:
            raise PeriodError(f"History is kept {MAX_DAYS} days: start must be within them.")
        return Period(begin, min(now, datetime.combine(last, time(), tzinfo=dt_timezone.utc) + DAY))
    if not days:
        return Period(now - DEFAULT_DAYS * DAY, now)
    # ASCII digits only: "²".isdigit() is True and int("²") raises.
    if not (days.isascii() and days.isdigit()) or len(days) > len(str(MAX_DAYS)) or not 1 <= int(days) <= MAX_DAYS:
        raise PeriodError(f"days must be a whole number from 1 to {MAX_DAYS}.")
    return Period(now - int(days) * DAY, now)


def checkpoint_days(days):
    """Day 0, every 7th day with a full week after it, and the last day:
    0, 7, 14, 21, 30 for 30 days; 0, 7, 14 for 14; 0, 10 for 10."""
    return [0, *range(7, days - 6, 7), days]


def checkpoint_window(day):
    """The day window a checkpoint reads: day 0 is the period's first day,
    day k the day that ends at day k."""
    return max(0, day - 1)


# --- the composite score of a window ------------------------------------------------


@dataclass(frozen=True)
class WindowSums:
    """Snapshots' task-weighted sums over a window: `success` is the sum of
    tasks x success rate, and so on; satisfaction and efficiency are summed
    over the snapshots that had them, with their own task counts."""

    tasks: int
    success: float
    ms: float
    errors: float
    satisfaction: float | None = None
    satisfaction_tasks: int = 0
    efficiency: float | None = None
    efficiency_tasks: int = 0


@dataclass(frozen=True)
class Components:
    tasks: int
    success_rate: float
    avg_ms: float
    time_score: float
    error_rate: float
    satisfaction: float | None
    efficiency: float | None
    score: float


def components(sums):
    """The window's components and composite score, as the tracker scores a
    window of tasks; None for a window without tasks."""
    if not sums or not sums.tasks:
        return None
    satisfaction = sums.satisfaction / sums.satisfaction_tasks if sums.satisfaction_tasks else None
    efficiency = sums.efficiency / sums.efficiency_tasks if sums.efficiency_tasks else None
    success_rate, avg_ms, error_rate = sums.success / sums.tasks, sums.ms / sums.tasks, sums.errors / sums.tasks
    time_score = scoring.time_score(avg_ms)
    return Components(sums.tasks, success_rate, avg_ms, time_score, error_rate, satisfaction, efficiency,
                      scoring.composite_score(success_rate, time_score, error_rate, satisfaction, efficiency))


# component -> (whether higher is better, the decimals the page shows)
COMPONENT_DIRECTIONS = {
    "score": (True, 3),
    "success_rate": (True, 3),
    "avg_ms": (False, 0),
    "error_rate": (False, 3),
    "satisfaction": (True, 3),
    "efficiency": (True, 3),
}


def direction(previous, current, higher_is_better, decimals):
    """(arrow, verdict) of a change as the page shows it: "up", "down" or
    "flat", and "better", "worse" or "same"; (None, None) when either value
    is missing. Values equal at the shown precision are "flat"."""
    if previous is None or current is None:
        return None, None
    change = round(current, decimals) - round(previous, decimals)
    if abs(change) < 10 ** -(decimals + 3):
        return "flat", "same"
    arrow = "up" if change > 0 else "down"
    return arrow, "better" if (change > 0) == higher_is_better else "worse"


# --- the target -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    achieved: bool
    slope_per_day: float | None   # change of the improvement per day (0.01 = one point of %)
    date: datetime | None
    words: str


def projection(days, improvements, end_day, latest, target, start):
    """When the daily improvements' least-squares line reaches `target`.

    days: each point's position in days since `start`; latest: the
    improvement at the period's end; end_day: the period's end in days."""
    if latest is not None and latest >= target:
        return Projection(True, None, None, "achieved")
    points = [(x, y) for x, y in zip(days, improvements) if y is not None and not math.isnan(y)]
    if len(points) < 2:
        return Projection(False, None, None, "too few days with a score to fit a trend")
    x = np.array([x for x, _ in points], dtype=float)
    y = np.array([y for _, y in points], dtype=float)
    slope = engine.trend(x, y)
    if slope <= 0:
        return Projection(False, slope, None, "not at this trend")
    intercept = float(y.mean() - slope * x.mean())
    reach = max(end_day, (target - intercept) / slope)
    if reach - end_day > PROJECTION_DAYS:
        return Projection(False, slope, None, f"not within {PROJECTION_DAYS} days at this trend")
    when = start + timedelta(days=reach)
    return Projection(False, slope, when, f"{when:%Y-%m-%d} at this trend")


# --- attribution ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    share_of_type: float | None   # of the task type's tasks in the window
    share_of_all: float | None    # of all the agent's tasks in the window
    points: float | None          # success-rate change attributed (0.01 = one point)
    low: float | None
    high: float | None


def attribute(effect, low, high, served, type_tasks, all_tasks):
    """A strategy's share of the agent's success-rate change: its A/B test's
    effect (treatment - control success rate, with its interval) times the
    share of all the agent's tasks it served. The share is taken as known,
    so the interval scales with it. None where nothing was measured."""
    share_of_type = served / type_tasks if type_tasks else None
    share_of_all = served / all_tasks if all_tasks else None
    if effect is None or share_of_all is None:
        return Attribution(share_of_type, share_of_all, None, None, None)
    return Attribution(share_of_type, share_of_all, effect * share_of_all,
                       None if low is None else low * share_of_all, None if high is None else high * share_of_all)


def remainder(total_change, attributed):
    """(sum attributed, what is left for other causes: the Q-learning,
    mitigations, imports, drift); None parts where the change is unknown."""
    known = [points for points in attributed if points is not None]
    total_attributed = sum(known)
    if total_change is None:
        return total_attributed, None
    return total_attributed, total_change - total_attributed


def mean(values):
    """The mean of the values that are known, or None."""
    known = [value for value in values if value is not None]
    return sum(known) / len(known) if known else None
