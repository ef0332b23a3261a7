"""Plotly figures built on the server from numpy arrays.

Each builder returns the figure's JSON text from plotly's own encoder
(`<`, `>` and `/` escaped, so the text is safe inside the page's
`<script type="application/json">`), and static/dashboard/dashboard.js draws
it. Figures are plain dicts serialised without validation: a validated
`go.Figure` cost ~9 ms each, too much for the fleet page's seventeen
sparklines; unvalidated, numpy arrays are written as JSON lists, which is
small enough with series capped at pages.common.MAX_POINTS. Lines differ by dash
and are named in the legend or on the line, so no state is told by colour
alone.
"""

import math

import numpy as np
import plotly.io as pio
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from learning.core.numbers import shown, signed_number

INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
ACCENT = "#2f6fb3"
WARN = "#b44d12"
GOOD = "#2d7a46"
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', sans-serif", "size": 12, "color": INK}


def _json(traces, layout):
    return pio.to_json({"data": traces, "layout": layout}, validate=False)


def _layout(**overrides):
    # No plotly.py template (it would add ~6 KB to every figure): plotly.js
    # defaults and these few settings give the one light look.
    layout = {
        "font": FONT, "paper_bgcolor": "white", "plot_bgcolor": "white",
        "margin": {"l": 56, "r": 24, "t": 36, "b": 44}, "height": 320, "hovermode": "x unified",
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "xaxis": {"gridcolor": GRID, "linecolor": GRID, "title": {"text": "time (UTC)"}},
        "yaxis": {"gridcolor": GRID, "linecolor": GRID, "zeroline": False},
    }
    layout.update(overrides)
    return layout


def _level(y, text, dash, color, side="bottom"):
    """A horizontal reference line across the plot, labelled at its right
    end, above it (side "bottom") or below it ("top")."""
    shape = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
             "line": {"dash": dash, "width": 1.5, "color": color}}
    label = {"xref": "paper", "x": 1, "xanchor": "right", "y": y, "yanchor": side, "text": text,
             "showarrow": False, "font": {"size": 11, "color": color}}
    return shape, label


# An improvement-loop event kind -> its legend name, symbol, colour and row in
# the band at the foot of the score chart (0-1 of the plot's height).
LOOP_EVENT_LOOKS = {
    "started": ("A/B test started", "triangle-right", ACCENT, 0.04),
    "ended": ("A/B test ended", "square", MUTED, 0.10),
    "applied": ("strategy applied", "star", GOOD, 0.16),
    "reverted": ("strategy reverted", "x", WARN, 0.22),
}


def _moment(at):
    return at.replace(tzinfo=None).isoformat()


HOUR_MS = 3_600_000


# Ticks in ISO dates and 24-hour times at every spacing plotly picks (its own
# write "Dec 1" and "2026" on a line of their own).
ISO_TICKS = [{"dtickrange": [None, 59_999], "value": "%H:%M:%S\n%Y-%m-%d"},
             {"dtickrange": [60_000, 86_399_999], "value": "%H:%M\n%Y-%m-%d"},
             {"dtickrange": [86_400_000, None], "value": "%Y-%m-%d"}]


def _time_axis(*moments, title="time (UTC)"):
    """A time axis readable at any span, in ISO dates and 24-hour times:
    under a day of points (one point included) it spans at least an hour
    either side and writes times and the date, never plotly's sub-second
    ticks; longer spans keep plotly's spacing of the ticks."""
    axis = {"gridcolor": GRID, "linecolor": GRID, "title": {"text": title}, "type": "date",
            "hoverformat": "%Y-%m-%d %H:%M UTC", "tickformatstops": ISO_TICKS}
    known = np.concatenate([np.asarray(group, dtype="datetime64[ms]") for group in moments]) if moments else []
    known = known[~np.isnat(known)] if len(known) else known
    if not len(known):
        return axis
    first, last = known.min(), known.max()
    if last - first < np.timedelta64(1, "D"):
        pad = np.timedelta64(HOUR_MS, "ms")
        axis.update(range=[str(first - pad), str(last + pad)], tickformat="%H:%M\n%Y-%m-%d")
        del axis["tickformatstops"]
    return axis


