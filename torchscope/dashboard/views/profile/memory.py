"""The memory view: allocated (and reserved) memory over time per device, with the peak marked. Pure builder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from torchscope.dashboard.formatting import fmt_bytes


def device_label(device_type: int, device: int) -> str:
    """``CPU`` or ``GPU 0`` (c10's device type 0 is the CPU)."""
    return "CPU" if int(device_type) == 0 else f"GPU {int(device)}"


def memory_figure(curve: pd.DataFrame, peaks: pd.DataFrame) -> go.Figure:
    """Allocated memory (MiB) over time (ms since the profile start), a step line per device of ``curve``
    (:meth:`Store.memory_curve`); the peak annotated."""
    fig = go.Figure()
    for (dtype, device), group in curve.groupby(["device_type", "device"], sort=True):
        x, y = group["ts"].to_numpy(np.float64), group["allocated"].to_numpy(np.float64)
        label = device_label(dtype, device)
        # at most 2,000 points: an SVG line, which plotly.js's basic bundle draws (no WebGL bundle to load)
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
