"""The timeline's density cells and blocks: pure numpy, shared by the stored pyramid and the window reads.

A *cell* is one (display row, bin) of a level: bins of ``2**shift`` ns counted from the profile start. It holds the
events that *start* in the bin: their count and their busy ns (each duration clipped at the bin's end). Counting by
start makes every level a partition of the events, so a window's density is a slice of one level, the same whether
the level was read from the stored pyramid, from raw events by SQL, or from an in-memory index.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

TILE_BITS = 12
TILE_BINS = 1 << TILE_BITS
"""Bins per stored tile: a window (about two bins per pixel) touches one or two tiles of a lane."""


class Cells(NamedTuple):
    """Non-empty cells sorted by ``(row, bin)``: int64 arrays of one length."""

    row: np.ndarray
    bin: np.ndarray
    count: np.ndarray
    busy: np.ndarray

    @property
    def size(self) -> int:
        """Number of cells."""
        return len(self.row)


class Blocks(NamedTuple):
    """Runs of adjacent non-empty cells of one row, in ns since the profile start, clipped to the window."""

    row: np.ndarray
    start: np.ndarray
    end: np.ndarray
    count: np.ndarray
    busy: np.ndarray  # share of the block's width its events cover (above 1 when they overlap)


def no_cells() -> Cells:
    """No cells at all."""
    empty = np.zeros(0, dtype=np.int64)
    return Cells(empty, empty, empty, empty)


def count_cells(row: np.ndarray, start: np.ndarray, dur: np.ndarray, shift: int, *, by_row: bool = False) -> Cells:
    """The cells at ``shift`` of events given by display row, start and duration.

    Within each row the events must come in start order (a lane's id order is), so a stable sort by row is all it
    takes to group them: a radix sort on small integers (none when ``by_row``: the events already come by row).
    """
    if len(row) == 0:
        return no_cells()
    start = np.asarray(start, dtype=np.int64)
    bins = start >> shift
    busy = bins + 1  # the time to the end of the event's first bin, then what of it the event is busy (in place)
    busy <<= shift
    busy -= start
    np.minimum(busy, np.asarray(dur, dtype=np.int64), out=busy)
    return group_cells(row, bins, busy, by_row=by_row)


def group_cells(row: np.ndarray, bins: np.ndarray, busy: np.ndarray, *, by_row: bool = False) -> Cells:
    """Cells of events given by row, bin and busy ns (bins ascending within each row; rows ascending when
    ``by_row``)."""
    if len(row) == 0:
        return no_cells()
    r = np.asarray(row)  # compared in its own (narrow) type; the cells' rows are int64
    if not by_row:
        order = np.argsort(np.asarray(row, dtype=np.int32), kind="stable")
        r, bins, busy = r[order], bins[order], busy[order]
    b = bins
    new = np.empty(len(r), dtype=bool)
    new[0] = True
    new[1:] = (r[1:] != r[:-1]) | (b[1:] != b[:-1])
    first = np.flatnonzero(new)
    del new
    return Cells(r[first].astype(np.int64), b[first], np.diff(np.append(first, len(r))), np.add.reduceat(busy, first))


def count_cells_dense(row: np.ndarray, start: np.ndarray, dur: np.ndarray, shift: int, lo: int, hi: int) -> Cells:
    """:func:`count_cells` of events starting in bins ``lo..hi``, in any order, by counting over the (few) rows
    times bins of a window instead of sorting the events."""
    if len(row) == 0:
        return no_cells()
    start = np.asarray(start, dtype=np.int64)
    bins = start >> shift
    busy = np.minimum(np.asarray(dur, dtype=np.int64), ((bins + 1) << shift) - start)
    width = hi - lo + 1
    key = np.asarray(row, dtype=np.int64) * width + (bins - lo)
    counts = np.bincount(key)
    cells = np.flatnonzero(counts)
    sums = np.bincount(key, weights=busy)[cells]  # exact: sums of ns stay far below 2**53
    return Cells(cells // width, lo + cells % width, counts[cells], np.rint(sums).astype(np.int64))


def within(c: Cells, lo: int, hi: int) -> Cells:
    """The cells whose bin is in ``[lo, hi]``."""
    keep = (c.bin >= lo) & (c.bin <= hi)
    return Cells(*(a[keep] for a in c))


def combine(parts: list[Cells], lo: int, hi: int) -> Cells:
    """Cells of disjoint row sets (or of tiles of one row) with bins in ``[lo, hi]``, together, sorted."""
    parts = [p for p in parts if p.size]
    if not parts:
        return no_cells()
    c = Cells(*(np.concatenate(cols) for cols in zip(*parts)))
    key = c.row * (hi - lo + 1) + (c.bin - lo)
    order = np.argsort(key, kind="stable")
    return Cells(*(a[order] for a in c))


def subtract(c: Cells, drawn: Cells, lo: int, hi: int) -> Cells:
    """``c`` without the events counted in ``drawn`` (events drawn one by one), dropping cells left empty."""
    drawn = within(drawn, lo, hi)
    if drawn.size == 0:
        return c
    width = hi - lo + 1
    keys = c.row * width + (c.bin - lo)
    at = np.searchsorted(keys, drawn.row * width + (drawn.bin - lo))
    count, busy = c.count.copy(), c.busy.copy()
    np.subtract.at(count, at, drawn.count)
    np.subtract.at(busy, at, drawn.busy)
    keep = count > 0
    return Cells(c.row[keep], c.bin[keep], count[keep], busy[keep])


def merge_runs(c: Cells, shift: int, a: int, b: int) -> Blocks:
    """Blocks of ``[a, b)``: runs of cells of a row in adjacent bins, joined."""
    if c.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Blocks(empty, empty, empty, empty, np.zeros(0))
    new = np.empty(c.size, dtype=bool)
    new[0] = True
    new[1:] = (c.row[1:] != c.row[:-1]) | (c.bin[1:] != c.bin[:-1] + 1)
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, c.size - 1)
    start = np.maximum(c.bin[first] << shift, a)
    end = np.minimum((c.bin[last] + 1) << shift, b)
    busy = np.add.reduceat(c.busy, first).astype(np.float64)
    share = np.where(end > start, busy / np.maximum(end - start, 1.0), 0.0)
    return Blocks(c.row[first], start, end, np.add.reduceat(c.count, first), share)


def pixel_shift(ns_per_px: float) -> int:
    """The level whose bins are the widest not wider than a pixel (at least 1 ns)."""
    return max(int(np.floor(np.log2(max(ns_per_px, 1.0)))), 0)


def window_blocks(
    cells_at: Callable[[int, int, int], Cells], drawn: Callable[[int], Cells], a: int, b: int, ns_per_px: float,
    max_blocks: int,
) -> Blocks:  # fmt: skip
    """Density blocks of ``[a, b)``: cells of the level whose bins fit in a pixel, without the events ``drawn``,
    runs joined; a coarser level while there are more than ``max_blocks`` blocks (up to one bin for the window).

    ``cells_at(shift, lo, hi)`` gives the cells of bins ``lo..hi`` at ``shift``, ``drawn(shift)`` the cells of the
    events drawn one by one.
    """
    shift = pixel_shift(ns_per_px)
    while True:
        lo, hi = a >> shift, (b - 1) >> shift
        blocks = merge_runs(subtract(cells_at(shift, lo, hi), drawn(shift), lo, hi), shift, a, b)
        if len(blocks.row) <= max_blocks or lo == hi:
            return blocks
        shift += 1


def longest(dur: np.ndarray, ids: np.ndarray, max_items: int) -> np.ndarray:
    """Indices of the ``max_items`` longest events, ties to the lowest id (both read paths pick the same)."""
    order = np.lexsort((ids, -dur))
    return order[:max_items]


# -- stored forms -----------------------------------------------------------------------------------------------------


def _narrow(values: np.ndarray) -> np.ndarray:
    top = int(values.max()) if len(values) else 0
    for dtype in ("<u1", "<u2", "<u4"):
        if top < np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype("<i8")


CELLS_LEVEL = 6
"""zlib level of the cells: 9 made a 1M-event import 0.16 s slower for 0.3% smaller cells."""


def encode_cells(c: Cells, tile: int) -> bytes:
    """One lane's cells of one tile as compact bytes: the cells' keys (row, then bin in the tile) as gaps from the
    previous one (mostly 1: neighbouring bins), counts and busy ns, each in the narrowest unsigned integers, zlib'd."""
    keys = c.row * TILE_BINS + (c.bin - tile * TILE_BINS)
    gaps = np.diff(keys, prepend=keys[:1]) if c.size else keys
    arrays = [_narrow(x) for x in (gaps, c.count, c.busy)]
    header = np.array([c.size, int(keys[0]) if c.size else 0] + [x.dtype.itemsize for x in arrays], dtype="<u8")
    return zlib.compress(header.tobytes() + b"".join(x.tobytes() for x in arrays), CELLS_LEVEL)


_DTYPE = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<i8"}


def decode_cells(blob: bytes, tile: int) -> Cells:
    """The cells :func:`encode_cells` stored."""
    raw = zlib.decompress(bytes(blob))
    n, first, *sizes = np.frombuffer(raw, dtype="<u8", count=5).tolist()
    out, at = [], 40
    for size in sizes:
        out.append(np.frombuffer(raw, dtype=_DTYPE[size], count=n, offset=at).astype(np.int64))
        at += n * size
    keys = first + np.cumsum(out[0])
    return Cells(keys // TILE_BINS, tile * TILE_BINS + keys % TILE_BINS, out[1], out[2])


def encode_depth(depth: np.ndarray) -> bytes:
    """A lane's nesting depths (by id) as stored in ``timeline_lanes.depth``."""
    return zlib.compress(np.asarray(depth, dtype="<i2").tobytes(), 6)


def decode_depth(blob: bytes) -> np.ndarray:
    """The depths :func:`encode_depth` stored."""
    return np.frombuffer(zlib.decompress(bytes(blob)), dtype="<i2").astype(np.int16)


START_STEP = 256
"""Every this many events of a lane (by id), its start is kept in ``timeline_lanes.starts``: the ids of the events
starting in a time range are then known from memory, to within this many events at each end."""


def encode_starts(kept: np.ndarray) -> bytes:
    """The kept starts of a lane (``start[::START_STEP]`` of its events by id) as stored in
    ``timeline_lanes.starts``: zlib'd int64 differences."""
    return zlib.compress(np.diff(np.asarray(kept, dtype=np.int64), prepend=0).astype("<i8").tobytes(), 6)


def decode_starts(blob: bytes) -> np.ndarray:
    """The starts :func:`encode_starts` kept."""
    return np.cumsum(np.frombuffer(zlib.decompress(bytes(blob)), dtype="<i8"), dtype=np.int64)


def starting_within(starts: np.ndarray, count: int, t0: int, t1: int) -> tuple[int, int]:
    """Positions ``lo, hi`` in a lane of ``count`` events whose kept ``starts`` (:func:`decode_starts`) these are:
    every event starting in ``[t0, t1)`` is at a position in ``lo .. hi - 1`` (with at most :data:`START_STEP`
    others at each end). A lane's events are in start order."""
    lo = max(int(np.searchsorted(starts, t0, "left")) - 1, 0) * START_STEP
    above = int(np.searchsorted(starts, t1, "left"))
    return lo, count if above >= len(starts) else above * START_STEP


def chunk_depth(parent: np.ndarray, first: int, known: np.ndarray) -> np.ndarray:
    """Depths of a lane's events ``first .. first + len(parent) - 1`` (positions in the lane) from their parents'
    positions (-1 at roots; a parent always comes before its child), given ``known`` depths of positions before
    ``first``: hops inside the chunk by pointer jumping, then the depth of the first ancestor before it."""
    hops = np.zeros(len(parent), dtype=np.int64)
    cur = parent.astype(np.int64).copy()
    todo = np.flatnonzero(cur >= first)
    while len(todo):
        hops[todo] += 1
        cur[todo] = parent[cur[todo] - first]
        todo = todo[cur[todo] >= first]
    before = cur >= 0
    out = hops
    out[before] += known[cur[before]].astype(np.int64) + 1
    return out
