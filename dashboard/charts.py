"""Plotly figures built on the server from numpy arrays.

Each builder returns the figure's JSON text from plotly's own encoder
(`<`, `>` and `/` escaped, so the text is safe inside the page's
`<script type="application/json">`), and static/dashboard/dashboard.js draws
it. Figures are plain dicts serialised without validation: a validated
`go.Figure` cost ~9 ms each, too much for the fleet page's seventeen
sparklines; unvalidated, numpy arrays are written as JSON lists, which is
small enough with series capped at queries.MAX_POINTS. Lines differ by dash
and are named in the legend or on the line, so no state is told by colour
alone.
"""

import numpy as np
import plotly.io as pio

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


def score_figure(series, baseline=None, reference=None, threshold_pct=None, markers=()):
    """The composite score over time with the improvement baseline, the
    safeguard reference and its -threshold line, and vertical markers
    (rollbacks, undos, re-enables) labelled at the top."""
    trace = {"type": "scatter", "x": series.at, "y": series.score, "mode": "lines+markers", "name": "composite score",
             "line": {"color": ACCENT, "width": 2}, "marker": {"size": 4}}
    shapes, annotations = [], []
    levels = []
    if baseline is not None:
        levels.append((baseline, f"baseline {baseline:.3f}", "dot", MUTED))
    if reference is not None:
        levels.append((reference, f"safeguard reference {reference:.3f}", "solid", GOOD))
        if threshold_pct is not None:
            line = reference * (1 - threshold_pct / 100)
            levels.append((line, f"-{threshold_pct:g} % line {line:.3f}", "dash", WARN, "top"))
    for level in levels:
        shape, label = _level(*level)
        shapes.append(shape)
        annotations.append(label)
    for index, marker in enumerate(markers):
        moment = marker.at.replace(tzinfo=None).isoformat()
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": moment, "x1": moment, "y0": 0, "y1": 1,
                       "line": {"dash": "dashdot", "width": 1, "color": INK}})
        # Alternate the heights so neighbouring labels do not overlap.
        annotations.append({"xref": "x", "yref": "paper", "x": moment, "y": 1 - 0.09 * (index % 3),
                            "text": marker.label, "showarrow": False, "xanchor": "left", "bgcolor": "white",
                            "font": {"size": 11}})
    return _json([trace], _layout(shapes=shapes, annotations=annotations, showlegend=False, yaxis={
        "title": {"text": "score (0-1)"}, "gridcolor": GRID, "zeroline": False}))


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
    return _json(traces, _layout(yaxis={"title": {"text": "0-1"}, "range": [0, 1.05], "gridcolor": GRID}))


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
        yaxis={"title": {"text": "epsilon"}, "rangemode": "tozero", "gridcolor": GRID},
        yaxis2={"title": {"text": "Q entries"}, "overlaying": "y", "side": "right", "rangemode": "tozero",
                "showgrid": False, "tickformat": ",d"},
        margin={"l": 56, "r": 64, "t": 36, "b": 44},
    ))


def sparkline_figure(at, score):
    """A tiny score line for the fleet table (no axes, drawn as a static plot)."""
    trace = {"type": "scatter", "x": at, "y": score, "mode": "lines", "line": {"color": ACCENT, "width": 1.5},
             "hoverinfo": "skip"}
    return _json([trace], {"height": 36, "width": 140, "margin": {"l": 2, "r": 2, "t": 2, "b": 2},
                           "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "showlegend": False,
                           "xaxis": {"visible": False}, "yaxis": {"visible": False}})


def fleet_change_figure(agent_ids, changes, target):
    """Each agent's change of score against its improvement baseline, with
    the improvement target; bars carry their value as text."""
    values = np.asarray(changes, dtype=float) * 100
    trace = {"type": "bar", "x": values, "y": list(agent_ids), "orientation": "h", "marker": {"color": ACCENT},
             "text": [f"{value:+.1f} %" for value in values], "textposition": "outside", "name": "change vs baseline"}
    shape = {"type": "line", "xref": "x", "yref": "paper", "x0": target * 100, "x1": target * 100, "y0": 0, "y1": 1,
             "line": {"dash": "dash", "color": GOOD, "width": 1.5}}
    label = {"xref": "x", "yref": "paper", "x": target * 100, "y": 1, "yanchor": "bottom",
             "text": f"target +{target * 100:g} %", "showarrow": False, "font": {"color": GOOD, "size": 11}}
    return _json([trace], _layout(
        height=max(160, 26 * len(values) + 70), hovermode="closest", shapes=[shape], annotations=[label],
        xaxis={"title": {"text": "change of the composite score vs baseline (%)"}, "gridcolor": GRID,
               "zeroline": True, "zerolinecolor": MUTED},
        yaxis={"autorange": "reversed", "automargin": True}, margin={"l": 8, "r": 48, "t": 28, "b": 40},
    ))
