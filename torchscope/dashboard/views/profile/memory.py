"""The memory view: allocated (and reserved) memory over time per device, with the peak marked. Pure builder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from torchscope.dashboard.formatting import fmt_bytes

MAX_POINTS = 5000


def device_label(device_type: int, device: int) -> str:
    """``CPU`` or ``GPU 0`` (c10's device type 0 is the CPU)."""
    return "CPU" if int(device_type) == 0 else f"GPU {int(device)}"


def bucket_max(ts: np.ndarray, values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: per time bucket the maximum (a peak never disappears), at its own time."""
    if len(ts) <= max_points:
        return ts, values
    edges = np.linspace(0, len(ts), max_points // 2 + 1).astype(np.int64)
    keep = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi > lo:
            keep += [lo + int(np.argmax(values[lo:hi])), hi - 1]
    idx = np.unique(np.array(keep, dtype=np.int64))
    return ts[idx], values[idx]


def memory_figure(timeline: pd.DataFrame, peaks: pd.DataFrame) -> go.Figure:
    """Allocated memory (MiB) over time (ms since the profile start), a step line per device; the peak annotated."""
    fig = go.Figure()
    for (dtype, device), group in timeline.groupby(["device_type", "device"], sort=True):
        ts = group["ts"].to_numpy(np.int64)
        allocated = group["allocated"].fillna(group["bytes"].cumsum()).to_numpy(np.float64)
        x, y = bucket_max(ts, allocated, MAX_POINTS)
        label = device_label(dtype, device)
        # at most MAX_POINTS points: an SVG line, which plotly.js's basic bundle draws (no WebGL bundle to load)
        fig.add_trace(go.Scatter(x=x / 1e6, y=y / 2**20, mode="lines", line={"shape": "hv"},
                                 name=f"{label} allocated",
                                 hovertemplate="%{x:.3f} ms: %{y:.3f} MiB<extra>" + label + "</extra>"))  # fmt: skip
    for peak in peaks.to_dict("records"):
        label = device_label(peak["device_type"], peak["device"])
        fig.add_annotation(x=peak["peak_at"] / 1e6, y=peak["peak_allocated"] / 2**20, text=f"peak {label}: "
                           f"{fmt_bytes(peak['peak_allocated'])}", showarrow=True, arrowhead=2)  # fmt: skip
    fig.update_layout(title={"text": "Allocated memory", "x": 0}, xaxis_title="ms since profile start",
                      yaxis_title="MiB",
                      margin={"l": 10, "r": 10, "t": 40, "b": 40}, height=360, plot_bgcolor="white",
                      legend={"orientation": "h", "y": -0.2})  # fmt: skip
    return fig
