"""Scalar charts: one small chart per tag, NaN/Inf marked, optional smoothing and log scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

LINE = "#3b6fd8"
SMOOTH = "#1d3f8f"
BAD = "#d62728"


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average; non-finite values pass through and are skipped."""
    out = np.array(values, dtype="float64", copy=True)
    if weight <= 0 or len(out) == 0:
        return out
    last, count = 0.0, 0
    for i, v in enumerate(out):
        if not np.isfinite(v):
            continue
        last = last * weight + (1 - weight) * v
        count += 1
        out[i] = last / (1 - weight**count)
    return out


def group_tags(tags: list[str]) -> dict[str, list[str]]:
    """Tags grouped by their prefix before the first ``/`` (``train/loss`` -> ``train``); no prefix -> ``""``."""
    groups: dict[str, list[str]] = {}
    for tag in sorted(tags):
        prefix = tag.split("/", 1)[0] if "/" in tag else ""
        groups.setdefault(prefix, []).append(tag)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] == "sys", kv[0])))


def scalar_figure(
    points: pd.DataFrame,
    tag: str,
    *,
    x: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    height: int = 240,
) -> go.Figure:
    """A chart of one tag's ``points`` (columns ``step, value, wall_time``).

    ``x`` is ``step`` or ``wall_time`` (shown as relative seconds). NaN and ±Inf cannot be drawn on the line, so
    they are red markers on the x axis, labelled in the hover. Uses SVG traces: a page of many charts would run
    out of WebGL contexts.
    """
    xs = points["step"].to_numpy() if x == "step" else (points["wall_time"].to_numpy() - _t0(points)) / 1e9
    ys = points["value"].to_numpy(dtype="float64")
    finite = np.isfinite(ys)
    fig = go.Figure()
    raw_opacity = 0.35 if smoothing > 0 else 1.0
    fig.add_trace(
        go.Scatter(
            x=xs[finite], y=ys[finite], mode="lines", name=tag, line={"color": LINE, "width": 1.5},
            opacity=raw_opacity, hovertemplate="%{x}: %{y:.6g}<extra></extra>",
        )
    )  # fmt: skip
    if smoothing > 0:
        fig.add_trace(
            go.Scatter(
                x=xs[finite], y=ema(ys[finite], smoothing), mode="lines", name="smoothed",
                line={"color": SMOOTH, "width": 2}, hovertemplate="%{x}: %{y:.6g} (smoothed)<extra></extra>",
            )
        )  # fmt: skip
    if (~finite).any():
        labels = np.where(np.isnan(ys[~finite]), "NaN", np.where(ys[~finite] > 0, "+Inf", "-Inf"))
        fig.add_trace(
            go.Scatter(
                x=xs[~finite], y=[0] * int((~finite).sum()), yaxis="y2", mode="markers", name="NaN/Inf",
                marker={"color": BAD, "symbol": "x", "size": 9}, text=labels,
                hovertemplate="%{x}: %{text}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(
        title={"text": tag, "font": {"size": 13}, "x": 0.02},
        height=height,
        margin={"l": 50, "r": 10, "t": 32, "b": 30},
        showlegend=False,
        hovermode="x unified",
        uirevision=tag,
        template="plotly_white",
        xaxis={"title": None if x == "step" else "seconds"},
        yaxis={"type": "log" if log_y else "linear", "exponentformat": "SI"},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
    )
    return fig


def _t0(points: pd.DataFrame) -> int:
    return int(points["wall_time"].min()) if len(points) else 0