def _loop_traces(events):
    """One trace of symbols per kind of improvement-loop event, on an axis of
    their own (y2, 0-1), each event described on hover."""
    traces = []
    for kind, (name, symbol, color, row) in LOOP_EVENT_LOOKS.items():
        mine = [event for event in events if event.kind == kind]
        if mine:
            traces.append({"type": "scatter", "x": [_moment(event.at) for event in mine], "y": [row] * len(mine),
                           "yaxis": "y2", "mode": "markers", "name": name, "text": [event.text for event in mine],
                           "hovertemplate": "%{text}<extra></extra>", "marker": {
                               "symbol": symbol, "size": 10, "color": color, "line": {"width": 1, "color": INK}}})
    return traces


def score_figure(series, baseline=None, reference=None, threshold_pct=None, markers=(), events=(), target=None):
    """The composite score over time with the improvement baseline, the
    safeguard reference and its -threshold line, vertical markers
    (rollbacks, undos, re-enables) labelled at the top, and the improvement
    loop's events (A/B tests started and ended, strategies applied and
    reverted) as symbols named in the legend along the foot; `target`
    (the improvement target, 0.2 = +20 %) adds the baseline's target line."""
    trace = {"type": "scatter", "x": series.at, "y": series.score, "mode": "lines+markers", "name": "composite score",
             "line": {"color": ACCENT, "width": 2}, "marker": {"size": 4}}
    loop = _loop_traces(events)
    shapes, annotations = [], []
    levels = []
    if baseline is not None:
        levels.append((baseline, f"baseline {baseline:.3f}", "dot", MUTED))
        if target is not None:
            line = baseline * (1 + target)
            levels.append((line, f"target +{target * 100:g} % {line:.3f}", "dash", GOOD))
    if reference is not None:
        levels.append((reference, f"safeguard reference {reference:.3f}", "solid", GOOD))
        if threshold_pct is not None:
            line = reference * (1 - threshold_pct / 100)
            levels.append((line, f"-{threshold_pct:g} % line {line:.3f}", "dash", WARN))
    # Reference lines are named in the legend, never at the plot's edge, where
    # close levels would write over each other.
    ends = [series.at[0], series.at[-1]] if len(series.at) else []
    level_traces = [{"type": "scatter", "x": ends, "y": [y, y], "mode": "lines", "name": text, "hoverinfo": "skip",
                     "line": {"dash": dash, "width": 1.5, "color": color}} for y, text, dash, color in levels]
    for index, marker in enumerate(markers):
        moment = _moment(marker.at)
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": moment, "x1": moment, "y0": 0, "y1": 1,
                       "line": {"dash": "dashdot", "width": 1, "color": INK}})
        # Alternate the heights so neighbouring labels do not overlap.
        annotations.append({"xref": "x", "yref": "paper", "x": moment, "y": 1 - 0.09 * (index % 3),
                            "text": marker.label, "showarrow": False, "xanchor": "left", "bgcolor": "white",
                            "font": {"size": 11}})
    return _json([trace, *level_traces, *loop], _layout(
        shapes=shapes, annotations=annotations, showlegend=True, xaxis=_time_axis(series.at),
        yaxis={"title": {"text": "score (0-1)"}, "gridcolor": GRID, "zeroline": False},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True}))


# Lines of agents compared on one chart: told apart by dash and named in the legend.
COMPARE_DASHES = ("solid", "dash", "dot", "dashdot")


def compare_figure(series):
    """The composite score of two to four agents over one window, one line
    each (named in the legend, each with its own dash)."""
    traces = [{"type": "scatter", "x": item.at, "y": item.score, "mode": "lines", "name": name,
               "line": {"dash": COMPARE_DASHES[index % len(COMPARE_DASHES)], "width": 2}}
              for index, (name, item) in enumerate(series)]
    return _json(traces, _layout(xaxis=_time_axis(*(item.at for _, item in series)),
                                 yaxis={"title": {"text": "score (0-1)"}, "gridcolor": GRID, "zeroline": False}))


