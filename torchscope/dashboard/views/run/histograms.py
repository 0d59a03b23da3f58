"""Histograms over steps, as TensorBoard draws them: offset histograms (its histogram view) and percentile bands (its
distribution view). Pure functions of rows the store returns.

Both sources become one form, a *series*: one row per step with ``step, lo, hi, buckets`` (``buckets`` a list of
``[left, right, count]``). Imported TensorBoard histograms (``store.histograms``) are that already; a watched
tensor's statistics (``store.tensor_stats``: 32 equal bins over ``[hist_lo, hist_hi]``) are turned into it by
:func:`watched_series`. Figures are plain dicts, as the scalar charts' are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from torchscope.dashboard.formatting import chart_text

BINS = 30
"""Bins of the common grid every step is re-binned to (TensorBoard's histogram view uses 30 as well)."""
BASIS_POINTS = (0, 668, 1587, 3085, 5000, 6915, 8413, 9332, 10000)
"""Percentiles (in 1/100 of a percent) of the distribution view: min, -2σ, -1.5σ, -1σ, -0.5σ, median, +0.5σ, +1σ,
+1.5σ, +2σ (of a normal distribution), max — TensorBoard's ``NORMAL_HISTOGRAM_BPS``."""
RIDGE_COLOR = "#3b6fd8"
RIDGE_FILL = "rgba(221,231,250,0.92)"
BAND_COLORS = ("rgba(59,111,216,0.18)", "rgba(59,111,216,0.30)", "rgba(59,111,216,0.45)", "rgba(59,111,216,0.65)")
"""Fill of the bands from the outermost (min to max) to the innermost."""
MODES = ("ridge", "distribution")
_COLUMNS = ["step", "lo", "hi", "buckets"]


def imported_series(rows: pd.DataFrame) -> pd.DataFrame:
    """The series of one tag's imported histograms (``store.histograms`` rows), by step; steps without buckets are
    left out."""
    if rows.empty:
        return pd.DataFrame(columns=_COLUMNS)
    rows = rows.sort_values("step")
    out = [(int(r.step), float(r.buckets[0][0]), float(r.buckets[-1][1]), [list(map(float, b)) for b in r.buckets])
           for r in rows.itertuples(index=False) if len(r.buckets)]  # fmt: skip
    return pd.DataFrame(out, columns=_COLUMNS)


def watched_series(rows: pd.DataFrame) -> pd.DataFrame:
    """The series of one watched tensor (``store.tensor_stats`` rows of one node, its first output), by step: the
    32 equal bins of each captured step over ``[hist_lo, hist_hi]``. Steps whose tensor had no finite value are
    left out."""
    out = []
    if not rows.empty:
        rows = rows[rows["output"] == rows["output"].min()].sort_values("step")
        for step, lo, hi, n, counts in zip(rows["step"], rows["hist_lo"], rows["hist_hi"], rows["hist_n"], rows["hist"]):
            counts = np.asarray(counts, dtype=np.float64)
            if not len(counts) or not n or not np.isfinite([lo, hi]).all():
                continue
            edges = np.linspace(float(lo), float(hi), len(counts) + 1)
            buckets = [[float(a), float(b), float(c)] for a, b, c in zip(edges[:-1], edges[1:], counts)]
            out.append((int(step), float(lo), float(hi), buckets))
    return pd.DataFrame(out, columns=_COLUMNS)


def rebin(buckets: list[list[float]], edges: np.ndarray) -> np.ndarray:
    """The counts of ``buckets`` on the grid ``edges``: each bucket's count spread over the grid bins it overlaps, in
    proportion to the overlap (a bucket of zero width goes whole into the bin holding it)."""
    out = np.zeros(len(edges) - 1)
    for left, right, count in buckets:
        if count == 0:
            continue
        if right <= left:
            out[min(max(int(np.searchsorted(edges, left, side="right")) - 1, 0), len(out) - 1)] += count
            continue
        overlap = np.clip(np.minimum(edges[1:], right) - np.maximum(edges[:-1], left), 0, None)
        out += count * overlap / (right - left)
    return out


def grid(series: pd.DataFrame, bins: int = BINS) -> np.ndarray:
    """The common bin edges of a series: ``bins`` equal bins from its lowest to its highest value (a constant
    series: one unit either side)."""
    lo, hi = float(series["lo"].min()), float(series["hi"].max())
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    return np.linspace(lo, hi, bins + 1)


def percentiles(buckets: list[list[float]], basis_points: tuple[int, ...] = BASIS_POINTS) -> list[float]:
    """The value at each basis point (1/100 of a percent) of a histogram, interpolating linearly inside the bucket
    where the cumulative count crosses it, as TensorBoard's distribution compressor does."""
    if not buckets:
        return [0.0] * len(basis_points)
    array = np.asarray(buckets, dtype=np.float64)
    lo, hi = float(array[0, 0]), float(array[-1, 1])
    counts = array[:, 2]
    cumulative = (counts * basis_points[-1] / (counts.sum() or 1.0)).cumsum()
    out = []
    for bp in basis_points:
        i = int(np.searchsorted(cumulative, bp, side="right"))
        while i < len(cumulative) and cumulative[i] == (cumulative[i - 1] if i else 0.0):
            i += 1  # an empty bucket: the crossing is in the next one that holds values
        if i >= len(cumulative):
            out.append(hi)
            continue
        before = cumulative[i - 1] if i else 0.0
        left = lo if not i or not before else max(float(array[i - 1, 1]), lo)
        right = min(float(array[i, 1]), hi)
        out.append(float(left + (right - left) * (bp - before) / (cumulative[i] - before)))
    return out


def _layout(title: str, height: int) -> dict[str, Any]:
    return {
        "title": {"text": chart_text(title), "font": {"size": 13}, "x": 0.02},
        "height": height, "margin": {"l": 60, "r": 20, "t": 36, "b": 40}, "showlegend": False,
        "paper_bgcolor": "white", "plot_bgcolor": "white",
        "xaxis": {"gridcolor": "#eef0f3", "zeroline": False, "exponentformat": "SI"},
        "yaxis": {"gridcolor": "#eef0f3", "zeroline": False},
    }  # fmt: skip


def ridge_figure(series: pd.DataFrame, title: str, *, bins: int = BINS, height: int = 420) -> dict[str, Any]:
    """TensorBoard's histogram view: one filled outline per step on a common grid of ``bins`` bins, drawn from the
    back (first step, top) to the front (last step, bottom), each raised by its rank among the steps so later steps
    overlap earlier ones. Heights are scaled so the tallest bin of the whole series is twice the spacing of two
    steps. The y axis is labelled with steps; hovering a point gives its step, bin and exact (re-binned) count."""
    layout = _layout(title, height)
    if series.empty:
        layout["annotations"] = [{"text": "no histogram", "showarrow": False, "xref": "paper", "yref": "paper",
                                  "x": 0.5, "y": 0.5}]  # fmt: skip
        return {"data": [], "layout": layout}
    edges = grid(series, bins)
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    counts = [rebin(b, edges) for b in series["buckets"]]
    tallest = max(float(c.max()) for c in counts) or 1.0
    n = len(counts)
    traces = []
    for rank, (step, c) in enumerate(zip(series["step"], counts)):
        base = float(n - 1 - rank)  # the first step at the top, the last at the bottom, in front
        # each outline fills down to its own baseline (an invisible trace before it), hiding the steps behind it
        traces.append({"type": "scatter", "mode": "lines", "x": centres, "y": [base] * len(centres),
                       "line": {"width": 0}, "hoverinfo": "skip"})  # fmt: skip
        traces.append({
            "type": "scatter", "mode": "lines", "x": centres, "y": (base + 2.0 * c / tallest).tolist(),
            "fill": "tonexty", "fillcolor": RIDGE_FILL, "line": {"color": RIDGE_COLOR, "width": 1},
            "customdata": [[int(step), float(v), float(a), float(b)] for v, a, b in zip(c, edges[:-1], edges[1:])],
            "hovertemplate": "step %{customdata[0]}<br>[%{customdata[2]:.4g}, %{customdata[3]:.4g}): "
                             "%{customdata[1]:.4g}<extra></extra>",
            "name": f"step {int(step)}",
        })  # fmt: skip
    ticks = list(range(n))
    step_labels = [str(int(s)) for s in series["step"]][::-1]
    stride = max(1, n // 10)
    layout["yaxis"].update({"title": {"text": "step"}, "tickvals": ticks[::stride], "ticktext": step_labels[::stride],
                            "range": [-0.2, n + 1.2]})  # fmt: skip
    return {"data": traces, "layout": layout}


def distribution_figure(series: pd.DataFrame, title: str, *, height: int = 360) -> dict[str, Any]:
    """TensorBoard's distribution view: per step the values at :data:`BASIS_POINTS`, drawn as nested bands (min to
    max, ±2σ, ±1σ, ±0.5σ-equivalent percentiles) around the median line."""
    layout = _layout(title, height)
    layout["xaxis"]["title"] = {"text": "step"}
    if series.empty:
        layout["annotations"] = [{"text": "no histogram", "showarrow": False, "xref": "paper", "yref": "paper",
                                  "x": 0.5, "y": 0.5}]  # fmt: skip
        return {"data": [], "layout": layout}
    steps = [int(s) for s in series["step"]]
    values = np.array([percentiles(b) for b in series["buckets"]])  # steps × basis points
    traces: list[dict[str, Any]] = []
    half = len(BASIS_POINTS) // 2
    for k in range(half):
        low, high = values[:, k], values[:, -1 - k]
        label = f"{BASIS_POINTS[k] / 100:g}–{BASIS_POINTS[-1 - k] / 100:g}%"
        traces.append({"type": "scatter", "mode": "lines", "x": steps, "y": low.tolist(), "line": {"width": 0},
                       "hoverinfo": "skip", "showlegend": False})  # fmt: skip
        traces.append({"type": "scatter", "mode": "lines", "x": steps, "y": high.tolist(), "line": {"width": 0},
                       "fill": "tonexty", "fillcolor": BAND_COLORS[k], "name": label, "customdata": low.tolist(),
                       "hovertemplate": f"{label}: %{{customdata:.4g}} to %{{y:.4g}}<extra></extra>"})  # fmt: skip
    traces.append({"type": "scatter", "mode": "lines+markers" if len(steps) == 1 else "lines", "x": steps,
                   "y": values[:, half].tolist(), "line": {"color": RIDGE_COLOR, "width": 2}, "name": "median",
                   "hovertemplate": "median %{y:.4g}<extra>step %{x}</extra>"})  # fmt: skip
    layout["hovermode"] = "x unified"
    return {"data": traces, "layout": layout}
