"""Storing one decoded trace as a profile: ids, nesting, kernel->launch links, then bulk inserts.

Used inside one transaction, by the writer thread (live profiles) and by ``torchscope import``.
"""

from __future__ import annotations

import itertools
import operator
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection

from torchscope.storage.bulk import Interner, insert_rows
from torchscope.storage.profile.kinds import KIND, LAUNCH_KINDS
from torchscope.storage.profile.nesting import nest_parents
from torchscope.storage.profile.schema import (
    profile_event_details,
    profile_events,
    profile_flows,
    profile_lanes,
    profile_memory,
    profiles,
)
from torchscope.storage.profile.records import TraceColumns
from torchscope.storage.timeline.build import build_timeline

EVENT_COLUMNS = (
    "id", "lane_id", "kind", "name_id", "level", "start", "dur", "parent", "corr", "link", "ext_id", "info_id",
)  # fmt: skip
DETAIL_COLUMNS = (
    "event_id", "grid", "block", "registers", "shared_memory", "blocks_per_sm", "warps_per_sm", "occupancy", "bytes",
)  # fmt: skip
MEMORY_COLUMNS = ("profile_id", "lane_id", "ts", "device_type", "device", "bytes", "addr", "allocated", "reserved")
LANE_COLUMNS = (
    "id", "profile_id", "pid", "tid", "kind", "device", "stream", "label", "sort", "event_count", "max_level",
)  # fmt: skip
CHUNK = 100_000
_STEP = re.compile(r"ProfilerStep#(\d+)$")
_DEVICE_NAME = re.compile(r"'name':\s*'([^']*)'")


_NEXT_IDS = (
    "SELECT (SELECT COALESCE(MAX(id), 0) FROM profile_events), (SELECT COALESCE(MAX(id), 0) FROM profile_lanes), "
    "(SELECT COALESCE(MAX(id), 0) FROM profiles)"
)  # one plain statement: a live window pays this on every insert, SQLAlchemy's compile costs more than the query


def ns_from_us(values: list[float], base_ns: int) -> np.ndarray:
    """Microsecond timestamps as int64 ns, exactly to the ns the double holds (large epoch values lose none)."""
    t = np.asarray(values, dtype=np.float64)
    whole = np.floor(t)
    return whole.astype(np.int64) * 1000 + np.rint((t - whole) * 1000.0).astype(np.int64) + base_ns


def _next_ids(conn: Connection) -> tuple[int, int, int]:
    """The next free ids of profile_events, profile_lanes and profiles."""
    events, lanes, profile = conn.exec_driver_sql(_NEXT_IDS).one()
    return int(events) + 1, int(lanes) + 1, int(profile) + 1


def _pick(values: list[Any], order: list[int]) -> list[Any]:
    if not order:
        return []
    picked = operator.itemgetter(*order)(values)
    return list(picked) if len(order) > 1 else [picked]


