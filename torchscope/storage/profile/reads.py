"""Reads of profiles, events and their analyses (``Store`` delegates to these); columns in docs/profiler.md."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select, text

from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.profile import analyses as ap
from torchscope.storage.profile.kinds import KINDS
from torchscope.storage.profile.schema import profile_lanes, profiles

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
    "WHERE e.lane_id = {lane} AND e.level = {level} AND e.start >= {lo} AND e.start < {hi} AND e.start + e.dur >= {a} "
    "ORDER BY e.start"
)  # only integers are formatted in; read through the DBAPI cursor, as plain tuples (SQLAlchemy rows cost more)


class ProfileReads:
    """``profiles``, ``lanes``, ``events``, ``step_breakdown``, ``device_utilization``, ``op_table``,
    ``kernel_table``, ``module_table``, ``kernel_ops``, ``memory_timeline``, ``memory_peak``, ``event_details``,
    ``flows``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.event_frames = ap.EventFrames()

    def profiles(self, run_id: int | None = None) -> pd.DataFrame:
        """One row per profile (of ``run_id``, or of every run), by id. Columns: :data:`PROFILE_COLUMNS`."""
        query = select(*(profiles.c[c] for c in PROFILE_COLUMNS)).order_by(profiles.c.id)
        if run_id is not None:
            query = query.where(profiles.c.run_id == int(run_id))
        with self._engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=PROFILE_COLUMNS)

    def profile(self, profile_id: int) -> dict[str, object]:
        """The :meth:`profiles` row of ``profile_id`` plus ``devices`` and ``info`` (JSON text); NotFoundError."""
        with self._engine.connect() as conn:
            row = conn.execute(select(profiles).where(profiles.c.id == int(profile_id))).first()
        if row is None:
            raise NotFoundError(f"there is no profile {profile_id} in this database (see store.profiles())")
        return dict(row._mapping)

    def lanes(self, profile_id: int) -> pd.DataFrame:
        """The lanes (host threads, device streams) of a profile. Columns: :data:`LANE_COLUMNS`."""
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
        """Events overlapping ``[start, end)`` (ns since the profile's ``start_ns``), per lane, by lane and start.

        ``max_items`` bounds the events returned *per lane*: the longest events are kept, whole duration classes
        at a time (all events of a class ``2**(L-1) <= dur < 2**L`` or none), so a zoomed-out view gets the
        events that are visible at its scale. ``frame.attrs["truncated"]`` lists the lanes that were cut.
        Columns: :data:`EVENT_COLUMNS` (``kind`` as text, ``info`` the op's input shapes/types JSON).
        """
        meta = self.profile(profile_id)
        if max_items is not None and max_items < 0:
            raise BadRequestError("max_items must be a non-negative number of events")
        a = 0 if start is None else int(start)
        b = int(meta["duration_ns"]) + 1 if end is None else int(end)
        lane_frame = self.lanes(profile_id)
        if lanes is not None:
            lane_frame = lane_frame[lane_frame["id"].isin([int(x) for x in lanes])]
        rows: list[tuple] = []
        truncated: list[int] = []
        with self._engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                for lane_id, max_level in zip(lane_frame["id"].tolist(), lane_frame["max_level"].tolist()):
                    budget = max_items
                    got: list[tuple] = []
                    for level in range(int(max_level), -1, -1):
                        sql = _EVENT_SQL.format(lane=int(lane_id), level=level, lo=a - (1 << level), hi=b, a=a)
                        if budget is not None:
                            sql += f" LIMIT {budget + 1}"
                        cursor.execute(sql)
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
        """Per ``ProfilerStep#N`` (or one step -1 for a trace without steps), where its wall time went.

        Columns ``step, start, end, wall_ns, kernel_ns, communication_ns, memcpy_ns, memset_ns, runtime_ns,
        dataloader_ns, cpu_ns, idle_ns``; each instant is counted once in the first category active then (that
        order), so the ``*_ns`` columns after ``wall_ns`` add up to ``wall_ns``.
        """
        duration = self._duration(profile_id)
        with self._engine.connect() as conn:
            return ap.step_breakdown(conn, self.event_frames, int(profile_id), duration)

    def device_utilization(self, profile_id: int) -> pd.DataFrame:
        """Per step and device: ``step, device, wall_ns, busy_ns, kernel_ns, idle_ns, utilization`` (kernel/wall)."""
        duration = self._duration(profile_id)
        with self._engine.connect() as conn:
            return ap.device_utilization(conn, self.event_frames, int(profile_id), duration)

    def op_table(self, profile_id: int, group_by_shape: bool = False) -> pd.DataFrame:
        """Per operator (and input shapes): ``name, [input_shapes,] calls, host_total_ns, host_self_ns,
        device_total_ns, device_self_ns, host_mean_ns, device_mean_ns``, by host total time."""
        self.profile(profile_id)
        with self._engine.connect() as conn:
            return ap.op_table(conn, self.event_frames, int(profile_id), group_by_shape)

    def kernel_table(self, profile_id: int) -> pd.DataFrame:
        """Per kernel name: ``name, calls, total_ns, mean_ns, min_ns, max_ns, share, tensor_cores,
        mean_occupancy, mean_registers, mean_blocks_per_sm``, by total time."""
        self.profile(profile_id)
        with self._engine.connect() as conn:
            return ap.kernel_table(conn, int(profile_id))

    def module_table(self, profile_id: int) -> pd.DataFrame:
        """Per module path (``Sequential_0/Linear_1``, from ``with_stack=True`` traces): ``module, calls,
        host_total_ns, host_self_ns, device_total_ns, device_self_ns``; empty without module events."""
        self.profile(profile_id)
        with self._engine.connect() as conn:
            return ap.module_table(conn, self.event_frames, int(profile_id))

    def kernel_ops(self, profile_id: int) -> pd.DataFrame:
        """Every device event with the op that launched it: ``id, kind, name, start, dur, launch_id, op_id, op,
        module`` (``op_id`` -1 and ``op``/``module`` None when unknown)."""
        self.profile(profile_id)
        with self._engine.connect() as conn:
            return ap.kernel_ops(conn, self.event_frames, int(profile_id))

    def memory_timeline(self, profile_id: int) -> pd.DataFrame:
        """Allocator events by time: ``ts, device_type, device, bytes, addr, allocated, reserved`` (allocated and
        reserved as the profiler reported them after each event; ``bytes`` < 0 is a free), ``lane_id``."""
        self.profile(profile_id)
        cols = ["ts", "device_type", "device", "bytes", "addr", "allocated", "reserved", "lane_id"]
        sql = f"SELECT {', '.join(cols)} FROM profile_memory WHERE profile_id = :p ORDER BY ts"
        with self._engine.connect() as conn:
            return pd.DataFrame(conn.execute(text(sql), {"p": int(profile_id)}).all(), columns=cols)

    def event_details(self, profile_id: int) -> pd.DataFrame:
        """What device events carry: ``event_id, grid, block`` ("x,y,z") ``, registers, shared_memory,
        blocks_per_sm, warps_per_sm, occupancy`` (percent) ``, bytes`` (memcpy/memset), by event id."""
        self.profile(profile_id)
        cols = ["event_id", "grid", "block", "registers", "shared_memory", "blocks_per_sm", "warps_per_sm",
                "occupancy", "bytes"]  # fmt: skip
        sql = (
            f"SELECT {', '.join('d.' + c for c in cols)} FROM profile_event_details d "
            "JOIN profile_events e ON e.id = d.event_id JOIN profile_lanes l ON l.id = e.lane_id "
            "WHERE l.profile_id = :p ORDER BY d.event_id"
        )
        with self._engine.connect() as conn:
            return pd.DataFrame(conn.execute(text(sql), {"p": int(profile_id)}).all(), columns=cols)

    def memory_peak(self, profile_id: int) -> pd.DataFrame:
        """Per device: ``device_type, device, peak_allocated, peak_at, peak_reserved, events``."""
        frame = self.memory_timeline(profile_id)
        cols = ["device_type", "device", "peak_allocated", "peak_at", "peak_reserved", "events"]
        rows = []
        for (dtype, device), group in frame.groupby(["device_type", "device"]):
            allocated = group["allocated"].fillna(group["bytes"].cumsum())
            at = allocated.idxmax()
            reserved = int(group["reserved"].max()) if group["reserved"].notna().any() else None
            rows.append((int(dtype), int(device), int(allocated[at]), int(group.at[at, "ts"]), reserved, len(group)))
        return pd.DataFrame(rows, columns=cols)

    def flows(self, profile_id: int) -> pd.DataFrame:
        """Flow arrows between events other than runtime -> kernel (see ``events.link``): ``kind, flow_id, src,
        dst`` (event ids). Kineto's ``fwdbwd`` flows go from a forward op to the backward op autograd ran for it."""
        self.profile(profile_id)
        sql = "SELECT kind, flow_id, src, dst FROM profile_flows WHERE profile_id = :p ORDER BY flow_id"
        with self._engine.connect() as conn:
            rows = conn.execute(text(sql), {"p": int(profile_id)}).all()
        return pd.DataFrame(rows, columns=["kind", "flow_id", "src", "dst"])
