"""Figures of the compare page: scalar overlays with their difference, the largest changes, the step breakdown.

Pure functions: diff tables (from ``store.*_diff``) in, plotly figure dicts out. Plain dicts, as in
:mod:`torchscope.dashboard.views.run.scalars`: no validation cost, and the tests can read them directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from torchscope.dashboard.components import BREAKDOWN_COLORS
from torchscope.dashboard.formatting import chart_text, short_name

COLOR_A = "#8a94a6"
COLOR_B = "#3b6fd8"
SLOWER = "#d62728"
FASTER = "#2ca02c"
_BASE_LAYOUT = {"paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"size": 12}}


def _finite(values: pd.Series) -> list[Any]:
    # JSON has no NaN: a missing value becomes None, which plotly draws as a gap
    return [None if v is None or not np.isfinite(v) else float(v) for v in values.to_numpy(dtype="float64")]


def scalar_overlay(points: pd.DataFrame, tag: str, *, x_title: str = "step", height: int = 300) -> dict[str, Any]:
    """One tag of ``scalar_diff``: A and B overlaid on top, B - A below on the same x axis.

    ``points`` has columns ``x, value_a, value_b, delta`` (one tag, by x). Each run's line skips the x values it
    did not log (``connectgaps``), so a point of one run never drags the other's line to zero.
    """
    xs = points["x"].tolist()
    traces = [
        {"type": "scatter", "mode": "lines", "name": "A", "x": xs, "y": _finite(points["value_a"]),
         "line": {"color": COLOR_A, "width": 1.5}, "connectgaps": True},
        {"type": "scatter", "mode": "lines", "name": "B", "x": xs, "y": _finite(points["value_b"]),
         "line": {"color": COLOR_B, "width": 1.5}, "connectgaps": True},
        {"type": "scatter", "mode": "lines", "name": "B - A", "x": xs, "y": _finite(points["delta"]),
         "line": {"color": "#444", "width": 1}, "yaxis": "y2", "connectgaps": False},
    ]  # fmt: skip
    layout = {
        **_BASE_LAYOUT,
        "title": {"text": chart_text(tag), "font": {"size": 13}, "x": 0.02},
        "height": height,
        "margin": {"l": 55, "r": 10, "t": 32, "b": 30},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right", "font": {"size": 11}},
        "xaxis": {"title": {"text": x_title}, "gridcolor": "#eef0f3", "anchor": "y2"},
        "yaxis": {"domain": [0.36, 1], "gridcolor": "#eef0f3", "exponentformat": "SI"},
        "yaxis2": {"domain": [0, 0.26], "gridcolor": "#eef0f3", "title": {"text": "B - A", "font": {"size": 10}},
                   "zeroline": True, "zerolinecolor": "#9ca3af", "exponentformat": "SI"},
    }  # fmt: skip
    return {"data": traces, "layout": layout}


def change_bars(table: pd.DataFrame, key: str, time: str, *, top: int = 15, title: str = "") -> dict[str, Any]:
    """A horizontal bar per row of an op/kernel/module diff: the change of ``time`` (B - A, in µs), the ``top``
    largest changes, the largest at the top; slower in red, faster in green."""
    head = table[table[f"{time}_delta"] != 0].head(top).iloc[::-1]
    delta_us = (head[f"{time}_delta"] / 1e3).tolist()
    labels = [chart_text(short_name(k)) for k in head[key]]
    trace = {
        "type": "bar", "orientation": "h", "x": delta_us, "y": labels,
        "marker": {"color": [SLOWER if d > 0 else FASTER for d in delta_us]},
        "customdata": [[chart_text(k), s] for k, s in zip(head[key], head["status"])],
        "hovertemplate": "%{customdata[0]}<br>%{x:+,.1f} µs (%{customdata[1]})<extra></extra>",
    }  # fmt: skip
    layout = {
        **_BASE_LAYOUT,
        "title": {"text": chart_text(title or f"largest changes of {time.removesuffix('_ns')} time"),
                  "font": {"size": 13}, "x": 0.02},
        "height": 80 + 24 * max(len(head), 1),
        "margin": {"l": 10, "r": 20, "t": 36, "b": 36},
        "xaxis": {"title": {"text": "B - A (µs)"}, "zeroline": True, "zerolinecolor": "#6b7280",
                  "gridcolor": "#eef0f3"},
        "yaxis": {"automargin": True, "tickfont": {"family": "monospace", "size": 11}},
        "showlegend": False,
    }  # fmt: skip
    return {"data": [trace], "layout": layout}


def breakdown_bars(breakdown: pd.DataFrame) -> dict[str, Any]:
    """The mean step of A and of B as two stacked horizontal bars, one segment per breakdown category (ms)."""
    parts = breakdown[breakdown["category"] != "wall"]
    traces = [
        {"type": "bar", "orientation": "h", "name": cat, "y": ["A", "B"],
         "x": [row["mean_ns_a"] / 1e6, row["mean_ns_b"] / 1e6],
         "marker": {"color": BREAKDOWN_COLORS.get(cat, "#999")},
         "hovertemplate": f"{cat}: %{{x:.3f}} ms<extra>%{{y}}</extra>"}
        for cat, row in zip(parts["category"], parts.to_dict("records"))
    ]  # fmt: skip
    layout = {
        **_BASE_LAYOUT,
        "barmode": "stack",
        "title": {"text": "mean step time and where it went", "font": {"size": 13}, "x": 0.02},
        "height": 210,
        "margin": {"l": 30, "r": 20, "t": 60, "b": 40},
        "xaxis": {"title": {"text": "ms per step"}, "gridcolor": "#eef0f3"},
        "yaxis": {"autorange": "reversed"},
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
    }
    return {"data": traces, "layout": layout}
