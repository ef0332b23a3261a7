"""The patterns and sharing page: shared patterns with who imported them,
the sharing bars, the fleet learning metrics, who imported from whom (a
heatmap) and the fleet's sharing and improvement by day; both charts over
the page's time range (?range=, whole days: 7, 30 or 90)."""

from dataclasses import dataclass

import numpy as np
from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDay
from django.utils import timezone

from learning import sharing
from learning.models import ImportStatus, PatternImport, SharedPattern, SharedPatternStatus, Snapshot

from .. import charts
from ..params import choice, page_number
from .common import as_datetime64, as_floats, options, range_picker

PATTERNS_PER_PAGE = 50
DAY_RANGES = ("7d", "30d", "90d")  # the charts count by day: shorter ranges would show one bar


def shared_pattern_page(status, page_number):
    """Shared patterns, newest first, each with `importers`: [(import
    status, count)] of the agents that took it in, statuses with none left out."""
    patterns = SharedPattern.objects.select_related("source", "strategy").annotate(**{
        f"imports_{value}": Count("imports", filter=Q(imports__status=value)) for value in ImportStatus.values})
    if status:
        patterns = patterns.filter(status=status)
    page = Paginator(patterns.order_by("-published_at", "pk"), PATTERNS_PER_PAGE).get_page(page_number)
    page.object_list = list(page.object_list)
    for pattern in page.object_list:
        pattern.importers = [(value, getattr(pattern, f"imports_{value}")) for value in ImportStatus.values
                             if getattr(pattern, f"imports_{value}")]
    return page


@dataclass
class ImportMatrix:
    """Imports of shared patterns: counts[i][j] from sources[i] into importers[j]."""

    sources: list
    importers: list
    counts: np.ndarray
    in_use: np.ndarray  # on probation or active


def import_matrix(since):
    rows = list(PatternImport.objects.filter(imported_at__gte=since).values_list("shared__source__agent_id", "agent__agent_id").annotate(
        n=Count("pk"), in_use=Count("pk", filter=Q(status__in=sharing.LIVE_IMPORTS))).order_by())
    sources = sorted({source for source, _, _, _ in rows})
    importers = sorted({importer for _, importer, _, _ in rows})
    counts = np.zeros((len(sources), len(importers)), dtype=int)
    in_use = np.zeros_like(counts)
    for source, importer, n, live in rows:
        counts[sources.index(source), importers.index(importer)] = n
        in_use[sources.index(source), importers.index(importer)] = live
    return ImportMatrix(sources, importers, counts, in_use)


@dataclass
class SharingHistory:
    """The fleet's learning by day (UTC): patterns shared and imports taken in,
    cumulative over the range, and the mean change against the baseline of
    the day's snapshots."""

    shared_at: np.ndarray
    shared: np.ndarray
    imports_at: np.ndarray
    imports: np.ndarray
    improvement_at: np.ndarray
    improvement: np.ndarray


class UTCDay(TruncDay):
    """TruncDay, written on SQLite as its built-in date() when the day is UTC's
    (the stored times are UTC): Django's own form calls a Python function for
    every row, five times slower over a long history of snapshots."""

    def as_sqlite(self, compiler, connection, **extra_context):
        if self.get_tzname() != "UTC" or connection.timezone_name != "UTC":
            return self.as_sql(compiler, connection, **extra_context)
        sql, params = compiler.compile(self.lhs)
        return f"datetime(date({sql}))", params


def _per_day(queryset, field, value):
    rows = list(queryset.annotate(day=UTCDay(field)).values("day").annotate(value=value).order_by("day"))
    return as_datetime64(row["day"] for row in rows), as_floats(row["value"] for row in rows)


def sharing_history(since):
    """None when nothing was shared, imported or measured against a baseline since `since`."""
    shared_at, shared = _per_day(SharedPattern.objects.filter(published_at__gte=since), "published_at", Count("pk"))
    imports_at, imports = _per_day(PatternImport.objects.filter(imported_at__gte=since), "imported_at", Count("pk"))
    improvement_at, improvement = _per_day(
        Snapshot.objects.filter(improvement__isnull=False, created_at__gte=since), "created_at", Avg("improvement"))
    if not (len(shared_at) or len(imports_at) or len(improvement_at)):
        return None
    last_day = max(days[-1] for days in (shared_at, imports_at, improvement_at) if len(days))
    return SharingHistory(*_held_to(last_day, shared_at, np.cumsum(shared)),
                          *_held_to(last_day, imports_at, np.cumsum(imports)), improvement_at, improvement)


def _held_to(last_day, days, totals):
    """A running total drawn on to the chart's last day: it still holds there,
    and a line that stopped early would read as missing data."""
    if len(days) and days[-1] < last_day:
        return np.append(days, last_day), np.append(totals, totals[-1])
    return days, totals


def patterns_context(query):
    status = choice(query, "status", SharedPatternStatus.values)
    reach, picker = range_picker(query, "30d", DAY_RANGES)
    since = timezone.now() - reach
    matrix, history = import_matrix(since), sharing_history(since)
    return {
        "status": status, "statuses": options(SharedPatternStatus.values),
        **picker,
        "bars": {"confidence": sharing.SHARE_CONFIDENCE, "uses": sharing.SHARE_MIN_USES,
                 "lower_bound": sharing.SHARE_LOWER_BOUND, "confirm_uses": sharing.CONFIRM_USES},
        "page": shared_pattern_page(status, page_number(query)), "metrics": sharing.fleet_metrics(),
        "import_figure": charts.import_figure(matrix) if matrix.sources else None,
        "history_figure": charts.sharing_history_figure(history) if history else None,
    }
