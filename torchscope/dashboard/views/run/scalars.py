"""Scalar charts: one small chart per tag, NaN/Inf marked, optional smoothing and log scale. Pure functions.

Every chart has the same three traces, so a live page can extend them by index (see
:mod:`torchscope.dashboard.views.run.live`): ``RAW`` (finite points, hover shows the exact logged value),
``SMOOTH`` (the debiased EMA of the raw points, empty when smoothing is off) and ``BAD`` (NaN/±Inf, drawn as red
crosses at the bottom edge because they have no place on the y axis). Figures are plain dicts: building 50
``go.Figure`` objects validates every property and costs more than the whole query.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from torchscope.dashboard.formatting import chart_text

LINE = "#3b6fd8"
SMOOTH_COLOR = "#1d3f8f"
BAD_COLOR = "#d62728"
RAW, SMOOTH, BAD = 0, 1, 2
"""Trace indices of every scalar chart."""
SYSTEM_PREFIX = "sys"
"""Tags ``sys/...`` are system metrics: their own section, always against wall time (their step repeats)."""


EmaState = tuple[float, float, "float | None", "float | None", "int | None"]
"""``(biased_last, weight_sum, lowest, highest, last_step)`` of the points smoothed so far; JSON-safe."""
NO_EMA: EmaState = (0.0, 0.0, None, None, None)


def ema(
    values: np.ndarray, weight: float, state: EmaState = NO_EMA, steps: np.ndarray | None = None
) -> tuple[np.ndarray, EmaState]:
    """TensorBoard's debiased exponential moving average, over steps and resumable: returns the series and the
    state to go on with.

    With ``steps``, a point ``k`` steps after the previous one decays the average by ``weight ** k``: the result is
    what smoothing every step would give when the series holds its value between the points drawn, so a chart of
    downsampled points (a few hundred for a million steps) is smoothed like the whole series, not lagging by
    hundreds of steps. Without ``steps`` every point is one step. ``state`` is what a previous call returned;
    non-finite values pass through unsmoothed and do not move the average. Each smoothed value is kept within the
    range of the values averaged so far, as it is mathematically: rounding would otherwise make a constant series
    wobble by a few ulps, which a chart's autorange magnifies.
    """
    out = np.array(values, dtype="float64", copy=True)
    last, total = float(state[0]), float(state[1])
    lo = math.inf if state[2] is None else float(state[2])
    hi = -math.inf if state[3] is None else float(state[3])
    previous = state[4]
    if weight <= 0:
        return out, tuple(state)  # type: ignore[return-value]
    step_list = None if steps is None else [int(s) for s in steps]
    for i, v in enumerate(out.tolist()):
        if not math.isfinite(v):
            continue
        step = (0 if previous is None else previous + 1) if step_list is None else step_list[i]
        decay = weight ** (1 if previous is None else max(1, step - previous))
        last = last * decay + (1 - decay) * v
        total = total * decay + (1 - decay)
        previous = step
        lo, hi = min(lo, v), max(hi, v)
        out[i] = min(max(last / total, lo), hi)
    seen = total > 0
    return out, (last, total, lo if seen else None, hi if seen else None, previous)


def group_tags(tags: list[str]) -> dict[str, list[str]]:
    """Tags grouped by their prefix before the first ``/`` (``train/loss`` -> ``train``); no prefix -> ``""``.

    Groups are sorted by name with the system metrics (``sys``) last; tags inside a group are sorted.
    """
    groups: dict[str, list[str]] = {}
    for tag in sorted(tags):
        groups.setdefault(tag_prefix(tag), []).append(tag)
    return dict(sorted(groups.items(), key=lambda kv: group_key(kv[0])))


def tag_prefix(tag: str) -> str:
    """The section a tag belongs to: the text before its first ``/``, or ``""``."""
    return tag.split("/", 1)[0] if "/" in tag else ""


def group_key(prefix: str) -> tuple[bool, str]:
    """Sort key of a section: by name, system metrics last."""
    return (prefix == SYSTEM_PREFIX, prefix)


def x_mode_for(tag: str, x: str) -> str:
    """The x axis a tag's chart really uses: system metrics always plot against wall time."""
    return "wall_time" if tag_prefix(tag) == SYSTEM_PREFIX else x


