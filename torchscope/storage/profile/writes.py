"""Storing one decoded trace as a profile: ids, nesting, kernel->launch links, then bulk inserts.

Used inside one transaction, by the writer thread (live profiles) and by ``torchscope import``.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import BigInteger, Column, Connection, MetaData, Table, text

from torchscope.storage.bulk import Interner, insert_columns, insert_rows
from torchscope.storage.profile.analyses import FRAME_COLUMNS
from torchscope.storage.profile.calc import PIECE, duration_levels, index_dtype
from torchscope.storage.profile.kinds import KIND, LAUNCH_KINDS
from torchscope.storage.profile.nesting import nest_parents
from torchscope.storage.profile.schema import (
    ROWID,
    profile_event_args,
    profile_event_details,
    profile_events,
    profile_flows,
    profile_lanes,
    profile_memory,
    profiles,
)
from torchscope.storage.profile.records import (
    NO_INT, NO_INT32, TYPED_COLUMNS, EventBatch, FlowEnds, TraceColumns, TraceMeta,
)
from torchscope.storage.timeline.build import ColumnsFetch, compute_timeline, store_timeline, timeline_inputs

EVENT_COLUMNS = (
    "id", "lane_id", "kind", "name_id", "level", "start", "dur", "parent", "corr", "link", "ext_id", "info_id",
    *TYPED_COLUMNS,
)  # fmt: skip
DETAIL_COLUMNS = (
    "event_id", "grid", "block", "registers", "shared_memory", "blocks_per_sm", "warps_per_sm", "occupancy", "bytes",
    "queued", "context", "bandwidth",
)  # fmt: skip
MEMORY_COLUMNS = (
    "profile_id", "lane_id", "ts", "device_type", "device", "bytes", "addr", "allocated", "reserved", "args",
)  # fmt: skip
LANE_COLUMNS = (
    "id", "profile_id", "pid", "tid", "kind", "device", "stream", "label", "sort", "event_count", "max_level",
)  # fmt: skip
CHUNK = 20_000
_STEP = re.compile(r"ProfilerStep#(\d+)$")
_DEVICE_NAME = re.compile(r"'name':\s*'([^']*)'")


_NEXT_IDS = (
    "SELECT (SELECT COALESCE(MAX(id), 0) FROM profile_events), (SELECT COALESCE(MAX(id), 0) FROM profile_lanes), "
    "(SELECT COALESCE(MAX(id), 0) FROM profiles)"
)  # one plain statement: a live window pays this on every insert, SQLAlchemy's compile costs more than the query


def _next_ids(conn: Connection) -> tuple[int, int, int]:
    """The next free ids of profile_events, profile_lanes and profiles."""
    events, lanes, profile = conn.exec_driver_sql(_NEXT_IDS).one()
    return int(events) + 1, int(lanes) + 1, int(profile) + 1


# Kernel details and other args wait in temporary tables until the events' ids (their order in the profile) are known.
_stage = MetaData()
STAGE_DETAILS = Table(
    "torchscope_stage_details", _stage,
    Column("seq", ROWID, primary_key=True, autoincrement=False),
    *(Column(c.name, c.type) for c in profile_event_details.columns if c.name != "event_id"),
    prefixes=["TEMPORARY"],
)  # fmt: skip
STAGE_ARGS = Table(
    "torchscope_stage_args", _stage,
    Column("seq", ROWID, primary_key=True, autoincrement=False),
    Column("args", profile_event_args.c.args.type, nullable=False),
    prefixes=["TEMPORARY"],
)  # fmt: skip
STAGE_IDS = Table(
    "torchscope_stage_ids", _stage,
    Column("seq", ROWID, primary_key=True, autoincrement=False),
    Column("id", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)  # fmt: skip
_COLUMNS = ("lane", "kind", "name", "start", "dur", "corr", "ext", "info")
_ID_COLUMNS = ("corr", "ext")
"""Trace ids (int64 in a batch, NO_INT for none) that the builder keeps as int32 (NO_INT32 for none) while they fit."""


def _narrow_ids(values: np.ndarray) -> np.ndarray:
    """A batch's ids as int32 when every one fits (NO_INT32 itself is not an id), else as they are."""
    known = values[values != NO_INT]
    if len(known) and (known.min() <= NO_INT32 or known.max() > np.iinfo(np.int32).max):
        return values
    out = values.astype(np.int32)
    out[values == NO_INT] = NO_INT32
    return out


