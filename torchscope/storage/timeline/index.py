"""The per-profile event index behind the timeline: loaded once by one range scan, kept for the recent profiles.

A pan or zoom must answer in well under 100 ms on a million-event profile, so the first read of a profile loads a
compact columnar index of its events (:class:`~torchscope.storage.timeline.lod.EventIndex`, about 40 bytes per
event, one range scan by primary key) and :class:`IndexCache` keeps the few most recently viewed in memory.
Profiles never change once stored, so the cache needs no invalidation beyond the profile's event count.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from torchscope.errors import StoreError
from torchscope.storage.driver_sql import chunks, fetch_ints
from torchscope.storage.profile.kinds import KIND
from torchscope.storage.timeline import lod
from torchscope.storage.timeline.build import EXACT_TIMES_SQL

CACHE_BYTES = 512 << 20  # indexes of recently viewed profiles kept in memory (a 1M-event profile takes ~40 MB)
LANE_GROUP_COLUMNS = ["id", "position", "row0", "rows", "group", "label", "kind", "device", "stream", "event_count"]


class Loaded:
    """A profile's event index, the lane layout derived from it, and what reads of it keep (windows, minimaps)."""

    def __init__(self, ix: lod.EventIndex, lanes: pd.DataFrame, duration: int, event_count: int) -> None:
        self.ix = ix
        self.lanes = lanes
        self.duration = duration
        self.event_count = event_count
        self.row_of_lane = lanes.sort_values("position")["row0"].to_numpy(np.int64)
        ix.row = (self.row_of_lane[ix.lane] + ix.depth).astype(np.int32)
        self.windows: OrderedDict[tuple[int, ...], lod.Window] = OrderedDict()
        self.lane_ids = lanes.sort_values("position")["id"].to_numpy(np.int64)
        self._launched: tuple[np.ndarray, np.ndarray] | None = None
        self.minimaps: dict[int, np.ndarray] = {}
        self._names: tuple[np.ndarray, np.ndarray] | None = None

    def name_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(distinct name ids, code of each event)``: searches and spans work on the few distinct names."""
        if self._names is None:
            self._names = np.unique(self.ix.name_id, return_inverse=True)
        return self._names

    def launched_by(self, pos: int) -> np.ndarray:
        """Positions of the device events launched by the runtime call at ``pos``."""
        if self._launched is None:
            has = np.flatnonzero(self.ix.link >= 0)
            order = np.argsort(self.ix.link[has], kind="stable")
            self._launched = (self.ix.link[has][order], has[order])
        keys, targets = self._launched
        return targets[np.searchsorted(keys, pos, "left") : np.searchsorted(keys, pos, "right")]


class IndexCache:
    """The loaded indexes of the most recently read profiles, up to :data:`CACHE_BYTES` (always the last one)."""

    def __init__(self) -> None:
        self._loaded: OrderedDict[int, Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, profile_id: int, event_count: int, load: Callable[[], Loaded]) -> Loaded:
        """The index of ``profile_id``, from ``load()`` unless one with ``event_count`` events is kept."""
        with self._lock:
            hit = self._loaded.get(profile_id)
            if hit is not None and hit.event_count == event_count:
                self._loaded.move_to_end(profile_id)
                return hit
            loaded = load()
            self._loaded[profile_id] = loaded
            while len(self._loaded) > 1 and sum(v.ix.nbytes for v in self._loaded.values()) > CACHE_BYTES:
                self._loaded.popitem(last=False)
            return loaded


def load_index(conn: Connection, lanes: pd.DataFrame, meta: dict[str, Any]) -> Loaded:
    """Read the events of a profile (``meta``: its ``profiles`` row; ``lanes``: its lanes by id) into an index."""
    base, cols = _scan(conn, lanes, meta.get("first_event_id"))
    lane = np.repeat(np.arange(len(lanes), dtype=np.int32), lanes["event_count"].to_numpy(np.int64))
    start, dur, kind, name_id, parent, link = cols
    kind = kind.astype(np.int8)
    depth = lod.nesting_depth(parent)
    device_lane = (lanes["kind"] == "device").to_numpy()
    on_device = device_lane[lane] if len(lane) else np.zeros(0, dtype=bool)
    if on_device.any():
        # device streams do not nest, but a record_function range projected on a stream spans its kernels
        annotated = np.zeros(len(lanes), dtype=bool)
        annotated[np.unique(lane[on_device & (kind == KIND["gpu_user_annotation"])])] = True
        second_row = (annotated[lane] & (kind != KIND["gpu_user_annotation"])).astype(np.int16)
        depth = np.where(on_device, second_row, depth)
    ix = lod.EventIndex(
        base=base, lane=lane, kind=kind, name_id=name_id, level=np.frexp(dur.astype(np.float64))[1].astype(np.int8),
        start=start, dur=dur, parent=parent, link=link, depth=depth.astype(np.int16), n_lanes=len(lanes),
    )  # fmt: skip
    layout = lod.lane_layout(lanes, lod.lane_rows(ix))[LANE_GROUP_COLUMNS]
    return Loaded(ix, layout, int(meta["duration_ns"]), int(meta["event_count"]))


_PACKED_SQL = (
    "SELECT CASE WHEN start < {start_cap} AND dur < {dur_cap} THEN start | (dur << 41) ELSE -1 END, "
    "kind | (CAST(name_id AS BIGINT) << 4) | ((COALESCE(parent, link, {below}) - {below}) << 32) "
    "FROM profile_events WHERE id >= {lo} AND id <= {hi} ORDER BY id"
)
_WIDE_SQL = (
    "SELECT start, dur, kind, name_id, COALESCE(parent - {lo}, -1), COALESCE(link - {lo}, -1) "
    "FROM profile_events WHERE id >= {lo} AND id <= {hi} ORDER BY id"
)


def _scan(conn: Any, lanes: pd.DataFrame, first_id: int | None = None) -> tuple[int, list[np.ndarray]]:
    """Every event of the lanes, by id, as columns ``start, dur, kind, name_id, parent, link`` (positions of the
    parent / launching event, -1 when none), and the profile's first event id.

    The writer gives a profile's events contiguous ids ordered by lane, so this is one primary-key range scan. Each
    value costs a Python object on its way out of the driver, so values travel packed in two integers: start and
    duration; kind, name id and the one relation an event has (host events have a parent, device events a launch
    link, never both).
    """
    total = int(lanes["event_count"].sum())
    if total == 0:
        return 0, [np.zeros(0, dtype=np.int64) for _ in range(6)]
    if first_id is not None and not pd.isna(first_id):
        lo = int(first_id)
    else:  # older profiles do not record it: the first event (lowest id) starts first in the first lane
        first = lanes[lanes["event_count"] > 0].iloc[0]
        seek = text("SELECT MIN(id) FROM profile_events WHERE lane_id = :l AND level = :v")  # the first to start
        levels = range(int(first["max_level"]) + 1)
        found = [conn.execute(seek, {"l": int(first["id"]), "v": v}).scalar() for v in levels]
        lo = min(int(i) for i in found if i is not None)
    hi = lo + total - 1
    max_name = int(conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM names")).scalar_one())
    packed = max_name < (1 << 28) and total < (1 << 30)
    span = {"lo": lo, "hi": hi}
    if packed:
        # start and duration share one integer when they fit (starts within 36 min, events under 4 ms: nearly
        # all of them); the few that do not come as -1 and are read again by id
        sql, params = _PACKED_SQL, {**span, "below": lo - 1, "start_cap": 1 << 41, "dur_cap": 1 << 22}
    else:
        sql, params = _WIDE_SQL, span
    width = 2 if packed else 6
    flat = fetch_ints(conn, sql, params, width)
    if len(flat) != total:
        raise StoreError(f"the events of this profile are not stored contiguously (ids {lo}..{hi}); re-import it")
    if not packed:
        return lo, [np.ascontiguousarray(flat[:, i]) for i in range(6)]
    times, value = flat[:, 0], flat[:, 1]
    start, dur = times & ((1 << 41) - 1), times >> 41
    wide = np.flatnonzero(times < 0)
    for ids in chunks(wide + lo):
        exact = fetch_ints(conn, EXACT_TIMES_SQL, {"ids": ids}, 3)
        start[exact[:, 0] - lo], dur[exact[:, 0] - lo] = exact[:, 1], exact[:, 2]
    relation = (value >> 32) - 1
    lane = np.repeat(np.arange(len(lanes)), lanes["event_count"].to_numpy(np.int64))
    device = (lanes["kind"] == "device").to_numpy()[lane]
    parent = np.where(device, -1, relation)
    link = np.where(device, relation, -1)
    return lo, [start, dur, value & 0xF, (value >> 4) & 0x0FFFFFFF, parent, link]
