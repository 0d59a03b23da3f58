"""Figures of the graph view's inspector: a tensor's histogram at one step, and its statistics across steps. Pure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

HISTORY_PANELS = (("mean", "mean"), ("std", "std"), ("norm", "L2 norm"), ("bad", "NaN / Inf count"))
_LAYOUT = {"margin": {"l": 48, "r": 12, "t": 28, "b": 32}, "template": "plotly_white", "font": {"size": 11}}


def histogram_figure(stats: pd.DataFrame, title: str) -> go.Figure:
    """Side by side, one bar chart per row of ``stats`` (``store.tensor_stats`` rows of one step: the value and its
    gradient, whose ranges differ by orders of magnitude). The 32 bins span ``[hist_lo, hist_hi]`` (finite values)."""
    rows = [r for r in stats.itertuples(index=False)
            if len(r.hist) and r.hist_n > 0 and np.isfinite([r.hist_lo, r.hist_hi]).all()]  # fmt: skip
    fig = make_subplots(rows=1, cols=max(len(rows), 1), subplot_titles=[str(r.role) for r in rows] or [""],
                        horizontal_spacing=0.12)  # fmt: skip
    for col, row in enumerate(rows, start=1):
        counts = np.asarray(row.hist, dtype=np.int64)
        edges = np.linspace(row.hist_lo, row.hist_hi, len(counts) + 1)
        width = (edges[1] - edges[0]) if row.hist_hi > row.hist_lo else 1.0
        fig.add_bar(
            x=(edges[:-1] + edges[1:]) / 2, y=counts, width=width, name=str(row.role), showlegend=False,
            marker={"color": "#2563eb" if row.role == "value" else "#ea580c"},
            customdata=np.stack([edges[:-1], edges[1:]], axis=1),
            hovertemplate="[%{customdata[0]:.4g}, %{customdata[1]:.4g}): %{y}<extra>" + str(row.role) + "</extra>",
            row=1, col=col,
        )  # fmt: skip
    fig.update_layout(height=200, bargap=0, meta={"title": title}, **_LAYOUT)
    fig.update_annotations(font_size=11)
    if not rows:
        fig.add_annotation(text="no finite values", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def history_figure(values: pd.DataFrame, grads: pd.DataFrame, step: int | None = None) -> go.Figure:
    """Mean, std, L2 norm and NaN/Inf count of a tensor (and of its gradient, dashed) over the captured steps."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for _, t in HISTORY_PANELS], horizontal_spacing=0.14,
                        vertical_spacing=0.2)  # fmt: skip
    for frame, role, dash in ((values, "value", "solid"), (grads, "grad", "dash")):
        if frame.empty:
            continue
        frame = frame[frame["output"] == frame["output"].min()].sort_values("step")
        frame = frame.assign(bad=frame["nan"] + frame["posinf"] + frame["neginf"])
        for k, (column, _title) in enumerate(HISTORY_PANELS):
            fig.add_scatter(
                x=frame["step"], y=frame[column], mode="lines+markers", name=role, legendgroup=role,
                showlegend=k == 0, line={"dash": dash, "color": "#2563eb" if role == "value" else "#ea580c"},
                marker={"size": 4}, row=k // 2 + 1, col=k % 2 + 1,
            )  # fmt: skip
    if step is not None:
        for k in range(4):
            fig.add_vline(x=step, line={"color": "#94a3b8", "dash": "dot"}, row=k // 2 + 1, col=k % 2 + 1)
    fig.update_layout(height=360, legend={"orientation": "h", "y": -0.12}, **_LAYOUT)
    fig.update_annotations(font_size=11)
    return fig