COMPONENTS = (
    ("success_rate", "success rate", "solid"),
    ("time_score", "time (1 - ms/30 000)", "dot"),
    ("error_free", "1 - error rate", "dash"),
    ("satisfaction", "satisfaction", "longdash"),
    ("efficiency", "efficiency", "dashdot"),
)


def components_figure(series):
    """The five components of the composite score (absent ones stay empty)."""
    traces = [{"type": "scatter", "x": series.at, "y": getattr(series, name), "mode": "lines", "name": label,
               "line": {"dash": dash, "width": 1.8}} for name, label, dash in COMPONENTS]
    return _json(traces, _layout(xaxis=_time_axis(series.at),
                                 yaxis={"title": {"text": "0-1"}, "range": [0, 1.05], "gridcolor": GRID}))


TWO_AXES_MARGIN = {"l": 56, "r": 64, "t": 36, "b": 44}


def _right_axis(title, **settings):
    """A second y axis on the right, over the first, without its own grid."""
    return {"title": {"text": title}, "overlaying": "y", "side": "right", "rangemode": "tozero", "showgrid": False,
            **settings}


def exploration_figure(epsilon_at, epsilon, versions_at, q_entries):
    """Exploration rate (left axis) and Q-table size at each captured
    version (right axis, a step line)."""
    traces = [
        {"type": "scatter", "x": epsilon_at, "y": epsilon, "mode": "lines", "name": "exploration rate (epsilon)",
         "line": {"color": ACCENT, "width": 2}},
        {"type": "scatter", "x": versions_at, "y": q_entries, "mode": "lines+markers",
         "name": "Q entries (at each version)", "line": {"shape": "hv", "dash": "dash", "color": WARN}, "yaxis": "y2"},
    ]
    return _json(traces, _layout(
        xaxis=_time_axis(epsilon_at, versions_at),
        yaxis={"title": {"text": "epsilon"}, "rangemode": "tozero", "gridcolor": GRID},
        yaxis2=_right_axis("Q entries", tickformat=",d"), margin=TWO_AXES_MARGIN,
    ))


SPARK_WIDTH, SPARK_HEIGHT = 120, 30
BAR_WIDTH, BAR_HEIGHT = 120, 18
BAND_COLOURS = {"below-zero": "#a3211a", "below-target": "#b7791f", "on-target": GOOD}
CHANGE_DIGITS = 1  # a change vs baseline is written in percent with one decimal, on the page and in its charts


def change_band(change, target):
    """Where a change vs baseline stands: below zero, below the target, or at/above it,
    judged on the percent as written, so a mark never contradicts its number
    (-0.0004 reads "+0.0 %" and is not below zero)."""
    if change is None:
        return None
    percent = shown(change * 100, CHANGE_DIGITS)
    return ("below-zero" if percent < 0 else "below-target" if percent < shown(target * 100, CHANGE_DIGITS)
            else "on-target")


def change_words(change):
    """A change vs baseline as written: 0.123 -> "+12.3 %"."""
    return f"{signed_number(change * 100, CHANGE_DIGITS)} %"


def _svg(width, height, label, body):
    """An inline SVG; `body` is markup built here from numbers and constants only."""
    return format_html('<svg class="inline-chart" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
                       'aria-label="{}">{}</svg>', width, height, width, height, label, mark_safe(body))