def trace_columns(
    points: pd.DataFrame, *, x: str, t0: int, smoothing: float, state: EmaState = NO_EMA
) -> tuple[dict[str, list[list[Any]]], EmaState]:
    """``{"x": [...3 lists], "y": ..., "customdata": ..., "text": ...}`` for the three traces, and the EMA state.

    ``points`` has columns ``step, value, wall_time`` in step order; ``x`` is ``step`` or ``wall_time`` (seconds
    since ``t0`` ns). Lists hold plain Python numbers (no NaN: JSON has none), ready for ``extendData``.
    """
    xs = points["step"].to_numpy() if x == "step" else (points["wall_time"].to_numpy() - t0) / 1e9
    ys = points["value"].to_numpy(dtype="float64")
    finite = np.isfinite(ys)
    good_x, good_y = xs[finite].tolist(), ys[finite]
    steps = points["step"].to_numpy()[finite]  # smoothing runs over steps whatever the x axis shows
    smooth, state = ema(good_y, smoothing, state, steps) if smoothing > 0 else (np.empty(0), state)
    bad = ys[~finite]
    labels = np.where(np.isnan(bad), "NaN", np.where(bad > 0, "+Inf", "-Inf")).tolist()
    good = good_y.tolist()
    return (
        {
            "x": [good_x, good_x if smoothing > 0 else [], xs[~finite].tolist()],
            "y": [good, smooth.tolist(), [0.0] * len(labels)],
            "customdata": [good, [], []],
            "text": [[], [], labels],
        },
        state,
    )


def scalar_figure(
    points: pd.DataFrame,
    tag: str,
    *,
    x: str = "step",
    t0: int = 0,
    smoothing: float = 0.0,
    log_y: bool = False,
    height: int = 240,
) -> tuple[dict[str, Any], EmaState]:
    """A chart of one tag's ``points`` (columns ``step, value, wall_time``, step order) and its EMA state.

    ``x`` is ``step`` or ``wall_time`` (seconds since ``t0`` ns, the run's start). SVG traces only: a page of
    many charts would run out of WebGL contexts.
    """
    columns, state = trace_columns(points, x=x, t0=t0, smoothing=smoothing)
    raw_opacity = 0.35 if smoothing > 0 else 1.0
    # a line through one point draws nothing: a lone point is a marker (the live page redraws it at the second)
    raw_mode = "lines+markers" if len(columns["x"][RAW]) == 1 else "lines"
    traces = [
        {"type": "scatter", "mode": raw_mode, "name": chart_text(tag), "line": {"color": LINE, "width": 1.5},
         "marker": {"color": LINE, "size": 7}, "opacity": raw_opacity, "hovertemplate": "%{customdata}<extra></extra>"},
        {"type": "scatter", "mode": "lines", "name": "smoothed", "line": {"color": SMOOTH_COLOR, "width": 2},
         "hovertemplate": "%{y:.6g} (smoothed)<extra></extra>", "visible": smoothing > 0},
        {"type": "scatter", "mode": "markers", "name": "NaN/Inf", "yaxis": "y2",
         "marker": {"color": BAD_COLOR, "symbol": "x", "size": 9}, "hovertemplate": "%{text}<extra></extra>"},
    ]  # fmt: skip
    for i, trace in enumerate(traces):
        for key, values in columns.items():
            trace[key] = values[i]
    layout = {
        "title": {"text": chart_text(tag), "font": {"size": 13}, "x": 0.02},
        "height": height,
        "margin": {"l": 50, "r": 10, "t": 32, "b": 30},
        "showlegend": False,
        "hovermode": "x unified",
        "uirevision": tag,  # keeps the user's zoom while points are appended
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {"title": {"text": None if x == "step" else "seconds"}, "gridcolor": "#eef0f3", "zeroline": False},
        "yaxis": {"type": "log" if log_y else "linear", "exponentformat": "SI", "gridcolor": "#eef0f3"},
        "yaxis2": {"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
    }
    return {"data": traces, "layout": layout}, state
