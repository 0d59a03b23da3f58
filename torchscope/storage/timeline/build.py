"""Building a profile's timeline tables once, when it is stored: depths, display rows, the density pyramid, names.

:func:`build_timeline` reads the profile's events lane by lane in bounded chunks of ids (a lane's events have
contiguous ids in start order), so memory stays at a few numpy arrays of the largest lane, never a Python object per
event beyond one chunk.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, select, text

from torchscope.errors import StoreError
from torchscope.storage.bulk import insert_rows
from torchscope.storage.driver_sql import chunks, fetch_ints
from torchscope.storage.profile.calc import duration_levels
from torchscope.storage.profile.kinds import KIND
from torchscope.storage.profile.schema import profile_lanes, profiles
from torchscope.storage.timeline import lod, tiles
from torchscope.storage.timeline.schema import timeline_lanes, timeline_names, timeline_tiles

CHUNK = 262_144
"""Events read per query while building."""
CELL_RATIO = 1 / 2
"""A lane's pyramid stops above the first level with more cells than this share of its events: finer windows are
answered from raw events, which at that zoom are few per pixel."""
MIN_SHIFT = 10
"""Finest level ever stored: bins of 1.024 µs."""
LARGE_LANE = 1 << 20
"""A lane this large waits for the events insert to end before its pyramid is built (``compute_timeline``): the
pyramid takes about 20 bytes an event (depths, the row order, a level's cells), the insert's trace ids are freed
by then."""

_LANE_COLUMNS = ["id", "pid", "tid", "kind", "device", "stream", "label", "sort", "event_count"]


Fetch = Callable[[int, int, int], np.ndarray]
"""``fetch(lane's first id, first id, n)``: events ``first id .. + n - 1`` as rows ``start, dur, kind, name_id,
parent`` (the parent's position in the lane, -1 for none): see :func:`_read_chunk`."""


class ColumnsFetch:
    """A :data:`Fetch` over a profile's event columns in memory, by position (event ``i`` has id ``base + i``): the
    importer's, just stored; no read back. A lane's starts and durations are views of them (:meth:`times`)."""

    def __init__(self, base: int, start: np.ndarray, dur: np.ndarray, kind: np.ndarray, name_id: np.ndarray,
                 parent: np.ndarray) -> None:  # fmt: skip
        self.base, self.start, self.dur, self.kind, self.name_id, self.parent = base, start, dur, kind, name_id, parent

    def __call__(self, lane_first: int, first: int, count: int) -> np.ndarray:
        lo, hi = first - self.base, first - self.base + count
        up = self.parent[lo:hi]
        return np.stack((self.start[lo:hi], self.dur[lo:hi], self.kind[lo:hi].astype(np.int64), self.name_id[lo:hi],
                         np.where(up >= 0, up - lane_first, -1)), axis=1)  # fmt: skip

    def times(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Starts and durations of events ``first .. first + count - 1`` (ids), as views (not copies)."""
        lo = first - self.base
        return self.start[lo : lo + count], self.dur[lo : lo + count]


@dataclass
class TimelineRows:
    """A profile's timeline tables as computed (:func:`compute_timeline`), before they are stored."""

    tiles: list[tuple[int, int, int, bytes]] = field(default_factory=list)  # (shift, tile, lane id, cells)
    lanes: list[tuple[int, int, int, int, bytes, bytes]] = field(default_factory=list)
    """(lane id, row0, rows, finest, depth, starts)"""
    names: list[tuple[Any, ...]] = field(default_factory=list)  # (lane id, name id, calls, first, last, min, max)


def build_timeline(conn: Connection, profile_id: int, fetch: Fetch | None = None) -> None:
    """Write ``timeline_lanes``, ``timeline_tiles`` and ``timeline_names`` of a stored profile (replacing any).

    Call it in the transaction that inserted the profile's events, after them. ``fetch`` gives the events from
    memory (the importer still holds them); by default they are read back from the database.
    """
    profile_id = int(profile_id)
    lanes, first_id, duration = timeline_inputs(conn, profile_id)
    rows = compute_timeline(lanes, first_id, duration, fetch or functools.partial(_read_chunk, conn))
    store_timeline(conn, profile_id, rows)


def timeline_inputs(conn: Connection, profile_id: int) -> tuple[pd.DataFrame, int, int]:
    """What :func:`compute_timeline` needs of a stored profile: its lanes, first event id and duration."""
    meta = conn.execute(
        select(profiles.c.first_event_id, profiles.c.duration_ns).where(profiles.c.id == profile_id)
    ).one()
    lanes = pd.DataFrame(
        conn.execute(
            select(*(profile_lanes.c[c] for c in _LANE_COLUMNS))
            .where(profile_lanes.c.profile_id == profile_id)
            .order_by(profile_lanes.c.id)
        ).all(),
        columns=_LANE_COLUMNS,
    )
    first_id = meta.first_event_id
    if first_id is None:  # stored before profiles recorded it: the first lane's lowest id (the reads need it)
        first_id = _lowest_id(conn, profile_id, lanes)
    return lanes, int(first_id), int(meta.duration_ns)


def compute_timeline(
    lanes: pd.DataFrame, first_id: int, duration: int, fetch: Fetch, before_large: Callable[[], object] | None = None
) -> TimelineRows:
    """The timeline tables of a profile whose ``lanes`` (rows of profile_lanes, by id) hold events ``first_id ..``,
    read through ``fetch``. Touches no database: it can run beside the insert of the events it reads.

    ``before_large`` is called before a lane of more than :data:`LARGE_LANE` events (once): it can wait for memory
    that the caller is about to free.
    """
    top = max(duration, 1).bit_length()  # one bin of 2**top ns holds the whole profile
    out = TimelineRows()
    counts, finest, depths, starts, names = [], [], [], [], []
    for lane in lanes.itertuples(index=False):
        count = int(lane.event_count)
        if count > LARGE_LANE and before_large is not None:
            before_large()
            before_large = None
        start, dur, depth, lane_names = _read_lane(first_id, count, lane.kind == "device", fetch)
        first_id += count
        names.append(lane_names)
        starts.append(tiles.encode_starts(start[:: tiles.START_STEP]))
        levels = pyramid(depth, start, dur, top)
        out.tiles.extend((s, t, int(lane.id), blob) for s, t, blob in levels)
        counts.append(int(depth.max()) + 1 if count else 1)
        finest.append(min((s for s, _, _ in levels), default=top))
        depths.append(tiles.encode_depth(depth))
    layout = lod.lane_layout(lanes, np.array(counts, dtype=np.int64))
    row0 = dict(zip(layout["id"].tolist(), layout["row0"].tolist()))
    out.lanes = [(int(i), int(row0[int(i)]), r, f, d, s)
                 for i, r, f, d, s in zip(lanes["id"], counts, finest, depths, starts)]  # fmt: skip
    out.names = [(int(lane_id), *row) for lane_id, part in zip(lanes["id"], names)
                 for row in zip(*(c.tolist() for c in part))]  # fmt: skip
    return out


def store_timeline(conn: Connection, profile_id: int, rows: TimelineRows) -> None:
    """Replace the stored timeline tables of ``profile_id`` with ``rows``."""
    for table in (timeline_lanes, timeline_tiles, timeline_names):
        conn.execute(delete(table).where(table.c.profile_id == profile_id))
    insert_rows(conn, timeline_tiles, ("profile_id", "shift", "tile", "lane_id", "cells"),
                [(profile_id, *row) for row in rows.tiles])  # fmt: skip
    insert_rows(conn, timeline_lanes, ("lane_id", "profile_id", "row0", "rows", "finest_shift", "depth", "starts"),
                [(lane_id, profile_id, *rest) for lane_id, *rest in rows.lanes])  # fmt: skip
    insert_rows(conn, timeline_names, ("profile_id", "lane_id", "name_id", "calls", "first_start", "last_end",
                                       "min_level", "max_level"),
                [(profile_id, *row) for row in rows.names])  # fmt: skip


def store_starts(conn: Connection, profile_id: int) -> None:
    """Write ``timeline_lanes.starts`` of a stored profile from its events (a store written before it had them):
    one point read per kept start."""
    lanes, first_id, _ = timeline_inputs(conn, profile_id)
    for lane_id, count in zip(lanes["id"].tolist(), lanes["event_count"].tolist()):
        ids = range(first_id, first_id + int(count), tiles.START_STEP)
        parts = [fetch_ints(conn, EXACT_TIMES_SQL, {"ids": part}, 3) for part in chunks(ids)]
        kept = np.concatenate(parts)[:, 1] if parts else np.zeros(0, dtype=np.int64)
        if len(kept) != len(ids):
            raise StoreError(f"the events of profile {profile_id} are not stored contiguously: re-import it")
        blob = tiles.encode_starts(kept)
        conn.execute(timeline_lanes.update().where(timeline_lanes.c.lane_id == int(lane_id)).values(starts=blob))
        first_id += int(count)


def _lowest_id(conn: Connection, profile_id: int, lanes: pd.DataFrame) -> int:
    """The profile's first event id, found and recorded in ``profiles.first_event_id``."""
    busy = lanes[lanes["event_count"] > 0]
    if busy.empty:
        return 0
    lowest = conn.execute(
        text("SELECT MIN(id) FROM profile_events WHERE lane_id = :lane"), {"lane": int(busy["id"].iloc[0])}
    ).scalar_one()
    conn.execute(profiles.update().where(profiles.c.id == profile_id).values(first_event_id=int(lowest)))
    return int(lowest)


def pyramid(depth: np.ndarray, start: np.ndarray, dur: np.ndarray, top: int) -> list[tuple[int, int, bytes]]:
    """The stored levels of one lane, ``(shift, tile, cells)`` (rows are depths in the lane), from ``top`` (one
    bin) down to the last level with at most :data:`CELL_RATIO` cells per event (never below :data:`MIN_SHIFT`).

    The arrays are only read. Events are counted :data:`PYRAMID_SLICE` at a time, in row order, so what a level
    holds beyond its cells (about 24 bytes each) stays small; a level is given up as soon as it has too many."""
    out: list[tuple[int, int, bytes]] = []
    if len(start) == 0:
        return out
    order = _by_row(depth)
    for shift in range(top, MIN_SHIFT - 1, -1):
        c = _level_cells(order, depth, start, dur, shift, None if shift == top else len(start) * CELL_RATIO)
        if c is None:
            break
        out.extend((shift, tile, blob) for tile, blob in _encode_tiles(c))
        del c  # before the next level's cells are counted
    return out


def _encode_tiles(c: tiles.Cells) -> list[tuple[int, bytes]]:
    """A level's cells (by row, then bin) as ``(tile, encoded cells)`` by tile; taken a range of tiles at a time
    (about :data:`PYRAMID_SLICE` cells each when they are spread evenly), so the sorting copies are a range's."""
    out: list[tuple[int, bytes]] = []
    if c.size == 0:
        return out
    first, last = int(c.bin.min()) >> tiles.TILE_BITS, int(c.bin.max()) >> tiles.TILE_BITS
    ranges = min(last - first + 1, c.size // PYRAMID_SLICE + 1)
    edges = np.linspace(first, last + 1, ranges + 1).astype(np.int64).tolist()
    for lo_tile, hi_tile in zip(edges[:-1], edges[1:]):
        pick = np.flatnonzero((c.bin >= lo_tile << tiles.TILE_BITS) & (c.bin < hi_tile << tiles.TILE_BITS))
        if not len(pick):
            continue
        tile = c.bin[pick] >> tiles.TILE_BITS
        by_tile = np.argsort(tile, kind="stable")  # cells come by (row, bin): by tile, rows kept in order
        pick, tile = pick[by_tile], tile[by_tile]
        part = tiles.Cells(*(a[pick].astype(np.int64) for a in c))
        cuts = np.flatnonzero(np.diff(tile)) + 1
        for lo, hi in zip(np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [len(tile)])).tolist()):
            cells = tiles.Cells(*(a[lo:hi] for a in part))
            out.append((int(tile[lo]), tiles.encode_cells(cells, int(tile[lo]))))
    return out


PYRAMID_SLICE = 1 << 20
"""Events counted into cells at a time while a lane's pyramid is built (:func:`pyramid`)."""


def _by_row(depth: np.ndarray) -> np.ndarray:
    """Positions of a lane's events by display row (their depth), in position order (start order) within a row: a
    counting sort, :data:`PYRAMID_SLICE` events at a time (each slice's events go to the next free places of
    their rows)."""
    order = np.empty(len(depth), dtype=np.int32 if len(depth) < 1 << 31 else np.int64)
    if not len(depth):
        return order
    rows = int(depth.max()) + 1
    free = np.concatenate(([0], np.cumsum(np.bincount(depth, minlength=rows))[:-1]))  # each row's next place
    for lo in range(0, len(depth), PYRAMID_SLICE):
        piece = depth[lo : lo + PYRAMID_SLICE]
        by_row = np.argsort(piece, kind="stable")
        counts = np.bincount(piece, minlength=rows)
        first_in_piece = np.concatenate(([0], np.cumsum(counts)[:-1]))
        row = piece[by_row]
        order[free[row] + np.arange(len(piece)) - first_in_piece[row]] = by_row + lo
        free += counts
    return order


def _level_cells(
    order: np.ndarray, depth: np.ndarray, start: np.ndarray, dur: np.ndarray, shift: int, limit: float | None
) -> tiles.Cells | None:
    """The cells at ``shift`` of a lane's events taken in ``order`` (:func:`_by_row`), a slice at a time; None as soon
    as they are more than ``limit``. Rows are int32, counts int32 while they fit: 24 bytes a cell."""
    parts: list[tiles.Cells] = []
    total = 0
    count_type = np.int32 if len(order) < 1 << 31 else np.int64
    for lo in range(0, len(order), PYRAMID_SLICE):
        pick = order[lo : lo + PYRAMID_SLICE]
        c = tiles.count_cells(depth[pick], start[pick], dur[pick], shift, by_row=True)
        if parts and parts[-1].row[-1] == c.row[0] and parts[-1].bin[-1] == c.bin[0]:  # a cell cut by the slice
            parts[-1].count[-1] += c.count[0]
            parts[-1].busy[-1] += c.busy[0]
            c = tiles.Cells(*(a[1:] for a in c))
        if c.size:
            parts.append(tiles.Cells(c.row.astype(np.int32), c.bin, c.count.astype(count_type), c.busy))
            total += c.size
        if limit is not None and total > limit:
            return None
    return tiles.Cells(*(np.concatenate(columns) for columns in zip(*parts)))


def _read_lane(
    first_id: int, count: int, device: bool, fetch: Fetch
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Start, duration and depth of a lane's events (ids ``first_id ..``), and its names' calls and spans. Start and
    duration are views of a :class:`ColumnsFetch`'s columns, else read into arrays of their own."""
    in_memory = isinstance(fetch, ColumnsFetch)
    if in_memory:
        start, dur = fetch.times(first_id, count)
    else:
        start, dur = np.empty(count, dtype=np.int64), np.empty(count, dtype=np.int64)
    depth = np.zeros(count, dtype=np.int16)
    annotation = np.zeros(count, dtype=bool)
    names = []
    for lo in range(0, count, CHUNK):
        n = min(CHUNK, count - lo)
        cols = fetch(first_id, first_id + lo, n)
        if not in_memory:
            start[lo : lo + n], dur[lo : lo + n] = cols[:, 0], cols[:, 1]
        kind, name_id, parent = cols[:, 2], cols[:, 3], cols[:, 4]
        annotation[lo : lo + n] = kind == KIND["gpu_user_annotation"]
        own = np.arange(lo, lo + n)
        parent = np.where((parent >= 0) & (parent < own), parent, -1)  # a parent comes before its child, in the lane
        if not device:
            depth[lo : lo + n] = tiles.chunk_depth(parent, lo, depth)
        level = duration_levels(cols[:, 1]).astype(np.int64)
        names.append(_merge_names([(name_id, np.ones(n, dtype=np.int64), cols[:, 0], cols[:, 0] + cols[:, 1],
                                    level, level)], arrays=True))  # fmt: skip
    if device and annotation.any():
        # device streams do not nest, but a record_function range projected on a stream spans its kernels
        depth = (~annotation).astype(np.int16)
    return start, dur, depth, _merge_names(names, arrays=True)


_CHUNK_SQL = (
    "SELECT start, dur, kind, name_id, COALESCE(parent - {first}, -1) FROM profile_events "
    "WHERE id >= {lo} AND id < {hi} ORDER BY id"
)
_PACKED_CHUNK_SQL = (
    "SELECT CASE WHEN start < {start_cap} AND dur < {dur_cap} THEN start | (dur << 41) ELSE -1 END, "
    "kind | (CAST(name_id AS BIGINT) << 4) | ((COALESCE(parent - {first}, -1) + 1) << 32) "
    "FROM profile_events WHERE id >= {lo} AND id < {hi} ORDER BY id"
)
EXACT_TIMES_SQL = "SELECT id, start, dur FROM profile_events WHERE id IN ({ids}) ORDER BY id"
"""Start and duration of events by id (``{ids}`` a list): those too wide to travel packed."""
_ID_TABLES = ("names", "profile_events", "profile_lanes", "profiles")


def _read_chunk(conn: Connection, first: int, lo: int, n: int) -> np.ndarray:
    """Events ``lo .. lo + n - 1`` of a lane starting at id ``first`` as rows ``start, dur, kind, name_id, parent``
    (the parent's position in the lane, -1 for none).

    A fetch costs a Python object per value, so values travel packed in two integers: start and duration (when
    they fit: starts within 36 min, events under 4 ms; the few others are read again), and kind, name id and parent.
    """
    span = {"first": first, "lo": lo, "hi": lo + n}
    if count_above(conn, "names", 1 << 28) or n >= 1 << 31:
        return fetch_ints(conn, _CHUNK_SQL, span, 5)
    packed = fetch_ints(conn, _PACKED_CHUNK_SQL, {**span, "start_cap": 1 << 41, "dur_cap": 1 << 22}, 2)
    if len(packed) != n:
        raise StoreError(f"profile events {lo}..{lo + n - 1} are not stored contiguously: re-import the profile")
    times, rest = packed[:, 0], packed[:, 1]
    start, dur = times & ((1 << 41) - 1), times >> 41
    wide = np.flatnonzero(times < 0)
    for ids in chunks(wide + lo):
        exact = fetch_ints(conn, EXACT_TIMES_SQL, {"ids": ids}, 3)
        start[exact[:, 0] - lo], dur[exact[:, 0] - lo] = exact[:, 1], exact[:, 2]
    parent = (rest >> 32) - 1
    return np.stack((start, dur, rest & 0xF, (rest >> 4) & 0x0FFFFFFF, parent), axis=1)


def _merge_names(parts: list[tuple[np.ndarray, ...]], *, arrays: bool = False) -> Any:
    """``(name id, calls, first start, last end, lowest level, highest level)`` per name over chunks (or lanes):
    rows, or with ``arrays`` the six columns."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(6)) if arrays else []
    ids, calls, first, last, low, high = (np.concatenate(cols) for cols in zip(*parts))
    distinct, inverse = np.unique(ids, return_inverse=True)
    out = [distinct, np.bincount(inverse, weights=calls, minlength=len(distinct)).astype(np.int64)]
    for values, reduce, init in ((first, np.minimum, np.iinfo(np.int64).max), (last, np.maximum, 0),
                                 (low, np.minimum, np.iinfo(np.int64).max), (high, np.maximum, 0)):  # fmt: skip
        acc = np.full(len(distinct), init, dtype=np.int64)
        reduce.at(acc, inverse, values)
        out.append(acc)
    return tuple(out) if arrays else list(zip(*(c.tolist() for c in out)))


def count_above(conn: Any, table: str, value: int) -> bool:
    """Whether ``table`` has an id of at least ``value`` (name ids must fit in 28 bits to travel packed)."""
    if table not in _ID_TABLES:
        raise ValueError(f"count_above reads one of {', '.join(_ID_TABLES)}, not {table!r}")
    sql = f"SELECT 1 FROM {table} WHERE id >= :value LIMIT 1"  # the table name from the fixed list above
    return conn.execute(text(sql), {"value": int(value)}).first() is not None
