"""The improvement report rendered three ways, from the one
learning.report.build result: the page's context (tables and figures), a
CSV file and a JSON file; an agent's decision log streamed as CSV; and the
period the query asks for, which all of them cover."""

import csv
import itertools
import json

import numpy as np
from django.http import HttpResponse, StreamingHttpResponse

from learning.core import report_math
from learning.report import DECISION_COLUMNS, decision_log

from .. import charts
from ..params import BadParameter
from .common import LoopEvent, Marker, ScoreSeries, as_datetime64, as_floats

PERIOD_DAYS = (7, 14, 30, 60, 90)


def period_of(query, now):
    """The period the query asks for; BadParameter says what is wrong with it."""
    try:
        return report_math.parse_period(query, now)
    except report_math.PeriodError as error:
        raise BadParameter(str(error)) from None


def _number(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def _percent(value):
    return "—" if value is None else charts.change_words(value)


def _count(value):
    return "—" if value is None else f"{value:,}"


def _time(point):
    if point.avg_ms is None:
        return "—"
    return f"{point.avg_ms:,.0f} ms ({point.time_score:.3f})"


# The checkpoint table's rows: (label, the component whose direction it
# shows, how a checkpoint's cell reads).
CHECKPOINT_ROWS = (
    ("Composite score", "score", lambda point: _number(point.score)),
    ("Success rate", "success_rate", lambda point: _number(point.success_rate)),
    ("Execution time (normalised)", "avg_ms", _time),
    ("Error rate", "error_rate", lambda point: _number(point.error_rate)),
    ("User satisfaction", "satisfaction", lambda point: _number(point.satisfaction)),
    ("Resource efficiency", "efficiency", lambda point: _number(point.efficiency)),
    ("Change vs baseline", None, lambda point: _percent(point.change)),
    ("Tasks that day", None, lambda point: _count(point.tasks)),
    ("Patterns learned", None, lambda point: _count(point.patterns)),
    ("Q-table size (state-action pairs)", None, lambda point: _count(point.q_entries)),
    ("Exploration rate", None, lambda point: _number(point.exploration_rate, 4)),
    ("Learned state read from", None, lambda point: point.state_from or "not stored"),
)
ARROWS = {"up": "↑", "down": "↓", "flat": "→"}


def checkpoint_table(checkpoints):
    """[(label, [(text, direction words, tone)])]: one row per figure, one cell per checkpoint."""
    rows = []
    for label, component, text in CHECKPOINT_ROWS:
        cells = []
        for point in checkpoints:
            arrow, _, verdict = point.directions.get(component, "").partition(", ")
            words = f"{ARROWS[arrow]} {verdict}" if arrow else ""
            cells.append((text(point), words, {"better": "good", "worse": "bad"}.get(verdict, "")))
        rows.append((label, cells))
    return rows


def _series(points, period):
    """The daily points as the score and components charts take them, each
    drawn at the end of its day (where a checkpoint of that day sits)."""
    at = as_datetime64(period.window(point.day)[1] for point in points)
    field = {name: as_floats(getattr(point, name) for point in points) for name in (
        "score", "success_rate", "time_score", "error_rate", "satisfaction", "efficiency")}
    return ScoreSeries(first_task=0, last_task=0, at=at, score=field["score"],  # days, not task numbers
                       success_rate=field["success_rate"], time_score=field["time_score"],
                       error_free=1.0 - field["error_rate"], satisfaction=field["satisfaction"],
                       efficiency=field["efficiency"])


def _markers(agent_report):
    """Rollbacks on the score chart, and strategies applied and reverted in the period."""
    markers = [Marker(row.at, f"{row.label} to {row.to_version}") for row in agent_report.rollbacks]
    events = [LoopEvent(row.applied_at, "applied", f"{row.strategy} applied for {row.task_type} ({row.label})")
              for row in agent_report.strategies]
    events += [LoopEvent(row.reverted_at, "reverted", f"{row.strategy} reverted for {row.task_type} ({row.label})")
               for row in agent_report.strategies if row.reverted_at]
    return markers, events


def _within(period, items):
    return [item for item in items if period.start <= item.at <= period.end]


def _has_values(*arrays):
    return any(len(values) and not np.isnan(values).all() for values in arrays)


def _figures(data, period):
    if data.fleet is not None:
        summary, markers, events = data.fleet, [], []
    else:
        summary = data.agents[0]
        markers, events = _markers(summary)
    series = _series(summary.daily, period)
    figures = {
        "score": charts.score_figure(series, baseline=summary.baseline, target=data.target,
                                     markers=_within(period, markers), events=_within(period, events)),
        # An empty chart says nothing; the page says why there is none.
        "components": charts.components_figure(series) if _has_values(
            series.success_rate, series.time_score, series.error_free, series.satisfaction, series.efficiency) else None,
    }
    if data.fleet is not None:
        changed = [item for item in data.agents if item.improvement is not None]
        if changed:
            figures["change"] = charts.fleet_change_figure([item.agent for item in changed],
                                                           [item.improvement for item in changed], data.target)
    else:
        known = [point for point in summary.checkpoints if point.state_from]
        moments = as_datetime64(point.at for point in known)
        figures["learning"] = charts.exploration_figure(
            moments, as_floats(point.exploration_rate for point in known), moments,
            as_floats(point.q_entries for point in known))
    return figures


def report_context(data, period, query, agent=None):
    """The report page's context: the report, its tables and figures, the
    period form and the download links."""
    summary = data.fleet if data.fleet is not None else data.agents[0]
    return {
        "report": data, "agent": agent, "summary": summary, "checkpoints": summary.checkpoints,
        "checkpoint_rows": checkpoint_table(summary.checkpoints), "figures": _figures(data, period),
        "strategies": [(item.agent, row) for item in data.agents for row in item.strategies],
        "abtests": [(item.agent, row) for item in data.agents for row in item.abtests],
        "mitigations": [(item.agent, row) for item in data.agents for row in item.mitigations],
        "rollbacks": [(item.agent, row) for item in data.agents for row in item.rollbacks],
        "period_days": PERIOD_DAYS, "days": query.get("days", ""), "start": query.get("start", ""),
        "end": query.get("end", ""), "query": query.urlencode(), "default_days": report_math.DEFAULT_DAYS,
        "incidents_prevented": {**data.incidents_prevented, "days": None},
    }


# --- downloads ------------------------------------------------------------------------------

CSV_COLUMNS = ("section", "agent", "item", "field", "value")


def _fields(value, prefix=""):
    """(dotted field, value) pairs of a nested dict's scalars."""
    for name, item in value.items():
        if isinstance(item, dict):
            yield from _fields(item, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", item


def csv_rows(data):
    """The report's JSON, one value a row: (section, agent, item, field, value).
    Lists of rows become one item each (its label); `agents` one block each."""
    plain = data.to_dict()
    yield ("period", "", "", "start", plain["start"])
    yield ("period", "", "", "end", plain["end"])
    yield ("period", "", "", "days", plain["days"])
    yield ("period", "", "", "target", plain["target"])
    blocks = ([("fleet", plain["fleet"])] if plain["fleet"] else []) + [(item["agent"], item)
                                                                        for item in plain["agents"]]
    for who, block in blocks:
        for name, value in block.items():
            if isinstance(value, list):
                for row in value:
                    for field, item in _fields({key: item for key, item in row.items() if key != "label"}):
                        yield (name, who, row["label"], field, item)
            elif isinstance(value, dict):
                for field, item in _fields(value):
                    yield (name, who, "", field, item)
            else:
                yield ("summary", who, "", name, value)
    found = plain["incidents_prevented"]
    for row in found["incidents"]:
        for name, value in row.items():
            yield ("incidents_prevented", row["agent"], f"{row['kind']} at {row['at']}", name, value)
    for total in found["per_agent"]:
        for name in ("incidents", "tasks", "harm"):
            yield ("incidents_prevented", total["agent"], "total", name, total[name])
    for name in ("harm", "tasks", "cap"):
        yield ("incidents_prevented", "", "", name, found[name])


# A spreadsheet evaluates a cell that starts with one of these (after blanks;
# the full-width forms too, in some locales) as a formula, and one that starts
# with a tab or a carriage return after trimming it: OWASP's CSV injection list.
FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
TRIMMED_STARTS = frozenset("\t\r\n")


def spreadsheet_cell(value):
    """A CSV cell a spreadsheet shows as written: text that would start a
    formula gets a leading apostrophe (which the spreadsheet hides); numbers
    stay numbers, None is blank."""
    if value is None:
        return ""
    if isinstance(value, str) and value and (value[0] in TRIMMED_STARTS or value.lstrip()[:1] in FORMULA_STARTS):
        return "'" + value
    return value


def _cells(row):
    return [spreadsheet_cell(value) for value in row]


def _attachment(response, filename):
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _filename(data, extension):
    return f"qefleet-report-{data.scope}-{data.start:%Y-%m-%d}-{data.end:%Y-%m-%d}.{extension}"


def download(data, fmt):
    """The report as a JSON or CSV attachment."""
    if fmt == "json":
        response = HttpResponse(json.dumps(data.to_dict(), indent=1), content_type="application/json")
    else:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        writer = csv.writer(response)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(_cells(row) for row in csv_rows(data))
    return _attachment(response, _filename(data, fmt))


class _Line:
    """A file-like object csv.writer writes one line into, which it returns."""

    def write(self, text):
        return text


def decisions_csv(agent, period):
    """The agent's decisions and executions in the period, streamed as CSV."""
    writer = csv.writer(_Line())
    rows = itertools.chain([DECISION_COLUMNS], decision_log(agent, period))
    lines = (writer.writerow(_cells(row)) for row in rows)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    return _attachment(response, f"qefleet-decisions-{agent.agent_id}-{period.start:%Y-%m-%d}-"
                                 f"{period.end:%Y-%m-%d}.csv")