def _widen_ids(values: np.ndarray) -> np.ndarray:
    """Ids kept by :func:`_narrow_ids` back as int64 (NO_INT for none)."""
    if values.dtype == np.int64:
        return values
    out = values.astype(np.int64)
    out[values == NO_INT32] = NO_INT
    return out


def _none(ids: np.ndarray) -> int:
    """The "no id" value of an id column: NO_INT32 when it is int32."""
    return NO_INT32 if ids.dtype == np.int32 else NO_INT


class ProfileBuilder:
    """Stores one trace as a new profile of ``run_id`` from its event batches, in the caller's transaction.

    :meth:`add` each :class:`EventBatch` as it is decoded (events wait as compact numpy columns, about 37 bytes
    each with their trace ids as int32 while they fit, and 4 more per typed arg their batch has; kernel details and
    memory events go to the database at once), then :meth:`finish` with the trace's :class:`TraceMeta`: the events
    are sorted by lane and start (their ids follow that order), nested, linked to their launches and inserted in
    chunks of :data:`CHUNK`.
    """

    def __init__(
        self, conn: Connection, interner: Interner, run_id: int, *, name: str, source: str, path: str | None = None,
        progress: Callable[[int], None] | None = None, keep_frames: bool = False,
        between_phases: Callable[[], object] | None = None,
    ) -> None:  # fmt: skip
        self.conn, self.interner, self.run_id = conn, interner, run_id
        self.between_phases = between_phases  # called as finish starts, and after the insert (before a large lane)
        self.keep_frames = keep_frames
        self.frames: dict[str, pd.DataFrame] = {}  # with keep_frames: the analyses' event frames, after finish
        self.name, self.source, self.path, self.progress = name, source, path, progress
        if conn.dialect.name == "postgresql":  # ids are taken as MAX + 1: keep concurrent imports from sharing them
            conn.exec_driver_sql("LOCK TABLE profiles, profile_lanes, profile_events IN SHARE ROW EXCLUSIVE MODE")
        self.event_base, self.lane_base, self.profile_id = _next_ids(conn)
        self.chunks: dict[str, list[np.ndarray]] = {c: [] for c in _COLUMNS}
        # per batch, which typed args any of its events has, and those columns (int32, one array per batch)
        self.typed: list[tuple[np.ndarray, np.ndarray]] = []
        self.names: list[str] = []
        self.infos: list[str] = []
        self.detail_seqs: list[np.ndarray] = []
        self.arg_seqs: list[np.ndarray] = []
        self.memory_events = 0
        self.memory_lanes: set[int] = set()  # trace lane indices of memory events
        self.memory_span = [np.iinfo(np.int64).max, np.iinfo(np.int64).min]
        self.n = 0

    def add(self, batch: EventBatch) -> None:
        """Take one batch of the trace's events (batches in trace order)."""
        for column in _COLUMNS:
            values = getattr(batch, column)
            self.chunks[column].append(_narrow_ids(values) if column in _ID_COLUMNS else values)
        present = (batch.typed != NO_INT32).any(axis=0)
        self.typed.append((present, batch.typed[:, present] if not present.all() else batch.typed))
        self.names.extend(batch.names)
        self.infos.extend(batch.infos)
        self.n += len(batch)
        if (batch.details or batch.args_seq) and not self.detail_seqs and not self.arg_seqs:
            _drop_stage(self.conn)
            STAGE_DETAILS.create(self.conn)
            STAGE_ARGS.create(self.conn)
        if batch.details:
            insert_rows(self.conn, STAGE_DETAILS, ("seq", *DETAIL_COLUMNS[1:]), batch.details)
            self.detail_seqs.append(np.fromiter((d[0] for d in batch.details), np.int64, len(batch.details)))
        if batch.args_seq:
            insert_rows(self.conn, STAGE_ARGS, ("seq", "args"), list(zip(batch.args_seq, batch.args_json)))
            self.arg_seqs.append(np.asarray(batch.args_seq, dtype=np.int64))
        if batch.memory:
            rows = [(self.profile_id, -1 - m[0], *m[1:]) for m in batch.memory]  # lane ids are known in finish
            insert_rows(self.conn, profile_memory, MEMORY_COLUMNS, rows)  # ts made relative in finish
            ts = [m[1] for m in batch.memory]
            self.memory_span = [min(self.memory_span[0], min(ts)), max(self.memory_span[1], max(ts))]
            self.memory_events += len(rows)
            self.memory_lanes.update(m[0] for m in batch.memory)

    def _column(self, name: str) -> np.ndarray:
        chunks = self.chunks[name]
        if name in _ID_COLUMNS and len({c.dtype for c in chunks}) > 1:  # some batches' ids did not fit int32
            chunks = [_widen_ids(c) for c in chunks]
        column = np.concatenate(chunks) if len(chunks) != 1 else chunks[0]
        self.chunks[name] = [column]
        return column

    def _take(self, name: str) -> np.ndarray:
        """A whole column, no longer kept by the builder (the caller's reference is the last one)."""
        column = self._column(name)
        self.chunks[name] = []
        return column

    def _take_typed(self) -> tuple[tuple[str, ...], np.ndarray]:
        """The typed args that some event has (column names) and their values, one row per event (NO_INT32 where
        it lacks one); no longer kept by the builder, which lets go of each batch's block once it is copied."""
        batches, self.typed = self.typed, []
        anywhere = np.any([present for present, _ in batches], axis=0) if batches else np.zeros(0, dtype=bool)
        names = tuple(name for name, kept in zip(TYPED_COLUMNS, anywhere.tolist()) if kept)
        out = np.empty((self.n, len(names)), dtype=np.int32)  # its pages are touched as the batches are let go
        at = 0
        batches.reverse()
        while batches:  # from the first batch on, each dropped once copied: the values are never held twice
            present, block = batches.pop()
            rows, has = out[at : at + len(block)], present[anywhere]
            rows[:, ~has] = NO_INT32
            rows[:, has] = block
            at += len(block)
        return names, out

    def finish(self, meta: TraceMeta) -> dict[str, Any]:
        """Store the events and the profile row; returns ``{"id", "events", "kernels", "steps", ...}``."""
        conn, n, base = self.conn, self.n, self.event_base
        for column in _COLUMNS:  # each one array, its batches' pieces freed (then given back by between_phases)
            self._column(column)
        if self.between_phases is not None:
            self.between_phases()
        lanes, lane_kinds, renumber = _lanes_by_kind(meta.lanes)
        lane = renumber[self._take("lane")]
        start, dur = self._column("start"), self._column("dur")
        never = np.iinfo(np.int64).max
        t0 = int(min(start.min() if n else never, self.memory_span[0]))
        if t0 == never:
            t0 = 0
        last_end = max((int((start[lo : lo + PIECE] + dur[lo : lo + PIECE]).max()) for lo in range(0, n, PIECE)),
                       default=t0)  # fmt: skip
        t_end = max(last_end, int(self.memory_span[1]) if self.memory_events else t0)
        steps = self._steps()
        order = np.lexsort((-dur, start, lane)).astype(index_dtype(n))
        lane, start = lane[order], start[order]
        start -= t0
        dur = dur[order]
        kind = self._take("kind")[order]
        for name in ("start", "dur"):  # the unsorted columns are done with: memory for what follows
            self._take(name)
        level = duration_levels(dur)
        host = np.array([k == "host" for k in lane_kinds] + [False], dtype=bool)
        ids = index_dtype(base + n)  # the events' ids, parents and links
        parent = nest_parents(lane, start, dur, host, base, ids)
        link = _links(kind, self._column("corr"), order, base, ids)

        name_ids = self.interner.ids(conn, self.names)
        name_map = _narrow([name_ids[s] for s in self.names] or [0])
        info_ids = self.interner.ids(conn, self.infos)
        info_map = _narrow([info_ids[s] for s in self.infos] + [-1])  # index -1: none
        counts = np.bincount(lane, minlength=len(lanes))
        max_level = np.zeros(len(lanes), dtype=np.int64)
        np.maximum.at(max_level, lane, level)
        lane_rows = [
            (self.lane_base + i, self.profile_id, str(row[0]), str(row[1]), lane_kinds[i], _int(row[4]),
             _int(row[5]), row[2], row[3], int(counts[i]), int(max_level[i]))
            for i, row in enumerate(lanes)
        ]  # fmt: skip
        kernels = int(np.isin(kind, [KIND["kernel"], KIND["collective"]]).sum())
        profile_row = {
            "id": self.profile_id, "run_id": self.run_id, "name": self.name, "source": self.source,
            "path": self.path, "rank": meta.rank, "start_ns": t0 + meta.base_ns, "duration_ns": t_end - t0,
            "step_first": min(steps) if steps else None, "step_last": max(steps) if steps else None,
            "step_count": len(steps), "event_count": n, "first_event_id": base, "kernel_count": kernels,
            "device_name": _device_name(meta.devices), "devices": orjson.dumps(meta.devices, default=str).decode(),
            "info": orjson.dumps(meta.info_fields, default=str).decode(), "created_at": time.time_ns(),
        }  # fmt: skip
        insert_rows(conn, profiles, tuple(profile_row), [tuple(profile_row.values())])
        insert_rows(conn, profile_lanes, LANE_COLUMNS, lane_rows)

        name_id = name_map[self._take("name")[order]]
        info_id = info_map[self._take("info")[order]]
        timeline_in = timeline_inputs(conn, self.profile_id)
        fetch = ColumnsFetch(base, start, dur, kind, name_id, parent)
        inserted = threading.Event()
        with ThreadPoolExecutor(1, thread_name_prefix="torchscope-timeline") as pool:
            # the timeline tables are computed from these arrays (no database) while the events go in: numpy and
            # SQLite each let go of the GIL for most of their time. A large lane waits for the insert to end (its
            # pyramid's temporaries then take the place of the trace ids the insert frees): memory stays bounded.
            after_insert = functools.partial(self._after_insert, inserted)
            timeline = pool.submit(compute_timeline, *timeline_in, fetch, after_insert)
            stored = {"lane": lane, "kind": kind, "name_id": name_id, "level": level, "start": start, "dur": dur,
                      "parent": parent, "link": link, "info_id": info_id}  # fmt: skip
            try:
                self._insert_events(order, stored)
            finally:
                inserted.set()
            del stored
            self._store_staged(order)
            if len(meta.flows.id):
                flows = meta.flows._replace(lane=renumber[meta.flows.lane])
                flow_rows = _flow_rows(flows, len(lanes), self.profile_id, lane, start, dur, parent, base, t0)
                insert_rows(conn, profile_flows, ("profile_id", "kind", "flow_id", "src", "dst"), flow_rows)
            if self.memory_events:  # times relative to the profile's start; lanes from placeholders to their ids
                cases = " ".join(f"WHEN :o{i} THEN :n{i}" for i in range(len(self.memory_lanes)))
                params = {"t0": t0, "p": self.profile_id}
                for i, old in enumerate(sorted(self.memory_lanes)):
                    params[f"o{i}"], params[f"n{i}"] = -1 - old, self.lane_base + int(renumber[old])
                sql = (f"UPDATE profile_memory SET ts = ts - :t0, lane_id = CASE lane_id {cases} END "
                       "WHERE profile_id = :p")  # fmt: skip
                conn.execute(text(sql), params)
        store_timeline(conn, self.profile_id, timeline.result())
        del level, order
        if self.keep_frames:  # lanes are numbered host, then device: each kind's events are one slice, not copied
            hosts, devices = lane_kinds.count("host"), lane_kinds.count("device")
            first_device, first_other = np.searchsorted(lane, [hosts, hosts + devices])
            columns = {"id": np.arange(base, base + n, dtype=ids), "lane_id": lane + np.int32(self.lane_base),
                       "kind": kind, "name_id": name_id, "start": start, "dur": dur, "parent": parent, "link": link,
                       "info_id": info_id}  # fmt: skip
            del lane, start, dur, kind, parent, name_id, link, info_id
            for lane_kind, lo, hi in (("host", 0, first_device), ("device", first_device, first_other)):
                frame = {c: columns[c][lo:hi] for c in FRAME_COLUMNS}
                self.frames[lane_kind] = pd.DataFrame(frame, copy=False)
            del columns
        return {
            "id": self.profile_id, "start_ns": t0 + meta.base_ns, "duration_ns": t_end - t0, "events": n,
            "kernels": kernels, "steps": len(steps), "memory_events": self.memory_events, "lanes": len(lanes),
        }  # fmt: skip

    def _after_insert(self, inserted: threading.Event) -> bool:
        """Wait for the events insert to end (a large lane's pyramid takes the memory it frees), then
        ``between_phases``; True (the wait has no timeout)."""
        ended = inserted.wait()
        if self.between_phases is not None:
            self.between_phases()
        return ended

    def _insert_events(self, order: np.ndarray, stored: dict[str, np.ndarray]) -> None:
        """Insert the events in stored order (event ``i`` gets id ``event_base + i``): ``stored`` holds the columns
        computed in that order; corr, ext id and the typed args are taken from the builder (``order`` picks them)."""
        conn, n, base = self.conn, self.n, self.event_base
        corr, ext, (typed_names, typed) = self._take("corr"), self._take("ext"), self._take_typed()
        nulls = {"parent": -1, "corr": _none(corr), "link": -1, "ext_id": _none(ext), "info_id": -1,
                 **dict.fromkeys(TYPED_COLUMNS, NO_INT32)}  # fmt: skip
        # a typed arg no event has is left out of the insert: NULL, with no value bound per row
        columns = EVENT_COLUMNS[: len(EVENT_COLUMNS) - len(TYPED_COLUMNS)] + typed_names
        first_typed = len(columns) - len(typed_names)
        block = np.empty((min(CHUNK, n), len(columns)), dtype=np.int64)
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            pick = order[lo:hi]
            rows = block[: hi - lo]
            rows[:, 0] = np.arange(base + lo, base + hi)
            rows[:, 1] = stored["lane"][lo:hi]
            rows[:, 1] += self.lane_base
            for column, name in enumerate(("kind", "name_id", "level", "start", "dur", "parent"), 2):
                rows[:, column] = stored[name][lo:hi]
            rows[:, 8], rows[:, 9], rows[:, 10] = corr[pick], stored["link"][lo:hi], ext[pick]
            rows[:, 11] = stored["info_id"][lo:hi]
            rows[:, first_typed:] = typed[pick]
            insert_columns(conn, profile_events, columns, rows, nulls)
            if self.progress:
                self.progress(hi - lo)

    def _store_staged(self, order: np.ndarray) -> None:
        """Move the staged kernel details and other args to their events' ids (``order``: trace index by id)."""
        if not self.detail_seqs and not self.arg_seqs:
            return
        conn = self.conn
        position = np.empty(self.n, dtype=order.dtype)
        position[order] = np.arange(self.n, dtype=order.dtype)
        seqs = np.union1d(np.concatenate(self.detail_seqs or [[]]), np.concatenate(self.arg_seqs or [[]]))
        seqs = seqs.astype(np.int64)
        STAGE_IDS.create(conn)
        stored_ids = position[seqs].astype(np.int64) + self.event_base
        insert_columns(conn, STAGE_IDS, ("seq", "id"), np.column_stack((seqs, stored_ids)), {})
        del position, seqs, stored_ids
        cols = ", ".join(f"s.{c}" for c in DETAIL_COLUMNS[1:])
        if self.detail_seqs:
            conn.exec_driver_sql(
                f"INSERT INTO profile_event_details ({', '.join(DETAIL_COLUMNS)}) SELECT m.id, {cols} "
                "FROM torchscope_stage_details s JOIN torchscope_stage_ids m ON m.seq = s.seq"
            )
        if self.arg_seqs:
            conn.exec_driver_sql(
                "INSERT INTO profile_event_args (event_id, args) SELECT m.id, s.args "
                "FROM torchscope_stage_args s JOIN torchscope_stage_ids m ON m.seq = s.seq ORDER BY m.id"
            )  # in id order: appended to the table's b-tree, not inserted all over it
        _drop_stage(conn)

    def _steps(self) -> list[int]:
        """The ProfilerStep#N numbers of the trace's step annotations."""
        # a step number beyond int64 (19 digits or more) is not a step torchscope can keep: that annotation is no step
        matches = ((i, _STEP.match(s)) for i, s in enumerate(self.names))
        step_names = {i: int(m.group(1)) for i, m in matches if m and len(m.group(1)) < 19}
        if not step_names:
            return []
        local = self._column("name")
        mask = (self._column("kind") == KIND["user_annotation"]) & np.isin(local, list(step_names))
        return sorted({step_names[i] for i in np.unique(local[mask]).tolist()})


