"""Downsampling series for display without hiding what matters: pure functions over DataFrames.

Averaging would erase a single spike or NaN; instead each bucket keeps its first, last, minimum and maximum point,
and the first NaN, +Inf and -Inf of each bucket are kept, so no non-finite value disappears from view.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def downsample_keep_extremes(frame: pd.DataFrame, group: str, x: str, y: str, max_items: int) -> pd.DataFrame:
    """At most about ``max_items`` rows per ``group`` (up to seven points per bucket), sorted by ``group`` and ``x``.

    Rows must already be sorted by ``group`` then ``x``. Groups with at most ``max_items`` rows are untouched.
    """
    if frame.empty or max_items <= 0:
        return frame
    sizes = frame.groupby(group, sort=False).size()
    if int(sizes.max()) <= max_items:
        return frame
    keep = np.zeros(len(frame), dtype=bool)
    values = frame[y].to_numpy(dtype="float64")
    start = 0
    for size in sizes.to_numpy():
        end = start + int(size)
        if size <= max_items:
            keep[start:end] = True
        else:
            keep[start:end] = _extreme_mask(values[start:end], max(1, max_items // 4))
        start = end
    return frame[keep].reset_index(drop=True)


def _extreme_mask(values: np.ndarray, buckets: int) -> np.ndarray:
    """Per bucket: first, last, min, max, and the first NaN, +Inf and -Inf (so a lone NaN always survives)."""
    n = len(values)
    mask = np.zeros(n, dtype=bool)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    finite = np.where(np.isfinite(values), values, np.nan)
    specials = (np.isnan(values), values == np.inf, values == -np.inf)
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        mask[lo] = mask[hi - 1] = True
        chunk = finite[lo:hi]
        if not np.all(np.isnan(chunk)):
            mask[lo + int(np.nanargmin(chunk))] = True
            mask[lo + int(np.nanargmax(chunk))] = True
        for special in specials:
            hits = np.flatnonzero(special[lo:hi])
            if hits.size:
                mask[lo + int(hits[0])] = True
    return mask
