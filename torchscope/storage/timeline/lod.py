"""Level of detail for the timeline: which events of a window are drawn one by one, and density blocks for the rest.

Pure computation over a profile's events held as columns (numpy and the pure cells of
:mod:`~torchscope.storage.timeline.tiles`). The read path of profiles up to ``reads.INDEX_MAX_EVENTS`` events loads
an :class:`EventIndex` once per profile and answers every pan/zoom from it: a window query is a few ``searchsorted``
calls per lane and duration class, then vectorised binning, so it costs O(events in the window) numpy work and
never a table scan. Larger profiles get the same answers from SQL and the stored pyramid (``tiled.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from torchscope.storage.timeline import tiles

MIN_NS_PER_PX = 1.0


@dataclass
class EventIndex:
    """The events of one profile as columns, by position (position ``i`` is event id ``base + i``).

    Events must be sorted by lane then start (the store's id order). ``by_level`` lists positions grouped by
    ``(lane, level)`` with starts ascending inside a group; ``bounds[lane, level]`` is that group's slice of it.
    An event of level ``L`` lasts less than ``2**L`` ns, so one overlapping ``[a, b)`` starts in ``[a - 2**L, b)``.
    """

    base: int
    lane: np.ndarray  # lane position (index into the lane list), int32
    kind: np.ndarray  # int8, torchscope.storage.profile.kinds
    name_id: np.ndarray  # int64
    level: np.ndarray  # int8
    start: np.ndarray  # int64 ns since the profile start
    dur: np.ndarray  # int64 ns
    parent: np.ndarray  # position of the enclosing event, -1 at roots
    link: np.ndarray  # position of the launching runtime call, -1 when none
    depth: np.ndarray  # int16 nesting depth inside the lane
    by_level: np.ndarray = field(init=False)
    level_start: np.ndarray = field(init=False)
    bounds: np.ndarray = field(init=False)
    lane_bounds: np.ndarray = field(init=False)  # lane i holds positions lane_bounds[i] .. lane_bounds[i + 1] - 1
    n_lanes: int = 0
    first_start: int = 0
    last_start: int = 0
    row: np.ndarray | None = None  # display row of every event, once the reader has laid the lanes out

    def __post_init__(self) -> None:
        if len(self.start):
            self.first_start, self.last_start = int(self.start.min()), int(self.start.max())
        n_levels = int(self.level.max()) + 1 if len(self.level) else 1
        # events come sorted by (lane, start): a stable sort on (lane, level) keeps starts ascending in each group
        group = self.lane.astype(np.int64) * n_levels + self.level
        self.by_level = np.argsort(group, kind="stable")
        self.level_start = self.start[self.by_level]
        keys = group[self.by_level]
        groups = np.arange(self.n_lanes * n_levels, dtype=np.int64)
        lo = np.searchsorted(keys, groups, "left")
        hi = np.searchsorted(keys, groups, "right")
        self.bounds = np.stack((lo, hi), axis=-1).reshape(self.n_lanes, n_levels, 2)
        self.lane_bounds = np.searchsorted(self.lane, np.arange(self.n_lanes + 1), "left")

    def __len__(self) -> int:
        return len(self.start)

    @property
    def nbytes(self) -> int:
        """Memory held by the columns (what the store's cache budgets)."""
        arrays = (self.lane, self.kind, self.name_id, self.level, self.start, self.dur, self.parent, self.link,
                  self.depth, self.by_level, self.level_start)  # fmt: skip
        return int(sum(a.nbytes for a in arrays)) + (0 if self.row is None else int(self.row.nbytes))


def nesting_depth(parent: np.ndarray) -> np.ndarray:
    """Depth of every event in its lane's call tree (roots 0), by pointer jumping along ``parent`` (-1 at roots)."""
    depth = np.zeros(len(parent), dtype=np.int16)
    cur = parent.copy()
    todo = np.flatnonzero(cur >= 0)
    while len(todo):
        depth[todo] += 1
        cur[todo] = parent[cur[todo]]
        todo = todo[cur[todo] >= 0]
    return depth


def overlapping(ix: EventIndex, a: int, b: int, lanes: np.ndarray | None = None) -> np.ndarray:
    """Positions of the events that overlap ``[a, b)`` (an instant counts when ``a <= start < b``)."""
    if lanes is None and len(ix) and a <= ix.first_start and b > ix.last_start:
        return np.arange(len(ix), dtype=np.int64)  # the whole profile: no index walk, and gathers stay sequential
    chosen = range(ix.n_lanes) if lanes is None else lanes.tolist()
    parts = []
    for lane in chosen:
        for level in range(ix.bounds.shape[1]):
            lo, hi = ix.bounds[lane, level]
            if hi <= lo:
                continue
            starts = ix.level_start[lo:hi]
            i0 = lo + np.searchsorted(starts, a - (1 << level), "left")
            i1 = lo + np.searchsorted(starts, b, "left")
            if i1 > i0:
                parts.append(ix.by_level[i0:i1])
    if not parts:
        return np.zeros(0, dtype=np.int64)
    pos = np.concatenate(parts)
    end = ix.start[pos] + ix.dur[pos]
    return pos[(end > a) | ((ix.dur[pos] == 0) & (ix.start[pos] >= a))]


@dataclass
class Window:
    """One answer to a pan/zoom: events drawn individually and density blocks, in ns since the profile start."""

    events: np.ndarray  # positions of the events drawn one by one, ascending
    block_row: np.ndarray  # row of each density block
    block_start: np.ndarray
    block_end: np.ndarray
    block_count: np.ndarray  # events merged into the block
    block_busy: np.ndarray  # share of the block's width covered by its events (can exceed 1 when they overlap)
    in_window: int  # events drawn or counted in a block
    ns_per_px: float


def window(
    ix: EventIndex, row_of_lane: np.ndarray, a: int, b: int, px: int, max_items: int, max_blocks: int
) -> Window:
    """Level of detail for ``[a, b)`` drawn ``px`` pixels wide.

    Events overlapping the window and at least a pixel wide are drawn, the longest ``max_items`` when more are (ties
    to the lowest id); the rest are density blocks (:func:`~torchscope.storage.timeline.tiles.window_blocks`): per
    row, the events starting in each bin of the level whose bins fit in a pixel, adjacent bins joined. The stored
    pyramid's read path (:mod:`~torchscope.storage.timeline.tiled`) gives the same answer from SQL.
    """
    px = max(int(px), 1)
    npp = max((b - a) / px, MIN_NS_PER_PX)
    pos = overlapping(ix, a, b)
    wide = pos[ix.dur[pos] >= npp]
    drawn = np.sort(wide[tiles.longest(ix.dur[wide], wide, max_items)]) if max_items > 0 else wide[:0]
    row = row_of_lane[ix.lane] + ix.depth if ix.row is None else ix.row

    def cells_at(shift: int, lo: int, hi: int) -> tiles.Cells:
        sel = starting_in(ix, lo << shift, (hi + 1) << shift)
        return tiles.count_cells_dense(row[sel], ix.start[sel], ix.dur[sel], shift, lo, hi)

    def drawn_cells(shift: int) -> tiles.Cells:
        return tiles.count_cells(row[drawn], ix.start[drawn], ix.dur[drawn], shift)

    blocks = tiles.window_blocks(cells_at, drawn_cells, a, b, npp, max_blocks)
    in_window = len(drawn) + int(blocks.count.sum())
    return Window(drawn, blocks.row, blocks.start, blocks.end, blocks.count, blocks.busy, in_window, npp)


def starting_in(ix: EventIndex, lo: int, hi: int) -> np.ndarray:
    """Positions of the events starting in ``[lo, hi)``, ascending (lane by lane, in start order)."""
    parts = []
    for lane in range(ix.n_lanes):
        first, last = ix.lane_bounds[lane], ix.lane_bounds[lane + 1]
        starts = ix.start[first:last]
        i0, i1 = first + np.searchsorted(starts, lo, "left"), first + np.searchsorted(starts, hi, "left")
        if i1 > i0:
            parts.append(np.arange(i0, i1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def density(ix: EventIndex, duration: int, bins: int) -> np.ndarray:
    """Events per lane and time bin over the whole profile (``n_lanes x bins``): the minimap."""
    bins = max(int(bins), 1)
    span = max(int(duration), 1)
    col = np.clip(ix.start * bins // span, 0, bins - 1)
    flat = np.bincount(ix.lane.astype(np.int64) * bins + col, minlength=ix.n_lanes * bins)
    return flat.reshape(ix.n_lanes, bins)


def lane_rows(ix: EventIndex) -> np.ndarray:
    """Rows of each lane (by position): its nesting depth + 1."""
    max_depth = np.zeros(ix.n_lanes, dtype=np.int64)
    if len(ix):
        np.maximum.at(max_depth, ix.lane.astype(np.int64), ix.depth.astype(np.int64))
    return max_depth + 1


def lane_layout(lanes: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The store's lanes in display order (host threads by process, then device streams by GPU, then the rest),
    with ``position`` (index in ``lanes``), ``rows`` (given per position: nesting depth + 1), ``row0`` (first row)
    and ``group``."""
    frame = lanes.reset_index(drop=True).copy()
    frame["position"] = np.arange(len(frame))
    frame["rows"] = np.asarray(rows, dtype=np.int64)
    frame["group"] = [
        f"GPU {int(d)}" if k == "device" and pd.notna(d) else (f"process {p}" if k == "host" else "other")
        for k, d, p in zip(frame["kind"], frame["device"], frame["pid"])
    ]
    frame["_k"] = frame["kind"].map({"host": 0, "device": 1}).fillna(2)
    frame["_sort"] = pd.to_numeric(frame["sort"], errors="coerce").fillna(np.inf)
    frame = frame.sort_values(["_k", "group", "_sort", "id"], kind="stable").reset_index(drop=True)
    frame["row0"] = np.concatenate(([0], np.cumsum(frame["rows"].to_numpy())[:-1])) if len(frame) else []
    frame["label"] = [
        str(lab) if isinstance(lab, str) and lab else (f"{p} / {t}" if p or t else "(unnamed)")
        for lab, p, t in zip(frame["label"], frame["pid"], frame["tid"])
    ]
    return frame.drop(columns=["_k", "_sort"]).astype({"row0": "int64", "rows": "int64"})


def nearest_marked(parent: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """For every event, its nearest strict ancestor that is ``marked``, or -1 (pointer jumping)."""
    result = np.full(len(parent), -1, dtype=np.int64)
    cur = parent.copy()
    todo = np.flatnonzero(cur >= 0)
    while len(todo):
        hit = marked[cur[todo]]
        result[todo[hit]] = cur[todo[hit]]
        todo = todo[~hit]
        cur[todo] = parent[cur[todo]]
        todo = todo[cur[todo] >= 0]
    return result


@dataclass
class HostEvents:
    """Host events as columns by position, sorted by lane then start (what :func:`enclosing` and the module paths
    of ops read): an :class:`EventIndex` is one, and so is :meth:`from_frame` of an analysis' host event frame."""

    lane: np.ndarray  # the lane, as any integer key (a position, a lane id)
    kind: np.ndarray
    name_id: np.ndarray
    start: np.ndarray
    dur: np.ndarray
    parent: np.ndarray  # position of the enclosing event, -1 at roots

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> HostEvents:
        """From the host events of one profile (``analyses.FRAME_COLUMNS``: contiguous ids, parents as ids; lanes
        are its lane ids)."""
        parent = frame["parent"].to_numpy()
        first = int(frame["id"].iat[0]) if len(frame) else 0
        return cls(
            lane=frame["lane_id"].to_numpy(), kind=frame["kind"].to_numpy(), name_id=frame["name_id"].to_numpy(),
            start=frame["start"].to_numpy(), dur=frame["dur"].to_numpy(),
            parent=np.where(parent >= 0, parent - first, -1),
        )  # fmt: skip


def enclosing(ix: EventIndex | HostEvents, lanes: np.ndarray, ts: np.ndarray, kind: int) -> np.ndarray:
    """For each (lane, time), the position of the innermost event of ``kind`` on that lane running then, or -1
    (``lanes`` as ``ix.lane`` keeps them; a negative one is none). It is an ancestor (or itself) of the last event
    that started at or before the time on that lane."""
    out = np.full(len(ts), -1, dtype=np.int64)
    for lane in np.unique(lanes[lanes >= 0]).tolist():
        members = np.flatnonzero(ix.lane == lane)  # sorted by start within the lane (id order)
        which = np.flatnonzero(lanes == lane)
        at = np.searchsorted(ix.start[members], ts[which], "right") - 1
        cand = np.where(at >= 0, members[np.maximum(at, 0)], -1)
        while True:  # up the ancestors; every chain ends at a root
            c = np.maximum(cand, 0)
            done = (cand < 0) | ((ix.kind[c] == kind) & (ix.start[c] + ix.dur[c] > ts[which]))
            if done.all():
                break
            cand = np.where(done, cand, ix.parent[c])
        out[which] = cand
    return out