def _narrow(ids: list[int]) -> np.ndarray:
    """Interned ids as int32 when they fit (the event frames and the insert hold one per event), else int64."""
    small = np.iinfo(np.int32)
    return np.array(ids, dtype=np.int32 if small.min <= min(ids) and max(ids) <= small.max else np.int64)


def _drop_stage(conn: Connection) -> None:
    for table in (STAGE_DETAILS, STAGE_ARGS, STAGE_IDS):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")


def _links(kind: np.ndarray, corr: np.ndarray, order: np.ndarray, base: int, dtype: type = np.int64) -> np.ndarray:
    """For each device event, the id (as ``dtype``) of the runtime call that launched it (same correlation id), else
    -1. ``kind`` is in stored order (event ``i`` has id ``base + i``), ``corr`` in trace order (``corr[order]`` is
    stored order): only the launches' and the launched events' correlation ids are gathered."""
    link = np.full(len(kind), -1, dtype=dtype)
    launches = np.flatnonzero(np.isin(kind, list(LAUNCH_KINDS)))
    launch_corr = corr[order[launches]]
    launches, launch_corr = launches[launch_corr >= 0], launch_corr[launch_corr >= 0]
    if not len(launches):
        return link
    launched = [KIND[k] for k in ("kernel", "memcpy", "memset", "collective", "cuda_sync")]
    targets = np.flatnonzero(np.isin(kind, launched))
    target_corr = corr[order[targets]]
    targets, target_corr = targets[target_corr >= 0], target_corr[target_corr >= 0]
    sorter = np.argsort(launch_corr, kind="stable")
    pos = np.minimum(np.searchsorted(launch_corr, target_corr, sorter=sorter), len(launch_corr) - 1)
    found = launch_corr[sorter[pos]] == target_corr
    link[targets[found]] = launches[sorter[pos[found]]] + dtype(base)
    return link