def sparkline_svg(score, axis, baseline=None, target=None):
    """A score line drawn inline (no script, nothing to load) on the fleet's
    shared axis (low, high), with the agent's baseline (dotted) and target
    (dashed) marked, so lines of different agents compare; None under two points."""
    points = [(index, value) for index, value in enumerate(score) if not math.isnan(value)]
    if len(points) < 2:
        return None
    low, high = axis
    last = len(score) - 1

    def y(value):
        return SPARK_HEIGHT - 2 - (value - low) / (high - low) * (SPARK_HEIGHT - 4)

    path = " ".join(f"{index / last * (SPARK_WIDTH - 2) + 1:.1f},{y(value):.1f}" for index, value in points)
    levels = "".join(f'<line x1="0" x2="{SPARK_WIDTH}" y1="{y(level):.1f}" y2="{y(level):.1f}" stroke="{colour}" '
                     f'stroke-dasharray="{dash}"/>'
                     for level, colour, dash in ((baseline, MUTED, "1 2"), (target, GOOD, "4 2"))
                     if level is not None and low <= level <= high)
    body = f'{levels}<polyline points="{path}" fill="none" stroke="{ACCENT}" stroke-width="1.5"/>'
    words = f"score from {points[0][1]:.3f} to {points[-1][1]:.3f}"
    if baseline is not None:
        words += f"; baseline {baseline:.3f} dotted, target {target:.3f} dashed"
    return _svg(SPARK_WIDTH, SPARK_HEIGHT, words, body)


def change_bar(change, axis, target):
    """A change vs baseline as a bar from zero on the fleet's shared axis
    (low, high), zero and the target marked, coloured by where it stands
    (the page writes the same in words beside it)."""
    low, high = axis

    def x(value):
        return (value - low) / (high - low) * (BAR_WIDTH - 2) + 1

    start, end = sorted((x(0), x(change)))
    colour = BAND_COLOURS[change_band(change, target)]
    body = (f'<rect x="{start:.1f}" y="4" width="{max(end - start, 1):.1f}" height="{BAR_HEIGHT - 8}" fill="{colour}"/>'
            f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="0" y2="{BAR_HEIGHT}" stroke="{INK}" stroke-width="1.5"/>'
            f'<line x1="{x(target):.1f}" x2="{x(target):.1f}" y1="0" y2="{BAR_HEIGHT}" stroke="{GOOD}" '
            'stroke-dasharray="3 2" stroke-width="1.5"/>')
    return _svg(BAR_WIDTH, BAR_HEIGHT, f"{change_words(change)} against a target of +{target * 100:g} %", body)


def fleet_change_figure(agent_ids, changes, target):
    """Each agent's change of score against its improvement baseline, with
    the improvement target; bars coloured below zero / below target / on
    target, and each carries its value and that verdict as text."""
    values = np.asarray(changes, dtype=float) * 100
    bands = [change_band(change, target) for change in changes]
    marks = {"below-zero": "▼", "below-target": "▽", "on-target": "▲"}
    written = [change_words(change) for change in changes]
    # The hover shows the words too: plotly's "+.1f" writes -0.0004 as "-0.0".
    trace = {"type": "bar", "x": values, "y": list(agent_ids), "orientation": "h",
             "marker": {"color": [BAND_COLOURS[band] for band in bands]},
             "text": [f"{marks[band]} {words}" for words, band in zip(written, bands)],
             "customdata": written, "textposition": "outside", "cliponaxis": False, "name": "change vs baseline",
             "hovertemplate": "%{y}: %{customdata}<extra></extra>"}
    # Below the bars, so the values written beside them stay readable where it crosses them.
    shape = {"type": "line", "xref": "x", "yref": "paper", "x0": target * 100, "x1": target * 100, "y0": 0, "y1": 1,
             "line": {"dash": "dash", "color": GOOD, "width": 1.5}, "layer": "below"}
    label = {"xref": "x", "yref": "paper", "x": target * 100, "y": 1, "yanchor": "bottom",
             "text": f"target +{target * 100:g} %", "showarrow": False, "font": {"color": GOOD, "size": 11}}
    # Room beyond the longest bar on each side for its text: a negative bar's
    # would otherwise be written over the agents' names.
    low, high = min(0.0, float(values.min())), max(target * 100, float(values.max()))
    room = (high - low) * 0.3  # a phone's narrow plot writes the values as large as a desktop's
    return _json([trace], _layout(
        height=max(160, 26 * len(values) + 70), hovermode="closest", shapes=[shape], annotations=[label],
        # The symbols' key is the page's text: a title long enough to hold it is cut at phone width.
        xaxis={"title": {"text": "change vs baseline (%)"},
               "gridcolor": GRID, "zeroline": True, "zerolinecolor": INK, "zerolinewidth": 1.5,
               "range": [low - room if low < 0 else low, high + room]},
        yaxis={"autorange": "reversed", "automargin": True}, margin={"l": 8, "r": 24, "t": 28, "b": 44},
    ))


