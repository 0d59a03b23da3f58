"""Reads of profiles, events and their analyses (``Store`` delegates to these); columns in docs/profiler.md."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Engine, select, text

from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.driver_sql import bind, named
from torchscope.storage.profile import analyses as ap
from torchscope.storage.profile.kinds import KINDS
from torchscope.storage.profile.records import TYPED_ARGS, TYPED_COLUMNS
from torchscope.storage.profile.schema import profile_lanes, profiles
from torchscope.storage.profile.summary_store import StoredSummaries
from torchscope.storage.timeline import tiled

PROFILE_COLUMNS = [
    "id", "run_id", "name", "source", "path", "rank", "start_ns", "duration_ns", "step_first", "step_last",
    "step_count", "event_count", "kernel_count", "device_name", "created_at",
]  # fmt: skip
LANE_COLUMNS = [
    "id", "profile_id", "pid", "tid", "kind", "device", "stream", "label", "sort", "event_count", "max_level",
]  # fmt: skip
EVENT_COLUMNS = ["id", "lane_id", "kind", "name", "start", "dur", "parent", "corr", "link", "ext_id", "info"]
_EVENT_SQL = (
    "SELECT e.id, e.lane_id, e.kind, n.name, e.start, e.dur, e.parent, e.corr, e.link, e.ext_id, i.name "
    "FROM profile_events e JOIN names n ON n.id = e.name_id LEFT JOIN names i ON i.id = e.info_id "
    "WHERE e.lane_id = {lane} AND e.level = {level} AND e.id >= {first} AND e.id < {last} AND e.start >= {lo} "
    "AND e.start < {hi} AND e.start + e.dur >= {a} "
    "ORDER BY e.id"
)  # read through the DBAPI cursor, as plain tuples (SQLAlchemy rows cost more); {name}s become bound parameters.
# ORDER BY id: start order within a lane, as the index (lane_id, level, id) gives the rows: a LIMIT stops early


_ANY_ID = (-(1 << 62), 1 << 62)


class ProfileReads:
    """``profiles``, ``lanes``, ``events``, ``step_breakdown``, ``device_utilization``, ``op_table``,
    ``kernel_table``, ``module_table``, ``kernel_ops``, ``memory_timeline``, ``memory_peak``, ``event_details``,
    ``flows``."""

    def __init__(self, engine: Engine, stored_summaries: bool = True) -> None:
        self._engine = engine
        self.event_frames = ap.EventFrames()
        self.summaries = StoredSummaries(engine, enabled=stored_summaries)
        self.memory_frames: dict[int, pd.DataFrame] | None = None
        """:meth:`memory_numbers` by profile while a dict (the summaries of one profile read them three times)."""

    def profiles(self, run_id: int | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.profiles`, which documents the columns."""
        query = select(*(profiles.c[c] for c in PROFILE_COLUMNS)).order_by(profiles.c.id)
        if run_id is not None:
            query = query.where(profiles.c.run_id == int(run_id))
        with self._engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=PROFILE_COLUMNS)

    def profile(self, profile_id: int) -> dict[str, object]:
        """Backs :meth:`Store.profile`, which documents the columns."""
        with self._engine.connect() as conn:
            row = conn.execute(select(profiles).where(profiles.c.id == int(profile_id))).first()
        if row is None:
            raise NotFoundError(f"there is no profile {profile_id} in this database (see store.profiles())")
        return dict(row._mapping)

    def lanes(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.lanes`, which documents the columns."""
        self.profile(profile_id)
        query = select(*(profile_lanes.c[c] for c in LANE_COLUMNS)).where(profile_lanes.c.profile_id == int(profile_id))
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query.order_by(profile_lanes.c.id)).all(), columns=LANE_COLUMNS)
        return frame

    def events(
        self,
        profile_id: int,
        start: int | None = None,
        end: int | None = None,
        max_items: int | None = None,
        lanes: list[int] | None = None,
    ) -> pd.DataFrame:
        """Backs :meth:`Store.events`, which documents the columns."""
        meta = self.profile(profile_id)
        if max_items is not None and max_items < 0:
            raise BadRequestError("max_items must be a non-negative number of events")
        a = 0 if start is None else int(start)
        b = int(meta["duration_ns"]) + 1 if end is None else int(end)
        lane_frame = self.lanes(profile_id)
        layout = None  # where each lane's events of a time range are (a profile stored without its first id: anywhere)
        if meta["first_event_id"] is not None:
            with self._engine.connect() as conn:
                layout = tiled.Layout(conn, lane_frame, meta)
        lane_frame = lane_frame.assign(position=np.arange(len(lane_frame)))
        if lanes is not None:
            lane_frame = lane_frame[lane_frame["id"].isin([int(x) for x in lanes])]
        rows: list[tuple] = []
        truncated: list[int] = []
        dialect = self._engine.dialect.name
        unbounded = named(_EVENT_SQL, dialect)
        bounded = named(_EVENT_SQL + " LIMIT {limit}", dialect)
        with self._engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                for lane_id, position, max_level in lane_frame[["id", "position", "max_level"]].itertuples(index=False):
                    budget = max_items
                    got: list[tuple] = []
                    for level in range(int(max_level), -1, -1):
                        first, last = _ANY_ID if layout is None else layout.ids_starting(position, a - (1 << level), b)
                        params = {"lane": int(lane_id), "level": level, "lo": a - (1 << level), "hi": b, "a": a,
                                  "first": first, "last": last}  # fmt: skip
                        if budget is None:
                            cursor.execute(unbounded, params)
                        else:
                            cursor.execute(bounded, {**params, "limit": budget + 1})
                        part = cursor.fetchall()
                        if budget is not None:
                            if len(part) > budget:
                                truncated.append(lane_id)
                                break
                            budget -= len(part)
                        got.extend(part)
                    got.sort(key=lambda r: (r[4], -r[5]))
                    rows.extend(got)
            finally:
                cursor.close()
        frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
        frame["kind"] = np.asarray(KINDS, dtype=object)[frame["kind"].to_numpy(np.int64)] if len(frame) else []
        frame = frame.astype({c: "Int64" for c in ("parent", "corr", "link", "ext_id")})
        frame.attrs["truncated"] = truncated
        return frame

    def _duration(self, profile_id: int) -> int:
        return int(self.profile(profile_id)["duration_ns"])

    def step_breakdown(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.step_breakdown`, which documents the columns."""
        duration = self._duration(profile_id)

        def compute() -> pd.DataFrame:
            with self._engine.connect() as conn:
                return ap.step_breakdown(conn, self.event_frames, int(profile_id), duration)

        return self.summaries.get(profile_id, "step_breakdown", compute)

    def runtime_split(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.runtime_split`, which documents the columns."""
        duration = self._duration(profile_id)

        def compute() -> pd.DataFrame:
            with self._engine.connect() as conn:
                return ap.runtime_split(conn, self.event_frames, int(profile_id), duration)

        return self.summaries.get(profile_id, "runtime_split", compute)

    def device_utilization(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.device_utilization`, which documents the columns."""
        duration = self._duration(profile_id)

        def compute() -> pd.DataFrame:
            with self._engine.connect() as conn:
                return ap.device_utilization(conn, self.event_frames, int(profile_id), duration)

        return self.summaries.get(profile_id, "device_utilization", compute)

    def op_table(self, profile_id: int, group_by_shape: bool = False) -> pd.DataFrame:
        """Backs :meth:`Store.op_table`, which documents the columns."""
        self.profile(profile_id)

        def compute() -> pd.DataFrame:
            with self._engine.connect() as conn:
                return ap.op_table(conn, self.event_frames, int(profile_id), group_by_shape)

        return self.summaries.get(profile_id, "op_table_shapes" if group_by_shape else "op_table", compute)

    def kernel_table(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.kernel_table`, which documents the columns."""
        self.profile(profile_id)

        def compute() -> pd.DataFrame:
            with self._engine.connect() as conn:
                return ap.kernel_table(conn, int(profile_id))

        return self.summaries.get(profile_id, "kernel_table", compute)

    def module_table(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.module_table`, which documents the columns."""
        self.profile(profile_id)

        def compute() -> pd.DataFrame:
            with self._engine.connect() as conn:
                return ap.module_table(conn, self.event_frames, int(profile_id))

        return self.summaries.get(profile_id, "module_table", compute)

    def kernel_ops(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.kernel_ops`, which documents the columns."""
        self.profile(profile_id)
        with self._engine.connect() as conn:
            return ap.kernel_ops(conn, self.event_frames, int(profile_id))

    def memory_timeline(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.memory_timeline`, which documents the columns."""
        self.profile(profile_id)
        cols = [*MEMORY_NUMBERS, "args"]
        sql = f"SELECT {', '.join(cols)} FROM profile_memory WHERE profile_id = :p ORDER BY ts"
        with self._engine.connect() as conn:
            rows = conn.execute(text(sql), {"p": int(profile_id)}).all()
        return pd.DataFrame([(*r[:-1], _text(r[-1])) for r in rows], columns=cols)

    def memory_numbers(self, profile_id: int) -> pd.DataFrame:
        """:meth:`memory_timeline` without ``args``, for the analyses (``addr``, ``allocated`` and ``reserved`` as
        pandas' nullable ``Int64``): read through the driver's cursor into arrays, a million events in well under a
        second (as rows with their args decoded, five). While :attr:`memory_frames` is a dict, kept there."""
        if self.memory_frames is not None and profile_id in self.memory_frames:
            return self.memory_frames[profile_id]
        self.profile(profile_id)
        picks = [f"COALESCE({c}, 0), {c} IS NULL" if c in _NULLABLE_MEMORY else c for c in MEMORY_NUMBERS]
        sql = bind(f"SELECT {', '.join(picks)} FROM profile_memory WHERE profile_id = {{p}} ORDER BY ts",
                   self._engine.dialect.name, {"p": int(profile_id)})  # fmt: skip
        width = len(MEMORY_NUMBERS) + len(_NULLABLE_MEMORY)
        with self._engine.connect() as conn:
            cursor = conn.connection.cursor()
            parts = []
            try:
                cursor.execute(*sql)
                while rows := cursor.fetchmany(1 << 16):
                    parts.append(np.array(rows, dtype=np.int64).reshape(len(rows), width))
            finally:
                cursor.close()
        table = np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int64)
        frame, at = {}, 0
        for c in MEMORY_NUMBERS:
            if c in _NULLABLE_MEMORY:
                frame[c] = pd.arrays.IntegerArray(table[:, at], table[:, at + 1].astype(bool))
                at += 2
            else:
                frame[c] = table[:, at]
                at += 1
        out = pd.DataFrame(frame)
        if self.memory_frames is not None:
            self.memory_frames[profile_id] = out
        return out

    def memory_curve(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.memory_curve`, which documents the columns."""
        return self.summaries.get(profile_id, "memory_curve", lambda: self._memory_curve(profile_id))

    def _memory_curve(self, profile_id: int) -> pd.DataFrame:
        frame = self.memory_numbers(profile_id)
        parts = []
        for (dtype, device), group, allocated in _allocated_by_device(frame):
            ts, kept = bucket_max(group["ts"].to_numpy(np.int64), allocated.to_numpy(np.int64), MEMORY_POINTS)
            parts.append(pd.DataFrame({"device_type": int(dtype), "device": int(device), "ts": ts, "allocated": kept}))
        cols = ["device_type", "device", "ts", "allocated"]
        return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)

    def event_args(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.event_args`, which documents the columns."""
        self.profile(profile_id)
        typed = ", ".join(f"e.{c}" for c in TYPED_COLUMNS)
        sql = (
            f"SELECT e.id, {typed}, a.args FROM profile_events e JOIN profile_lanes l ON l.id = e.lane_id "
            "LEFT JOIN profile_event_args a ON a.event_id = e.id WHERE l.profile_id = :p AND ("
            + " OR ".join(f"e.{c} IS NOT NULL" for c in TYPED_COLUMNS) + " OR a.args IS NOT NULL) ORDER BY e.id"
        )  # fmt: skip
        with self._engine.connect() as conn:
            rows = conn.execute(text(sql), {"p": int(profile_id)}).all()
        return pd.DataFrame([(r[0], _args_json(r[1:-1], r[-1])) for r in rows], columns=["event_id", "args"])

    def event_details(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.event_details`, which documents the columns."""
        self.profile(profile_id)
        cols = ["event_id", "grid", "block", "registers", "shared_memory", "blocks_per_sm", "warps_per_sm",
                "occupancy", "bytes", "queued", "context", "bandwidth"]  # fmt: skip
        sql = (
            f"SELECT {', '.join('d.' + c for c in cols)} FROM profile_event_details d "
            "JOIN profile_events e ON e.id = d.event_id JOIN profile_lanes l ON l.id = e.lane_id "
            "WHERE l.profile_id = :p ORDER BY d.event_id"
        )
        with self._engine.connect() as conn:
            return pd.DataFrame(conn.execute(text(sql), {"p": int(profile_id)}).all(), columns=cols)

    def memory_peak(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.memory_peak`, which documents the columns."""
        return self.summaries.get(profile_id, "memory_peak", lambda: self._memory_peak(profile_id))

    def _memory_peak(self, profile_id: int) -> pd.DataFrame:
        frame = self.memory_numbers(profile_id)
        cols = ["device_type", "device", "peak_allocated", "peak_at", "peak_reserved", "events"]
        rows = []
        for (dtype, device), group, allocated in _allocated_by_device(frame):
            at = allocated.idxmax()
            reserved = int(group["reserved"].max()) if group["reserved"].notna().any() else None
            rows.append((int(dtype), int(device), int(allocated[at]), int(group.at[at, "ts"]), reserved, len(group)))
        return pd.DataFrame(rows, columns=cols)

    def flows(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.flows`, which documents the columns."""
        self.profile(profile_id)
        sql = "SELECT kind, flow_id, src, dst FROM profile_flows WHERE profile_id = :p ORDER BY flow_id"
        with self._engine.connect() as conn:
            rows = conn.execute(text(sql), {"p": int(profile_id)}).all()
        return pd.DataFrame(rows, columns=["kind", "flow_id", "src", "dst"])


MEMORY_NUMBERS = ["ts", "device_type", "device", "bytes", "addr", "allocated", "reserved", "lane_id"]
"""The columns of an allocator event but its ``args``."""
_NULLABLE_MEMORY = frozenset(("addr", "allocated", "reserved"))
MEMORY_POINTS = 2000
"""The most points of a device's memory curve (:meth:`ProfileReads.memory_curve`)."""


def _allocated_by_device(frame: pd.DataFrame) -> Iterator[tuple[tuple[Any, Any], pd.DataFrame, pd.Series]]:
    """Per device of the allocator events ``frame`` (in device order): its events and the memory allocated after
    each (as the profiler reported it, else the running sum of the sizes)."""
    for key, group in frame.groupby(["device_type", "device"], sort=True):
        yield key, group, group["allocated"].fillna(group["bytes"].cumsum())


def bucket_max(ts: np.ndarray, values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: per time bucket the maximum (a peak never disappears), at its own time."""
    if len(ts) <= max_points:
        return ts, values
    edges = np.linspace(0, len(ts), max_points // 2 + 1).astype(np.int64)
    keep = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi > lo:
            keep += [lo + int(np.argmax(values[lo:hi])), hi - 1]
    idx = np.unique(np.array(keep, dtype=np.int64))
    return ts[idx], values[idx]


def _args_json(typed: tuple[int | None, ...], stored: bytes | str | None) -> str:
    """An event's args beyond its other columns as one JSON object: the typed ones, then those kept as JSON."""
    args = {key: value for key, value in zip(TYPED_ARGS, typed) if value is not None}
    if stored is not None:
        args.update(orjson.loads(stored))
    return orjson.dumps(args).decode()


def _text(value: bytes | str | None) -> str | None:
    """A JSON column as text (drivers hand back bytes or memoryview)."""
    if value is None or isinstance(value, str):
        return value
    return bytes(value).decode()