def _nullable(array: np.ndarray) -> list[int | None]:
    return [None if v < 0 else v for v in array.tolist()]


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
    """Insert ``cols`` as a new profile of ``run_id``; returns ``{"id", "events", "kernels", "steps", ...}``."""
    n = len(cols)
    lane = np.asarray(cols.lane, dtype=np.int64)
    kind = np.asarray(cols.kind, dtype=np.int64)
    start_abs = ns_from_us(cols.ts, cols.base_ns) if n else np.zeros(0, np.int64)
    dur = np.maximum(np.rint(np.asarray(cols.dur, dtype=np.float64) * 1000.0), 0).astype(np.int64)
    mem_ts = ns_from_us([m[1] for m in cols.memory], cols.base_ns) if cols.memory else np.zeros(0, np.int64)
    never = np.iinfo(np.int64).max
    t0 = int(min(start_abs.min() if n else never, mem_ts.min() if len(mem_ts) else never))
    t_end = int(max((start_abs + dur).max() if n else t0, mem_ts.max() if len(mem_ts) else t0))
    start = start_abs - t0
    order = np.lexsort((-dur, start, lane))
    order_list = order.tolist()
    lane, kind, start, dur = lane[order], kind[order], start[order], dur[order]
    level = np.frexp(dur.astype(np.float64))[1].astype(np.int64)

    if conn.dialect.name == "postgresql":  # ids are taken as MAX + 1: keep concurrent imports from sharing them
        conn.exec_driver_sql("LOCK TABLE profiles, profile_lanes, profile_events IN SHARE ROW EXCLUSIVE MODE")
    event_base, lane_base, profile_id = _next_ids(conn)
    ids = np.arange(event_base, event_base + n, dtype=np.int64)

    lane_kinds = [_lane_kind(row) for row in cols.lanes]
    host = np.array([k == "host" for k in lane_kinds] + [False], dtype=bool)
    parent = nest_parents(lane, start, dur, host, event_base)

    corr_list = _pick(cols.corr, order_list)
    corr = np.array([-1 if c is None else c for c in corr_list], dtype=np.int64)
    link = np.full(n, -1, dtype=np.int64)
    launch = np.isin(kind, list(LAUNCH_KINDS)) & (corr >= 0)
    if launch.any():
        by_corr = corr[launch]
        sorter = np.argsort(by_corr, kind="stable")
        launched = [KIND[k] for k in ("kernel", "memcpy", "memset", "collective", "cuda_sync")]
        targets = (corr >= 0) & ~launch & np.isin(kind, launched)
        pos = np.searchsorted(by_corr, corr[targets], sorter=sorter)
        pos = np.minimum(pos, len(by_corr) - 1)
        found = by_corr[sorter[pos]] == corr[targets]
        hit = np.where(found, ids[launch][sorter[pos]], -1)
        link[targets] = hit

    name_ids = interner.ids(conn, cols.names)
    name_map = np.array([name_ids[s] for s in cols.names] or [0], dtype=np.int64)
    info_list = _pick(cols.info, order_list)
    info_ids = interner.ids(conn, {s for s in set(info_list) if s is not None})
    lane_ids = lane + lane_base

    counts = np.bincount(lane, minlength=len(cols.lanes))
    max_level = np.zeros(len(cols.lanes), dtype=np.int64)
    np.maximum.at(max_level, lane, level)
    lane_rows = [
        (lane_base + i, profile_id, str(row[0]), str(row[1]), lane_kinds[i], _int(row[4]), _int(row[5]), row[2],
         row[3], int(counts[i]), int(max_level[i]))
        for i, row in enumerate(cols.lanes)
    ]  # fmt: skip

    steps = _steps(cols)
    devices = cols.devices
    profile_row = {
        "id": profile_id, "run_id": run_id, "name": name, "source": source, "path": path, "rank": cols.rank,
        "start_ns": t0, "duration_ns": t_end - t0, "step_first": min(steps) if steps else None,
        "step_last": max(steps) if steps else None, "step_count": len(steps), "event_count": n,
        "first_event_id": event_base, "kernel_count": int(np.isin(kind, [KIND["kernel"], KIND["collective"]]).sum()),
        "device_name": _device_name(devices), "devices": orjson.dumps(devices, default=str).decode(),
        "info": orjson.dumps(cols.info_fields, default=str).decode(), "created_at": time.time_ns(),
    }  # fmt: skip
    insert_rows(conn, profiles, tuple(profile_row), [tuple(profile_row.values())])
    insert_rows(conn, profile_lanes, LANE_COLUMNS, lane_rows)

    order_names = _pick(cols.name, order_list)
    rows = zip(
        ids.tolist(), lane_ids.tolist(), kind.tolist(), name_map[order_names].tolist() if n else [],
        level.tolist(), start.tolist(), dur.tolist(), parent, corr_list, _nullable(link),
        _pick(cols.ext, order_list), [info_ids.get(s) if s is not None else None for s in info_list],
    )  # fmt: skip
    done = 0
    while True:
        chunk = list(itertools.islice(rows, CHUNK))
        if not chunk:
            break
        insert_rows(conn, profile_events, EVENT_COLUMNS, chunk)
        done += len(chunk)
        if progress:
            progress(len(chunk))

    if cols.details:
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        detail_rows = [(int(event_base + position[d[0]]), *d[1:]) for d in cols.details]
        insert_rows(conn, profile_event_details, DETAIL_COLUMNS, detail_rows)
    if cols.flows:
        flow_rows = _flow_rows(cols, profile_id, lane, start, dur, parent, event_base, t0)
        insert_rows(conn, profile_flows, ("profile_id", "kind", "flow_id", "src", "dst"), flow_rows)
    if cols.memory:
        mem = (mem_ts - t0).tolist()
        memory_rows = [(profile_id, lane_base + m[0], ts, *m[2:]) for m, ts in zip(cols.memory, mem)]
        insert_rows(conn, profile_memory, MEMORY_COLUMNS, memory_rows)
    build_timeline(conn, profile_id)
    return {
        "id": profile_id,
        "start_ns": t0,
        "duration_ns": t_end - t0,
        "events": n,
        "kernels": int(np.isin(kind, [KIND["kernel"], KIND["collective"]]).sum()),
        "steps": len(steps),
        "memory_events": len(cols.memory),
        "lanes": len(cols.lanes),
    }