def interval_figure(looks, horizon):
    """The interval for the difference in success rate (treatment - control,
    points) at each look, as a band around the estimate, against tasks per
    arm, with zero (no difference) and the horizon, where the always-valid
    interval gives way to the fixed one."""

    def hover(points, name):
        # The words, not plotly's "+.1f", which writes -0.0004 as "-0.0".
        return {"customdata": [None if math.isnan(value) else signed_number(value, 1) for value in points],
                "hovertemplate": f"%{{customdata}} points<extra>{name}</extra>"}

    traces = [
        {"type": "scatter", "x": looks.per_arm, "y": looks.high, "mode": "lines", "name": "upper bound",
         "showlegend": False, "line": {"color": ACCENT, "width": 1}, **hover(looks.high, "upper")},
        {"type": "scatter", "x": looks.per_arm, "y": looks.low, "mode": "lines", "name": "95 % interval",
         "fill": "tonexty", "fillcolor": "rgba(47, 111, 179, 0.18)", "line": {"color": ACCENT, "width": 1},
         **hover(looks.low, "lower")},
        {"type": "scatter", "x": looks.per_arm, "y": looks.estimate, "mode": "lines+markers", "name": "estimate",
         "line": {"color": INK, "width": 2, "dash": "dash"}, "marker": {"size": 5},
         **hover(looks.estimate, "estimate")},
    ]
    zero, zero_label = _level(0, "0: no difference", "solid", MUTED)
    edge = {"type": "line", "xref": "x", "yref": "paper", "x0": horizon, "x1": horizon, "y0": 0, "y1": 1,
            "line": {"dash": "dashdot", "width": 1.5, "color": WARN}}
    # Inside the plot, at the top of its line: above it, a phone's narrow chart ran it into the legend.
    edge_label = {"xref": "x", "yref": "paper", "x": horizon, "y": 1, "yanchor": "top", "xanchor": "right",
                  "xshift": -4, "text": f"horizon: {horizon} per arm", "showarrow": False,
                  "font": {"size": 11, "color": WARN}}
    widest = max(horizon, float(np.nanmax(looks.per_arm)) if len(looks.per_arm) else 0)
    return _json(traces, _layout(
        shapes=[zero, edge], annotations=[zero_label, edge_label],
        xaxis={"title": {"text": "tasks per arm (the smaller arm)"}, "gridcolor": GRID, "linecolor": GRID,
               "range": [0, widest * 1.05]},
        yaxis={"title": {"text": "treatment − control (points)"}, "gridcolor": GRID,
               "zeroline": False},
    ))


def import_figure(matrix):
    """Who imported from whom: a heatmap of import counts, sources down,
    importers across, each count written in its cell."""
    counts = matrix.counts
    trace = {"type": "heatmap", "x": matrix.importers, "y": matrix.sources,
             "z": np.where(counts > 0, counts, np.nan), "customdata": matrix.in_use,
             "text": [[str(count) if count else "" for count in row] for row in counts.tolist()],
             "texttemplate": "%{text}", "hoverongaps": False, "xgap": 2, "ygap": 2,
             "hovertemplate": "%{y} → %{x}: %{z} imports, %{customdata} in use<extra></extra>",
             # The counts are written in the cells; the shade only repeats them.
             "colorscale": [[0, "#dce8f5"], [1, ACCENT]], "showscale": False}
    return _json([trace], _layout(
        height=max(260, 26 * len(matrix.sources) + 150), hovermode="closest",
        xaxis={"title": {"text": "importer"}, "tickangle": -35, "automargin": True},
        yaxis={"title": {"text": "source"}, "autorange": "reversed", "automargin": True},
    ))


