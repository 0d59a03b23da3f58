"""A pyramid of per-bucket extremes of scalar series, so a long series is drawn without reading every point.

Pure numpy; imports nothing of torchscope. For bucket widths of 32, 128, 512, ... steps (``LEVEL_SHIFTS``), each
bucket of a series keeps its point count and up to seven representative points: the first and last (by step, then
wall time), the minimum and maximum (finite values), and the first NaN, the first +Inf and the first -Inf. Downsampling by
these buckets keeps exactly what the eye must not lose: a lone spike or NaN survives at every level.

Aggregating representatives again gives the representatives of the union, which is what makes the pyramid
incremental: a batch of new points is aggregated on its own and merged with the stored rows of the buckets it
touches (:func:`aggregate` over both), and each level is built from the one below.
"""

from __future__ import annotations

import numpy as np

LEVEL_SHIFTS = (7, 9, 11, 13, 15, 17, 19)
"""Level ``i`` (1-based) groups steps ``s`` by ``s >> LEVEL_SHIFTS[i - 1]``: widths 128, 512, 2048, ... 524288 steps."""

ROLES = ("first", "last", "min", "max", "nan", "pinf", "ninf")
ABSENT = np.iinfo(np.int64).min
"""Step and wall time of a role a bucket lacks (no finite value: ``min``/``max``; no NaN/+Inf/-Inf)."""
FIELDS = ("step", "wall", "value")
COLUMNS = ("n", *(f"{role}_{field}" for role in ROLES for field in FIELDS))
"""Aggregate columns besides ``key`` (``run_id << 32 | tag_id``) and ``bucket``."""


def aggregate(key: np.ndarray, step: np.ndarray, wall: np.ndarray, value: np.ndarray, weight: np.ndarray,
              shift: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-``(key, step >> shift)`` count (sum of ``weight``) and representative points, as column arrays.

    ``value`` uses NaN for NaN. Roles a bucket lacks have step and wall :data:`ABSENT` and value NaN. One sort;
    everything else is linear.
    """
    bucket = step >> shift
    order = np.lexsort((wall, step, bucket, key))
    k, b = key[order], bucket[order]
    size = len(order)
    starts = np.flatnonzero(np.r_[True, (k[1:] != k[:-1]) | (b[1:] != b[:-1])]) if size else np.empty(0, np.int64)
    groups = len(starts)
    group_of = np.repeat(np.arange(groups), np.diff(np.r_[starts, size]))
    v = value[order]
    finite = np.isfinite(v)
    low = np.where(finite, v, np.inf)
    high = np.where(finite, v, -np.inf)
    masks = {
        "min": finite & (low == np.minimum.reduceat(low, starts)[group_of]) if size else finite,
        "max": finite & (high == np.maximum.reduceat(high, starts)[group_of]) if size else finite,
        "nan": np.isnan(v),
        "pinf": v == np.inf,
        "ninf": v == -np.inf,
    }
    picks = {"first": starts, "last": np.r_[starts[1:], size].astype(np.int64) - 1}
    out: dict[str, np.ndarray] = {
        "key": k[starts],
        "bucket": b[starts],
        "n": np.add.reduceat(weight[order], starts) if size else np.empty(0, np.int64),
    }
    s_sorted, w_sorted = step[order], wall[order]
    for role in ROLES:
        if role in picks:
            idx = picks[role]
            out[f"{role}_step"], out[f"{role}_wall"], out[f"{role}_value"] = s_sorted[idx], w_sorted[idx], v[idx]
            continue
        hits = np.flatnonzero(masks[role])
        # the first hit of each group: hits are in sorted order, so the first occurrence of each group id
        found_groups, first = np.unique(group_of[hits], return_index=True)
        idx = hits[first]
        out[f"{role}_step"] = np.full(groups, ABSENT, np.int64)
        out[f"{role}_wall"] = np.full(groups, ABSENT, np.int64)
        out[f"{role}_value"] = np.full(groups, np.nan)
        out[f"{role}_step"][found_groups] = s_sorted[idx]
        out[f"{role}_wall"][found_groups] = w_sorted[idx]
        out[f"{role}_value"][found_groups] = v[idx]
    return out


def representatives(agg: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The representative points of aggregate rows as ``(key, step, wall, value, weight)`` arrays.

    Each row's count rides on its first point (weight ``n``), the others weigh 0, so aggregating these points
    again sums counts correctly.
    """
    parts = []
    for role in ROLES:
        mask = agg[f"{role}_step"] != ABSENT
        weight = agg["n"] if role == "first" else np.zeros(len(agg["key"]), np.int64)
        parts.append((agg["key"][mask], agg[f"{role}_step"][mask], agg[f"{role}_wall"][mask],
                      agg[f"{role}_value"][mask], weight[mask]))  # fmt: skip
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(5))


def choose_level(count: int, last_step: int, max_points: int) -> int:
    """The finest level that draws a series of ``count`` points up to ``last_step`` in at most ``max_points``
    points (a bucket gives up to ``len(ROLES)``); 0 means "read the points themselves" (there are few enough)."""
    if count <= max_points:
        return 0
    budget = max(1, max_points // len(ROLES))
    for level, shift in enumerate(LEVEL_SHIFTS, start=1):
        if min(count, (max(last_step, 0) >> shift) + 1) <= budget:
            return level
    return len(LEVEL_SHIFTS)


def points(rows: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct representative points of stored bucket rows, sorted: ``(key, step, wall, value)``."""
    key, step, wall, value, _ = representatives(rows)
    order = np.lexsort((wall, step, key))
    key, step, wall, value = key[order], step[order], wall[order], value[order]
    distinct = np.r_[True, (key[1:] != key[:-1]) | (step[1:] != step[:-1]) | (wall[1:] != wall[:-1])] if len(key) else np.empty(0, bool)
    return key[distinct], step[distinct], wall[distinct], value[distinct]