def _flow_rows(
    cols: TraceColumns, profile_id: int, lane: np.ndarray, start: np.ndarray, dur: np.ndarray,
    parent: list[int | None], base: int, t0: int,
) -> list[tuple[Any, ...]]:  # fmt: skip
    """Resolve each flow end to an event: the outermost event of its lane starting at its time, else the innermost
    event enclosing it. Returns ``(profile_id, "fwdbwd", flow id, src id, dst id)`` for flows with both ends."""
    ts = (ns_from_us([f[3] for f in cols.flows], cols.base_ns) - t0).tolist()
    lane_first = np.searchsorted(lane, np.arange(len(cols.lanes) + 1), "left")
    ends: dict[Any, dict[str, int]] = {}
    for (flow_id, phase, ln, _), t in zip(cols.flows, ts):
        lo, hi = int(lane_first[ln]), int(lane_first[ln + 1])
        i = lo + int(np.searchsorted(start[lo:hi], t, "left"))
        if i < hi and start[i] == t:
            ends.setdefault(flow_id, {})[phase] = base + i
            continue
        j: int | None = i - 1 if i > lo else None
        while j is not None and start[j] + dur[j] < t:
            up = parent[j]
            j = None if up is None else up - base
        if j is not None:
            ends.setdefault(flow_id, {})[phase] = base + j
    return [(profile_id, "fwdbwd", fid, e["s"], e["f"]) for fid, e in ends.items() if "s" in e and "f" in e]


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _lane_kind(row: list[Any]) -> str:
    if row[6]:
        return "device"
    return "host" if isinstance(row[0], int) or str(row[0]).isdigit() else "other"


def _steps(cols: TraceColumns) -> list[int]:
    # a step number beyond int64 (19 digits or more) is not a step torchscope can keep: that annotation is no step
    matches = ((i, _STEP.match(s)) for i, s in enumerate(cols.names))
    step_names = {i: int(m.group(1)) for i, m in matches if m and len(m.group(1)) < 19}
    if not step_names:
        return []
    local = np.asarray(cols.name, dtype=np.int64)
    mask = (np.asarray(cols.kind) == KIND["user_annotation"]) & np.isin(local, list(step_names))
    return sorted({step_names[i] for i in np.unique(local[mask]).tolist()})


def _device_name(devices: list[Any]) -> str | None:
    if not devices:
        return None
    first = devices[0]
    if isinstance(first, dict):
        name = first.get("name")
        return name if isinstance(name, str) else None
    match = _DEVICE_NAME.search(str(first))
    return match.group(1) if match else None
