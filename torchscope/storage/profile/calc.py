"""Pure post-processing of profile events: interval unions, step breakdowns, call-tree attribution.

numpy and pandas only; nothing else of torchscope (the SQL that feeds these lives in ``analyses``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


PIECE = 1 << 20
"""Values the analyses handle at once where their work can be cut (nesting, span unions, step segments, child
sums): the temporaries are a few times this many values, whatever the profile's size."""


def index_dtype(largest: int) -> type:
    """int32 when every value up to ``largest`` fits (event ids and positions: half the memory), else int64."""
    return np.int32 if largest <= np.iinfo(np.int32).max else np.int64


def union_blocks(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of ``[start, end)`` intervals as disjoint blocks ``(block starts, block ends)``, ascending; empty
    intervals are dropped."""
    keep = ends > starts
    s, e = (starts, ends) if keep.all() else (starts[keep], ends[keep])
    del keep
    if len(s) == 0:
        return s, e
    if (s[1:] >= s[:-1]).all():  # in start order already (one lane's events): no sort, no copies
        e = np.maximum.accumulate(e)
    else:
        order = np.argsort(s, kind="stable")
        s, e = s[order], np.maximum.accumulate(e[order])
        del order
    # an interval opens a new block where it starts after every earlier interval ended
    new = np.concatenate(([True], s[1:] > e[:-1]))
    first = np.flatnonzero(new)
    return s[first], np.concatenate((e[first[1:] - 1], [e[-1]]))


def union_length_by_window(starts: np.ndarray, ends: np.ndarray, los: np.ndarray, his: np.ndarray) -> np.ndarray:
    """For each window ``[los[k], his[k])``, the total length of the union of the ``[start, end)`` intervals within
    it. The union is built once and each window sums its blocks (by binary search): many windows (a profile's steps)
    cost one pass over the intervals."""
    block_start, block_end = union_blocks(np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))
    los, his = np.asarray(los, dtype=np.int64), np.asarray(his, dtype=np.int64)
    if len(block_start) == 0:
        return np.zeros(len(los), dtype=np.int64)
    before = np.concatenate(([0], np.cumsum(block_end - block_start)))  # length of the blocks before each block
    first = np.searchsorted(block_end, los, "right")  # the first block ending after the window's start
    stop = np.searchsorted(block_start, his, "left")  # blocks from here on start at or after the window's end
    some = (first < stop) & (los < his)
    f, last = np.minimum(first, len(block_start) - 1), np.maximum(stop - 1, 0)
    head = np.maximum(los - block_start[f], 0)  # the part of the first block before the window
    tail = np.maximum(block_end[last] - his, 0)  # the part of the last block after it
    return np.where(some, before[np.maximum(stop, 0)] - before[first] - head - tail, 0)


def breakdown(
    steps: pd.DataFrame, categories: Sequence[tuple[str, np.ndarray, np.ndarray]], rest: str
) -> pd.DataFrame:
    """Split each step's wall time among ``categories`` (highest priority first); what none covers is ``rest``.

    ``steps`` has ``start`` and ``end``; each category is ``(name, starts, ends)``. Every instant of a step is
    counted once, in the first category active then, so the columns ``<name>_ns`` add up to ``wall_ns``. Each
    category is reduced to the union of its intervals first (what is active at an instant does not change), so
    memory follows the blocks of activity, not the events.
    """
    categories = [(name, *union_blocks(s, e)) for name, s, e in categories]
    out = steps.copy()
    out["wall_ns"] = (out["end"] - out["start"]).astype("int64")
    names = [c[0] for c in categories]
    for name in [*names, rest]:
        out[f"{name}_ns"] = 0
    if out.empty:
        return out
    lo = out["start"].to_numpy(np.int64)
    hi = out["end"].to_numpy(np.int64)
    bounds = [lo, hi] + [c[1] for c in categories] + [c[2] for c in categories]
    cuts = np.sort(np.concatenate(bounds))
    cuts = cuts[np.concatenate(([True], cuts[1:] != cuts[:-1]))]  # np.unique, without its slow hashing path
    table = np.zeros((len(out), len(categories) + 1), dtype=np.int64)
    for first in range(0, len(cuts) - 1, PIECE):  # segments between cuts, a bounded number at a time
        seg_lo = cuts[first : first + PIECE]
        seg_hi = cuts[first + 1 : first + PIECE + 1]
        seg_lo = seg_lo[: len(seg_hi)]
        owner = np.full(len(seg_lo), len(categories), dtype=np.int64)
        for rank in range(len(categories) - 1, -1, -1):  # lower priorities first, higher ones overwrite
            _, s, e = categories[rank]  # disjoint blocks, ascending: starts and ends both sorted
            if len(s) == 0:
                continue
            active = np.searchsorted(s, seg_lo, "right") - np.searchsorted(e, seg_lo, "right") > 0
            owner[active] = rank
        step_of = np.searchsorted(lo, seg_lo, "right") - 1
        inside = (step_of >= 0) & (seg_lo < hi[np.maximum(step_of, 0)])
        np.add.at(table, (step_of[inside], owner[inside]), (seg_hi - seg_lo)[inside])
    for i, name in enumerate([*names, rest]):
        out[f"{name}_ns"] = table[:, i]
    return out


def duration_levels(dur: np.ndarray) -> np.ndarray:
    """``profile_events.level`` of each duration (int8): its bit length, the exponent ``frexp`` gives; :data:`PIECE`
    values at a time (no float copy of the whole column)."""
    level = np.empty(len(dur), dtype=np.int8)
    for lo in range(0, len(dur), PIECE):
        level[lo : lo + PIECE] = np.frexp(dur[lo : lo + PIECE].astype(np.float64))[1]
    return level


def positions(ids: np.ndarray, base: int, size: int) -> np.ndarray:
    """Map event ids (contiguous per profile from ``base``) to row positions of an array of ``size``; -1 if out."""
    pos = ids - base
    return np.where((ids >= 0) & (pos >= 0) & (pos < size), pos, -1)


def nearest_marked(parent_pos: np.ndarray, marked: np.ndarray, include_self: bool) -> np.ndarray:
    """For every event, the position of its nearest ancestor (or itself) that is ``marked``, or -1 (in the dtype of
    ``parent_pos``).

    Pointer jumping along ``parent_pos`` (-1 at roots): one numpy pass per level of the call tree, :data:`PIECE`
    events at a time (each event's walk is its own), so the temporaries are a piece's.
    """
    n = len(parent_pos)
    index = parent_pos.dtype  # int32 positions stay int32: half the memory
    result = np.full(n, -1, dtype=index)
    for lo in range(0, n, PIECE):
        found = result[lo : lo + PIECE]  # a view: written in place
        cur = parent_pos[lo : lo + PIECE].copy()
        if include_self:
            own = np.flatnonzero(marked[lo : lo + PIECE])
            found[own] = own + lo
            cur[own] = -1
        todo = np.flatnonzero(cur >= 0)
        while len(todo):
            up = cur[todo]
            hit = marked[up]
            found[todo[hit]] = up[hit]
            todo = todo[~hit]
            cur[todo] = parent_pos[up[~hit]]
            todo = todo[cur[todo] >= 0]
    return result


def add_up_ancestors(owner: np.ndarray, values: np.ndarray, up: np.ndarray, size: int) -> np.ndarray:
    """Sum ``values`` into ``owner`` and into every ancestor reached through ``up`` (position -> position or -1)."""
    total = np.zeros(size, dtype=np.int64)
    cur, vals = owner.copy(), values.astype(np.int64)
    while True:
        keep = cur >= 0
        if not keep.any():
            return total
        cur, vals = cur[keep], vals[keep]
        np.add.at(total, cur, vals)
        cur = up[cur]


def module_paths(names: list[str], parent_module: np.ndarray) -> list[str]:
    """Slash-joined module paths of module events (listed parents-first); ``nn.Module: Linear_0`` -> ``Linear_0``."""
    paths: list[str] = []
    for name, up in zip(names, parent_module.tolist()):
        short = name.split(": ", 1)[1] if ": " in name else name
        paths.append(f"{paths[up]}/{short}" if up >= 0 else short)
    return paths