def sharing_history_figure(history):
    """Patterns shared and imports taken in (cumulative, left axis, step
    lines) and, once there is any, the fleet's mean change against its
    baselines (right axis), by day; a day's padding each side keeps a short
    history readable."""
    traces = [
        {"type": "scatter", "x": history.shared_at, "y": history.shared, "mode": "lines+markers",
         "name": "patterns shared (cumulative)", "line": {"shape": "hv", "color": ACCENT, "width": 2}},
        {"type": "scatter", "x": history.imports_at, "y": history.imports, "mode": "lines+markers",
         "name": "imports (cumulative)", "line": {"shape": "hv", "color": WARN, "dash": "dash", "width": 2}},
    ]
    axes = {}
    if len(history.improvement_at):
        traces.append({"type": "scatter", "x": history.improvement_at, "y": history.improvement * 100,
                       "mode": "lines+markers", "name": "mean change vs baseline (%)", "yaxis": "y2",
                       "line": {"color": GOOD, "dash": "dot", "width": 2}})
        axes = {"yaxis2": _right_axis("mean change vs baseline (%)", rangemode="normal", zeroline=True,
                                      zerolinecolor=GRID, tickformat=".0f"), "margin": TWO_AXES_MARGIN}
    moments = np.concatenate([history.shared_at, history.imports_at, history.improvement_at]).astype("datetime64[D]")
    first, last = moments.min() - 1, moments.max() + 1
    tick_days = max(1, math.ceil((last - first).astype(int) / 10))  # whole days, at most ten ticks
    return _json(traces, _layout(
        xaxis={"title": {"text": "day (UTC)"}, "gridcolor": GRID, "linecolor": GRID, "type": "date",
               "range": [str(first), str(last)], "tick0": str(first), "dtick": tick_days * 86_400_000,
               "tickformat": "%Y-%m-%d", "hoverformat": "%Y-%m-%d",
               # At phone width plotly slants the dates: room for them above the axis title.
               "automargin": True},
        yaxis={"title": {"text": "count"}, "rangemode": "tozero", "gridcolor": GRID, "tickformat": ",d"},
        **axes,
    ))


# A learning request -> its name and colour; a percentile -> its dash.
REQUEST_LOOKS = {"recommendation": ("recommendation", GOOD), "report": ("execution report", ACCENT)}
PERCENTILE_DASHES = (("p50", "solid"), ("p95", "dash"), ("p99", "dot"))


def overhead_figure(series, budget_ms, start, end):
    """p50, p95 and p99 of each learning request per minute or hour, on a log
    scale (a few ms and the budget both stay readable), with the budget as a
    line of its own from `start` to `end`. Percentiles beyond the histogram's
    range (10 s) are left as gaps."""
    traces = []
    for request, points in series.items():
        words, color = REQUEST_LOOKS[request]
        for name, dash in PERCENTILE_DASHES:
            values = getattr(points, name)
            traces.append({
                "type": "scatter", "x": points.at, "y": np.where(np.isinf(values), np.nan, values),
                "mode": "lines+markers", "name": f"{words} {name}", "marker": {"size": 4},
                "line": {"color": color, "dash": dash, "width": 2},
                "hovertemplate": f"%{{y:.2f}} ms<extra>{words} {name}</extra>"})
    traces.append({"type": "scatter", "x": [_moment(start), _moment(end)], "y": [budget_ms, budget_ms],
                   "mode": "lines", "name": f"budget {budget_ms:g} ms", "hoverinfo": "skip",
                   "line": {"color": WARN, "dash": "longdash", "width": 1.5}})
    return _json(traces, _layout(xaxis={**_time_axis(), "range": [_moment(start), _moment(end)]},
                                 # A tick per decade: plotly's own writes "2" and "5" between them.
                                 yaxis={"title": {"text": "ms (log scale)"}, "type": "log", "gridcolor": GRID,
                                        "dtick": 1},
                                 height=360))