def insert_profile(
    conn: Connection,
    interner: Interner,
    run_id: int,
    cols: TraceColumns,
    *,
    name: str,
    source: str,
    path: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Insert the decoded trace ``cols`` as a new profile of ``run_id`` (see :class:`ProfileBuilder`)."""
    builder = ProfileBuilder(conn, interner, run_id, name=name, source=source, path=path, progress=progress)
    for batch in cols.batches:
        builder.add(batch)
    return builder.finish(cols.meta)


def _flow_rows(
    flows: FlowEnds, n_lanes: int, profile_id: int, lane: np.ndarray, start: np.ndarray, dur: np.ndarray,
    parent: np.ndarray, base: int, t0: int,
) -> list[tuple[Any, ...]]:  # fmt: skip
    """Resolve each flow end to an event: the outermost event of its lane starting at its time, else the innermost
    event enclosing it (the last end of a kind a flow has wins). Returns ``(profile_id, "fwdbwd", flow id, src id,
    dst id)`` for flows with both ends, by flow id."""
    lane_first = np.searchsorted(lane, np.arange(n_lanes + 1), "left")
    t = flows.ns - t0
    at = np.full(len(t), -1, dtype=np.int64)  # the position of each end's event, -1 for none
    for ln in np.unique(flows.lane).tolist():
        lo, hi = int(lane_first[ln]), int(lane_first[ln + 1])
        if hi == lo:
            continue
        ends = np.flatnonzero(flows.lane == ln)
        i = lo + np.searchsorted(start[lo:hi], t[ends], "left")
        exact = (i < hi) & (start[np.minimum(i, hi - 1)] == t[ends])
        at[ends[exact]] = i[exact]
        for end, k in zip(ends[~exact].tolist(), i[~exact].tolist()):  # inside an event: walk up from the one before
            j: int | None = k - 1 if k > lo else None
            while j is not None and start[j] + dur[j] < t[end]:
                up = int(parent[j])
                j = None if up < 0 else up - base
            if j is not None:
                at[end] = j
    resolved = at >= 0
    src_ids, src = _last_by_flow(flows.id, at, resolved & flows.source)
    dst_ids, dst = _last_by_flow(flows.id, at, resolved & ~flows.source)
    both, s, d = np.intersect1d(src_ids, dst_ids, assume_unique=True, return_indices=True)
    return [(profile_id, "fwdbwd", f, base + a, base + b)
            for f, a, b in zip(both.tolist(), src[s].tolist(), dst[d].tolist())]  # fmt: skip


def _last_by_flow(flow_id: np.ndarray, at: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct flow ids of the ends in ``mask`` and, for each, ``at`` of its last such end."""
    ids, values = flow_id[mask][::-1], at[mask][::-1]
    distinct, last = np.unique(ids, return_index=True)
    return distinct, values[last]


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


_LANE_KIND_RANK = {"host": 0, "device": 1, "other": 2}


def _lanes_by_kind(rows: list[list[Any]]) -> tuple[list[list[Any]], list[str], np.ndarray]:
    """The trace's lanes numbered host threads first, then device streams, then the rest (trace order within a
    kind): their rows, their kinds, and each trace lane index's new number."""
    kinds = [_lane_kind(row) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: _LANE_KIND_RANK[kinds[i]])
    renumber = np.empty(len(rows), dtype=np.int32)
    renumber[order] = np.arange(len(rows), dtype=np.int32)
    return [rows[i] for i in order], [kinds[i] for i in order], renumber


def _lane_kind(row: list[Any]) -> str:
    if row[6]:
        return "device"
    return "host" if isinstance(row[0], int) or str(row[0]).isdigit() else "other"


def _device_name(devices: list[Any]) -> str | None:
    if not devices:
        return None
    first = devices[0]
    if isinstance(first, dict):
        name = first.get("name")
        return name if isinstance(name, str) else None
    match = _DEVICE_NAME.search(str(first))
    return match.group(1) if match else None
