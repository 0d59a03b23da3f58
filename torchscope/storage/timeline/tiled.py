"""Timeline reads of large profiles from SQL and the stored pyramid, without loading the profile.

A window costs: the events drawn one by one by index range scans on ``(lane_id, level, id)`` from the highest
level down (an event of level L lasts less than ``2**L`` ns, so one overlapping ``[a, b)`` starts in
``[a - 2**L, b)``, whose ids the lane's kept starts give; levels stop once ``max_items`` are found or the level's
events are under a pixel), the density
of one pyramid level over the window's one or two tiles per lane, and, for lanes zoomed in below their finest
stored level, the raw events starting in the window (one primary-key range scan per lane: a lane's events have
contiguous ids in start order). The answer equals :func:`~torchscope.storage.timeline.lod.window` on a loaded
index of the same profile.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from torchscope.errors import StoreError
from torchscope.storage.driver_sql import IN_CHUNK, chunks, fetch_ints, named
from torchscope.storage.profile.kinds import KIND
from torchscope.storage.timeline import lod, tiles

EVENT_FIELDS = ("id", "lane", "kind", "name_id", "start", "dur", "depth")
"""Columns of the event arrays the reads here return (``lane``: position of the lane in the profile's lanes)."""


class Layout:
    """What the reads of one large profile keep: lanes, their rows and id ranges, and depths decoded on demand."""

    def __init__(self, conn: Connection, lanes: pd.DataFrame, meta: dict[str, Any]) -> None:
        stored = pd.DataFrame(
            conn.execute(
                text("SELECT lane_id, row0, rows, finest_shift, starts FROM timeline_lanes WHERE profile_id = :p"),
                {"p": int(meta["id"])},
            ).all(),
            columns=["id", "row0", "rows", "finest_shift", "starts"],
        )
        if len(stored) != len(lanes):
            raise StoreError(f"profile {meta['id']} has no stored timeline; open the store once with write access")
        lanes = lanes.reset_index(drop=True).merge(stored, on="id", how="left", suffixes=("_lane", ""))
        self.lanes = lod.lane_layout(lanes.drop(columns=["row0", "rows"]), lanes["rows"].to_numpy(np.int64))
        self.profile_id = int(meta["id"])
        self.duration = int(meta["duration_ns"])
        self.top = max(self.duration, 1).bit_length()
        self.event_count = int(meta["event_count"])
        self.lane_ids = lanes["id"].to_numpy(np.int64)  # by position (lanes come by id)
        self.count = lanes["event_count"].to_numpy(np.int64)
        self.first_id = int(meta["first_event_id"] or 0) + np.concatenate(([0], np.cumsum(self.count)[:-1]))
        self.row0 = lanes["row0"].to_numpy(np.int64)
        self.finest = lanes["finest_shift"].to_numpy(np.int64)
        self.max_level = lanes["max_level"].to_numpy(np.int64)
        self.device = (lanes["kind"] == "device").to_numpy()
        # every START_STEP-th start of each lane (None in a store that lacks them: then a lane's whole id range)
        self.starts = [None if blob is None else tiles.decode_starts(blob) for blob in lanes["starts"].tolist()]
        self._depth: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def ids_starting(self, lane: int, t0: int, t1: int) -> tuple[int, int]:
        """Ids ``first, last`` (``last`` excluded) holding every event of the lane at position ``lane`` that starts
        in ``[t0, t1)``, and at most :data:`~torchscope.storage.timeline.tiles.START_STEP` others at each end."""
        count, starts, first = int(self.count[lane]), self.starts[lane], int(self.first_id[lane])
        lo, hi = (0, count) if starts is None else tiles.starting_within(starts, count, t0, t1)
        return first + lo, first + hi

    def lane_of(self, ids: np.ndarray) -> np.ndarray:
        """Lane positions of event ids (of this profile)."""
        return np.searchsorted(self.first_id, ids, "right") - 1

    def depth(self, conn: Connection, lane: int) -> np.ndarray:
        """Nesting depth of each event of a lane, by id (decoded once)."""
        with self._lock:
            got = self._depth.get(lane)
        if got is None:
            blob = conn.execute(
                text("SELECT depth FROM timeline_lanes WHERE lane_id = :lane"), {"lane": int(self.lane_ids[lane])}
            ).scalar_one()
            got = tiles.decode_depth(blob)
            with self._lock:
                self._depth[lane] = got
        return got

    def depths(self, conn: Connection, lane: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Depths of events given by lane position and id."""
        out = np.zeros(len(ids), dtype=np.int64)
        for ln in np.unique(lane).tolist():
            at = lane == ln
            out[at] = self.depth(conn, ln)[ids[at] - self.first_id[ln]]
        return out

    def contains(self, event_id: int) -> bool:
        """Whether ``event_id`` is an event of this profile."""
        first = int(self.first_id[0]) if len(self.first_id) else 0
        return first > 0 and first <= event_id < first + self.event_count


# -- the window -------------------------------------------------------------------------------------------------------


def window(
    conn: Connection, t: Layout, a: int, b: int, px: int, max_items: int, max_blocks: int
) -> tuple[dict[str, np.ndarray], tiles.Blocks, int, float]:
    """``(drawn events, blocks, in_window, ns_per_px)`` of ``[a, b)``, as :func:`lod.window` answers them."""
    px = max(int(px), 1)
    npp = max((b - a) / px, lod.MIN_NS_PER_PX)
    drawn = longest_overlapping(conn, t, a, b, math.ceil(npp), max_items)
    row = t.row0[drawn["lane"]] + drawn["depth"]
    by_start = np.lexsort((drawn["start"], row))

    def drawn_cells(shift: int) -> tiles.Cells:
        return tiles.count_cells(row[by_start], drawn["start"][by_start], drawn["dur"][by_start], shift)

    blocks = tiles.window_blocks(lambda s, lo, hi: cells(conn, t, s, lo, hi), drawn_cells, a, b, npp, max_blocks)
    return drawn, blocks, len(drawn["id"]) + int(blocks.count.sum()), npp


_LONGEST_SQL = (
    "SELECT id, kind, name_id, start, dur FROM profile_events WHERE ({ranges}) AND level = {level} "
    "AND start >= {lo} AND start < {b} AND dur >= {min_dur} AND (start + dur > {a} OR "
    "(dur = 0 AND start >= {a})) ORDER BY dur DESC, id LIMIT {need}"
)
_LONGEST_NAMED_SQL = _LONGEST_SQL.replace(" ORDER BY", " AND name_id IN ({names}) ORDER BY")


def longest_overlapping(
    conn: Connection, t: Layout, a: int, b: int, min_dur: int, max_items: int, name_ids: list[int] | None = None
) -> dict[str, np.ndarray]:
    """The ``max_items`` longest events overlapping ``[a, b)`` lasting at least ``min_dur`` ns (of ``name_ids``
    when given), ties to the lowest id, by id: one index range scan per level, from the highest level down (every
    event of a level is longer than any of the levels below, so each level only needs the longest still missing).
    Long lane or name lists go in parts (each part's longest, the longest of all picked at the end)."""
    found: list[np.ndarray] = []
    total = 0
    sql = _LONGEST_SQL if name_ids is None else _LONGEST_NAMED_SQL
    name_parts = list(chunks(name_ids or [-1], IN_CHUNK // 2))
    for level in range(int(t.max_level.max(initial=0)), -1, -1):
        if max_items <= 0 or total >= max_items or (1 << level) - 1 < min_dur:
            break
        lowest = max(a - (1 << level), -(1 << 62))
        ranges = _id_ranges(t, np.flatnonzero((t.max_level >= level) & (t.count > 0)), lowest, b)
        span = {"level": level, "lo": lowest, "a": a, "b": b, "min_dur": min_dur, "need": max_items - total}
        for part in range(0, len(ranges), _RANGES_PER_QUERY):
            lanes = ranges[part : part + _RANGES_PER_QUERY]
            in_ranges = sql.replace("{ranges}", _in_ranges(len(lanes)))
            bounds = {f"{key}_{i}": v for i, lane in enumerate(lanes) for key, v in zip(_RANGE_FIELDS, lane)}
            for name_part in name_parts:
                rows = fetch_ints(conn, in_ranges, {**span, **bounds, "names": name_part}, 5)
                if len(rows):
                    found.append(rows)
                    total += len(rows)
    rows = np.concatenate(found) if found else np.zeros((0, 5), dtype=np.int64)
    rows = rows[np.sort(tiles.longest(rows[:, 4], rows[:, 0], max(max_items, 0)))]
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    return event_arrays(conn, t, rows)


_RANGE_FIELDS = ("lane", "first", "last")
_RANGES_PER_QUERY = IN_CHUNK // 6
"""Lanes (three bound values each) per statement of :func:`longest_overlapping`, beside half a chunk of names."""


def _id_ranges(t: Layout, lanes: np.ndarray, t0: int, t1: int) -> list[tuple[int, int, int]]:
    """``(lane id, first id, last id)`` of the lanes at positions ``lanes`` holding events starting in ``[t0, t1)``
    (:meth:`Layout.ids_starting`)."""
    ranges = [(int(t.lane_ids[lane]), *t.ids_starting(lane, t0, t1)) for lane in lanes.tolist()]
    return [r for r in ranges if r[1] < r[2]]


@functools.lru_cache(maxsize=64)
def _in_ranges(n: int) -> str:
    """A condition for ``n`` lanes' id ranges (fields ``lane_i``, ``first_i``, ``last_i``): one index range scan
    each."""
    return " OR ".join(f"(lane_id = {{lane_{i}}} AND id >= {{first_{i}}} AND id < {{last_{i}}})" for i in range(n))


def event_arrays(conn: Connection, t: Layout, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Rows ``id, kind, name_id, start, dur`` as the columns of :data:`EVENT_FIELDS`."""
    ids = rows[:, 0]
    lane = t.lane_of(ids)
    return {"id": ids, "lane": lane, "kind": rows[:, 1], "name_id": rows[:, 2], "start": rows[:, 3],
            "dur": rows[:, 4], "depth": t.depths(conn, lane, ids)}  # fmt: skip


def cells(conn: Connection, t: Layout, shift: int, lo: int, hi: int) -> tiles.Cells:
    """Cells of bins ``lo..hi`` at ``shift`` over every lane: the stored tiles where the lane has that level, its
    raw events where the level is finer than the lane's finest (and above the top level, the top re-binned: there a
    bin holds whole events)."""
    if shift > t.top:
        top = cells(conn, t, t.top, lo << (shift - t.top), ((hi + 1) << (shift - t.top)) - 1)
        return _rebin(top, shift - t.top)
    parts = []
    stored = (t.finest <= shift) & (t.count > 0)
    if stored.any():
        position = {int(v): i for i, v in enumerate(t.lane_ids.tolist())}
        sql = text(
            "SELECT lane_id, tile, cells FROM timeline_tiles WHERE profile_id = :p AND shift = :s "
            "AND tile >= :t0 AND tile <= :t1"
        )
        params = {"p": t.profile_id, "s": shift, "t0": lo >> tiles.TILE_BITS, "t1": hi >> tiles.TILE_BITS}
        for lane_id, tile, blob in conn.execute(sql, params).all():
            c = tiles.within(tiles.decode_cells(blob, int(tile)), lo, hi)
            parts.append(c._replace(row=c.row + t.row0[position[int(lane_id)]]))
    for lane in np.flatnonzero(~stored & (t.count > 0)).tolist():
        parts.append(raw_cells(conn, t, lane, shift, lo, hi))
    return tiles.combine(parts, lo, hi)


def _rebin(c: tiles.Cells, by: int) -> tiles.Cells:
    """Cells of a level ``by`` levels coarser (exact where no event crosses a bin's end: above the top level)."""
    merged = tiles.Cells(c.row, c.bin >> by, c.count, c.busy)
    if merged.size == 0:
        return merged
    new = np.empty(merged.size, dtype=bool)
    new[0] = True
    new[1:] = (merged.row[1:] != merged.row[:-1]) | (merged.bin[1:] != merged.bin[:-1])
    first = np.flatnonzero(new)
    return tiles.Cells(merged.row[first], merged.bin[first], np.add.reduceat(merged.count, first),
                       np.add.reduceat(merged.busy, first))  # fmt: skip


_BIN = "(start >> {shift})"
_ROOM = f"((({_BIN} + 1) << {{shift}}) - start)"  # ns from an event's start to the end of its bin
_RAW_CELLS_SQL = (
    f"SELECT ({_BIN} - {{lo}}) | ((CASE WHEN dur < {_ROOM} THEN dur ELSE {_ROOM} END) << {{bits}}) "
    "FROM profile_events WHERE id >= {first} AND id < {last} ORDER BY id"
)


def raw_cells(conn: Connection, t: Layout, lane: int, shift: int, lo: int, hi: int) -> tiles.Cells:
    """Cells of bins ``lo..hi`` at ``shift`` of one lane from its raw events: one primary-key range scan (a lane's
    ids follow its start times), each event's bin and busy ns computed by the database and packed in one integer
    (a Python object per row is what a fetch costs)."""
    first, last = _first_at(conn, t, lane, lo << shift), _first_at(conn, t, lane, (hi + 1) << shift)
    if last <= first:
        return tiles.no_cells()
    bits = (hi - lo + 1).bit_length()
    params = {"shift": shift, "lo": lo, "bits": bits, "first": first, "last": last}
    packed = fetch_ints(conn, _RAW_CELLS_SQL, params, 1)[:, 0]
    at = first - int(t.first_id[lane])
    depth = t.depth(conn, lane)[at : at + len(packed)].astype(np.int64)
    return tiles.group_cells(t.row0[lane] + depth, lo + (packed & ((1 << bits) - 1)), packed >> bits)


def _first_at(conn: Connection, t: Layout, lane: int, time: int) -> int:
    """The lowest id of the lane's events starting at or after ``time`` (one past its last when none): a binary
    search by primary key, since a lane's ids follow its start times, between the kept starts around ``time``."""
    lo, hi = t.ids_starting(lane, time, time)
    sql = named("SELECT start FROM profile_events WHERE id = {id}", conn.dialect.name)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        while lo < hi:
            mid = (lo + hi) // 2
            cursor.execute(sql, {"id": mid})
            if cursor.fetchone()[0] < time:
                lo = mid + 1
            else:
                hi = mid
    finally:
        cursor.close()
    return lo


# -- the minimap, search and one event ---------------------------------------------------------------------------------


def minimap(conn: Connection, t: Layout, bins: int) -> np.ndarray:
    """Events per lane (by position) and time bin of the whole profile, from a pyramid level with bins of at most
    an eighth of a minimap bin (a lane's finest level when coarser): ``n_lanes x bins``."""
    bins = max(int(bins), 1)
    span = max(t.duration, 1)
    target = min(max(int(math.floor(math.log2(max(span / bins, 1.0)))) - 3, 0), t.top)
    out = np.zeros((len(t.lane_ids), bins), dtype=np.int64)
    position = {int(v): i for i, v in enumerate(t.lane_ids.tolist())}
    for shift in sorted({max(target, int(f)) for f in t.finest[t.count > 0]}):
        wanted = {int(t.lane_ids[i]) for i in np.flatnonzero((np.maximum(target, t.finest) == shift) & (t.count > 0))}
        sql = text("SELECT lane_id, tile, cells FROM timeline_tiles WHERE profile_id = :p AND shift = :s")
        for lane_id, tile, blob in conn.execute(sql, {"p": t.profile_id, "s": shift}).all():
            if int(lane_id) not in wanted:
                continue
            c = tiles.decode_cells(blob, int(tile))
            col = np.clip((c.bin << shift) * bins // span, 0, bins - 1)
            np.add.at(out[position[int(lane_id)]], col, c.count)
    return out


_SEARCH_SQL = (  # ORDER BY id: start order within a lane, as the index (lane_id, level, id) gives the rows
    "SELECT id, kind, name_id, start, dur FROM profile_events WHERE lane_id = {lane} AND level = {level} "
    "AND id >= {first} AND id < {last} AND start >= {lo} AND start < {b} AND name_id IN ({names}) AND "
    "(start + dur > {a} OR (dur = 0 AND start >= {a})) ORDER BY id LIMIT {need}"
)


def search(
    conn: Connection, t: Layout, name_ids: list[int], levels: dict[int, tuple[int, int]], a: int, b: int,
    max_items: int,
) -> dict[str, np.ndarray]:
    """Up to ``max_items`` events named by ``name_ids`` (``levels``: per lane id holding some, the duration classes
    they span there, lowest and highest) overlapping ``[a, b)``: the longest duration classes first, then the
    earliest (ties to the lowest id); by id.

    Per class and lane, one index range scan in start order that stops at the matches still missing, so a name with
    millions of events costs what is returned, not what it has.
    """
    name_parts = list(chunks(name_ids or [-1], IN_CHUNK))  # a long list in parts: each part's earliest, merged below
    position = {int(v): i for i, v in enumerate(t.lane_ids.tolist())}
    found: list[np.ndarray] = []
    total = 0
    top = max((high for _, high in levels.values()), default=-1)
    bottom = min((low for low, _ in levels.values()), default=0)
    for level in range(top, bottom - 1, -1):
        if total >= max_items:
            break
        need = max_items - total
        rows = []
        for lane_id in [lane for lane, (low, high) in sorted(levels.items()) if low <= level <= high]:
            first, last = t.ids_starting(position[lane_id], a - (1 << level), b)
            span = {"lane": int(lane_id), "level": level, "lo": a - (1 << level), "a": a, "b": b, "need": need,
                    "first": first, "last": last}  # fmt: skip
            rows += [fetch_ints(conn, _SEARCH_SQL, {**span, "names": part}, 5) for part in name_parts]
        level_rows = np.concatenate(rows) if rows else np.zeros((0, 5), dtype=np.int64)
        level_rows = level_rows[np.lexsort((level_rows[:, 0], level_rows[:, 3]))[:need]]
        found.append(level_rows)
        total += len(level_rows)
    picked = np.concatenate(found) if found else np.zeros((0, 5), dtype=np.int64)
    return event_arrays(conn, t, picked[np.argsort(picked[:, 0], kind="stable")])


def event_rows(conn: Connection, t: Layout, ids: list[int]) -> tuple[dict[str, np.ndarray], dict[int, tuple]]:
    """Events by id (of this profile) as :data:`EVENT_FIELDS` arrays, and ``{id: (parent, link, kind)}``."""
    ids = [int(i) for i in ids if t.contains(int(i))]
    if not ids:
        return event_arrays(conn, t, np.zeros((0, 5), dtype=np.int64)), {}
    sql = (
        "SELECT id, kind, name_id, start, dur, COALESCE(parent, -1), COALESCE(link, -1) FROM profile_events "
        "WHERE id IN ({ids}) ORDER BY id"
    )
    rows = np.concatenate([fetch_ints(conn, sql, {"ids": part}, 7) for part in chunks(sorted(set(ids)))])
    order = np.searchsorted(rows[:, 0], ids)
    rows = rows[order]
    relations = {int(r[0]): (int(r[5]), int(r[6]), int(r[1])) for r in rows}
    return event_arrays(conn, t, rows[:, :5]), relations


def ancestors(conn: Connection, t: Layout, event_id: int) -> list[int]:
    """Ids of the enclosing events, outermost first."""
    chain = []
    up = event_rows(conn, t, [event_id])[1].get(event_id, (-1, -1, 0))[0]
    while up >= 0:
        chain.append(up)
        up = event_rows(conn, t, [up])[1].get(up, (-1, -1, 0))[0]
    return chain[::-1]


def launched_by(conn: Connection, t: Layout, event_id: int, start: int) -> list[int]:
    """Ids of the device events the runtime call ``event_id`` (starting at ``start``) launched.

    A device event starts after its launch, so each device lane is scanned by primary key from ``start`` on, in
    windows that double from 1 ms, and stops at the first window without a launched event after one with some.
    """
    found: list[int] = []
    for lane in np.flatnonzero(t.device & (t.count > 0)).tolist():
        lo, width, seen = start, 1_000_000, False
        while lo <= t.duration:
            first, last = _first_at(conn, t, lane, lo), _first_at(conn, t, lane, lo + width)
            hits = [int(r[0]) for r in conn.execute(
                text("SELECT id FROM profile_events WHERE id >= :first AND id < :last AND link = :e"),
                {"first": first, "last": last, "e": int(event_id)},
            ).all()] if last > first else []  # fmt: skip
            found += hits
            if seen and not hits:
                break
            seen = seen or bool(hits)
            lo, width = lo + width, width * 2
    return sorted(found)


def nearest_op(conn: Connection, t: Layout, event_id: int) -> int:
    """The id of the innermost ``cpu_op`` enclosing (or being) ``event_id``, or -1."""
    up = event_id
    while up >= 0:
        relation = event_rows(conn, t, [up])[1].get(up)
        if relation is None:
            return -1
        if relation[2] == KIND["cpu_op"]:
            return up
        up = relation[0]
    return -1
