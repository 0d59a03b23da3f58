"""The profile analyses: SQL that fetches what each needs, composed with ``profile_math``'s pure functions."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Connection, bindparam, text

from torchscope.errors import BadRequestError
from torchscope.storage.driver_sql import bind, chunks
from torchscope.storage.profile import calc as pm
from torchscope.storage.profile.kinds import KIND, KINDS, uses_tensor_cores

_K = KIND
COLLECTIVE_ANNOTATIONS = ("gloo:", "nccl:", "mpi:", "ucc:", "c10d::")
_DEVICE_WORK = (_K["kernel"], _K["collective"], _K["memcpy"], _K["memset"])

_EVENTS_SQL = """
SELECT e.id, e.lane_id, e.kind, e.name_id, e.start, e.dur, COALESCE(e.parent, -1), COALESCE(e.link, -1),
       COALESCE(e.info_id, -1)
FROM profile_events e JOIN profile_lanes l ON l.id = e.lane_id
WHERE l.profile_id = {profile} AND l.kind = {lane_kind}
"""
_FETCH_ROWS = 100_000
_RANGE_SQL = (
    "SELECT id, lane_id, kind, name_id, start, dur, COALESCE(parent, -1), COALESCE(link, -1), COALESCE(info_id, -1) "
    "FROM profile_events WHERE id BETWEEN {lo} AND {hi}"
)
FRAME_COLUMNS = ("id", "lane_id", "kind", "name_id", "start", "dur", "parent", "link", "info_id")
"""The columns of an event frame (integers, -1 for NULL), as the profile analyses take them: int64 when read back;
the importer's frames hold ``lane_id``, ``kind``, ``name_id`` and ``info_id`` narrower, and ``id``, ``parent`` and
``link`` as int32 while the ids fit (the analyses give the same tables either way:
``tests/storage/test_summaries.py``)."""
_EVENT_FRAME_COLUMNS = list(FRAME_COLUMNS)


CACHED_FRAMES = 4
"""Event frames a :class:`EventFrames` keeps: a profile page runs several analyses over the same profile."""


class EventFrames:
    """The event frames of the last :data:`CACHED_FRAMES` (profile, lane kind) read, least recently used dropped.

    Stored profiles never change: the key holds the profile's creation time and event count, so a different profile
    never matches. Thread-safe; a :class:`~torchscope.storage.profile.reads.ProfileReads` owns one.
    """

    def __init__(self, size: int = CACHED_FRAMES) -> None:
        self.size = size
        self._frames: OrderedDict[tuple[Any, ...], pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every kept frame."""
        with self._lock:
            self._frames.clear()

    @staticmethod
    def _key(conn: Connection, profile_id: int, lane_kind: str) -> tuple[Any, ...]:
        stamp = conn.execute(
            text("SELECT created_at, event_count FROM profiles WHERE id = :p"), {"p": int(profile_id)}
        ).first()
        return (str(conn.engine.url), int(profile_id), lane_kind, tuple(stamp or ()))

    def put(self, conn: Connection, profile_id: int, lane_kind: str, frame: pd.DataFrame) -> None:
        """Keep ``frame`` as the events of ``profile_id``'s ``lane_kind`` lanes (the importer has them at hand)."""
        with self._lock:
            self._frames[self._key(conn, profile_id, lane_kind)] = frame

    def get(self, conn: Connection, profile_id: int, lane_kind: str) -> pd.DataFrame:
        """Events of one profile's host (or device) lanes (see :func:`_event_frame`), read once."""
        key = self._key(conn, profile_id, lane_kind)
        with self._lock:
            hit = self._frames.get(key)
            if hit is not None:
                self._frames.move_to_end(key)
                return hit
        frame = _event_frame(conn, profile_id, lane_kind)
        with self._lock:
            self._frames[key] = frame
            while len(self._frames) > self.size:
                self._frames.popitem(last=False)
        return frame


def _event_frame(conn: Connection, profile_id: int, lane_kind: str) -> pd.DataFrame:
    """Events of one profile's host (or device) lanes, all columns int64 (-1 for NULL).

    Read through the DBAPI cursor as plain tuples: SQLAlchemy ``Row`` objects cost more than the query on a
    million events.
    """
    if lane_kind not in ("host", "device", "other"):
        raise BadRequestError(f"lane kind must be host, device or other, not {lane_kind!r}")
    ranges = _lane_ranges(conn, profile_id, lane_kind)
    dialect = conn.dialect.name
    statements = (
        [bind(_RANGE_SQL, dialect, {"lo": lo, "hi": hi}) for lo, hi in ranges] if ranges is not None
        else [bind(_EVENTS_SQL, dialect, {"profile": int(profile_id), "lane_kind": lane_kind})]
    )  # fmt: skip
    cursor = conn.connection.cursor()
    parts = []
    try:
        for sql, params in statements:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(_FETCH_ROWS):  # in chunks: a million tuples at once would cost GBs
                parts.append(np.array(rows, dtype=np.int64).reshape(len(rows), len(_EVENT_FRAME_COLUMNS)))
    finally:
        cursor.close()
    table = np.concatenate(parts) if parts else np.zeros((0, len(_EVENT_FRAME_COLUMNS)), dtype=np.int64)
    return pd.DataFrame({c: table[:, i] for i, c in enumerate(_EVENT_FRAME_COLUMNS)})


def _lane_ranges(conn: Connection, profile_id: int, lane_kind: str) -> list[tuple[int, int]] | None:
    """The id range ``[lo, hi]`` of each lane of ``lane_kind`` (a profile's events are numbered lane by lane), or
    None for a profile stored without ``first_event_id`` (read through the lanes instead)."""
    first = conn.execute(text("SELECT first_event_id FROM profiles WHERE id = :p"), {"p": int(profile_id)}).scalar()
    if first is None:
        return None
    lanes = conn.execute(
        text("SELECT kind, event_count FROM profile_lanes WHERE profile_id = :p ORDER BY id"), {"p": int(profile_id)}
    ).all()
    ranges, lo = [], int(first)
    for kind, count in lanes:
        if kind == lane_kind and count:
            ranges.append((lo, lo + int(count) - 1))
        lo += int(count)
    return ranges


_NAMES_SQL = text("SELECT id, name FROM names WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))


def names_of(conn: Connection, ids: np.ndarray) -> dict[int, str]:
    """``{name_id: name}`` for the given ids."""
    wanted = sorted({int(i) for i in ids if i >= 0})
    out: dict[int, str] = {}
    for chunk in chunks(wanted):
        out.update(conn.execute(_NAMES_SQL, {"ids": chunk}).all())
    return out


def profile_base(conn: Connection, profile_id: int) -> tuple[int, int]:
    """(first event id, event count) of a profile: its events have contiguous ids."""
    row = conn.execute(
        text("SELECT first_event_id, event_count FROM profiles WHERE id = :p"), {"p": profile_id}
    ).one()
    return int(row[0] or 0), int(row[1])


def steps_frame(conn: Connection, host: pd.DataFrame, duration: int) -> pd.DataFrame:
    """``step, start, end`` of each ``ProfilerStep#N`` annotation of the host lanes (``host``: their event frame), from
    the first start to the last end of the annotations of that name; one step -1 covering the whole profile when there
    are none."""
    notes = host[host["kind"].to_numpy() == _K["user_annotation"]]
    names = names_of(conn, notes["name_id"].unique())
    numbers = {i: n.split("#", 1)[1] for i, n in names.items() if n.startswith("ProfilerStep#")}
    step_of = {i: int(number) for i, number in numbers.items() if number.isdigit()}
    notes = notes[notes["name_id"].isin(list(step_of)).to_numpy()]
    start = notes["start"].to_numpy(np.int64)
    spans = pd.DataFrame({"name_id": notes["name_id"].to_numpy(np.int64), "start": start,
                          "end": start + notes["dur"].to_numpy(np.int64)})  # fmt: skip
    grouped = spans.groupby("name_id").agg(start=("start", "min"), end=("end", "max"))
    steps = [(step_of[int(i)], int(lo), int(hi)) for i, lo, hi in grouped.itertuples()]
    if not steps:
        steps = [(-1, 0, duration)]
    return pd.DataFrame(sorted(steps), columns=["step", "start", "end"]).astype("int64")


def step_breakdown(conn: Connection, frames: EventFrames, profile_id: int, duration: int) -> pd.DataFrame:
    """See :meth:`ProfileReads.step_breakdown`."""
    host = frames.get(conn, profile_id, "host")
    dev = frames.get(conn, profile_id, "device")
    steps = steps_frame(conn, host, duration)
    annotation_names = set(names_of(conn, host.loc[host["kind"] == _K["user_annotation"], "name_id"].unique()).items())
    step_ids = {i for i, n in annotation_names if n.startswith("ProfilerStep#")}
    loader_ids = {i for i, n in names_of(conn, host["name_id"].unique()).items() if "DataLoader" in n}

    def spans(frame: pd.DataFrame, mask: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """The union of the masked events' spans (blocks, not events: the categories are held together)."""
        return _union_by_piece(frame, mask.to_numpy())

    cpu_mask = host["kind"].isin([_K["cpu_op"], _K["user_annotation"]]) & ~host["name_id"].isin(step_ids)
    if len(dev):
        communication = spans(dev, dev["kind"] == _K["collective"])
    else:  # no device: collectives run on host threads (gloo), seen as their record_function ranges
        comm_ids = {i for i, n in annotation_names if n.startswith(COLLECTIVE_ANNOTATIONS)}
        communication = spans(host, (host["kind"] == _K["user_annotation"]) & host["name_id"].isin(comm_ids))
    categories = [
        ("kernel", *spans(dev, dev["kind"] == _K["kernel"])),
        ("communication", *communication),
        ("memcpy", *spans(dev, dev["kind"] == _K["memcpy"])),
        ("memset", *spans(dev, dev["kind"] == _K["memset"])),
        ("runtime", *spans(host, host["kind"].isin([_K["cuda_runtime"], _K["cuda_driver"]]))),
        ("dataloader", *spans(host, host["name_id"].isin(loader_ids))),
        ("cpu", *spans(host, cpu_mask)),
    ]
    return pm.breakdown(steps, categories, "idle")


def _union_by_piece(frame: pd.DataFrame, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of the spans of ``frame``'s events where ``keep``, as disjoint blocks (see ``calc.union_blocks``).

    Joined lane by lane, ``calc.PIECE`` events at a time, then the pieces' blocks together: a lane's events come
    in start order, so a piece needs no sort, and the temporaries are a piece's, whatever the profile's size.
    """
    lane, start, dur = frame["lane_id"].to_numpy(), frame["start"].to_numpy(), frame["dur"].to_numpy()
    lane_starts = np.flatnonzero(lane[1:] != lane[:-1]) + 1
    bounds = sorted({0, len(lane), *lane_starts.tolist(), *range(0, len(lane), pm.PIECE)})
    starts, ends = [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        s = start[lo:hi][keep[lo:hi]].astype(np.int64)
        e = dur[lo:hi][keep[lo:hi]].astype(np.int64)
        e += s
        s, e = pm.union_blocks(s, e)
        starts.append(s)
        ends.append(e)
    if not starts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return pm.union_blocks(np.concatenate(starts), np.concatenate(ends))


LAUNCH_CALL = re.compile(r"launch|memcpy\w*async|memset\w*async|memcpywithstream", re.IGNORECASE)
"""Runtime and driver calls that put work on a device queue (cudaLaunchKernel, cuLaunchKernel, cudaGraphLaunch,
hipExtModuleLaunchKernel, cudaMemcpyAsync, hipMemcpyWithStream ...)."""
SYNC_CALL = re.compile(r"synchronize|eventquery|streamquery", re.IGNORECASE)
"""Runtime calls that wait for (or poll) the device."""
SLOW_LAUNCH_NS = 1_000_000
"""A launch call this long (1 ms) is not queueing work: it is CUDA loading the kernel's module on first use."""


def runtime_split(conn: Connection, frames: EventFrames, profile_id: int, duration: int) -> pd.DataFrame:
    """See :meth:`ProfileReads.runtime_split`."""
    host = frames.get(conn, profile_id, "host")
    steps = steps_frame(conn, host, duration)
    calls = host[host["kind"].isin([_K["cuda_runtime"], _K["cuda_driver"]])]
    names = names_of(conn, calls["name_id"].unique())  # each name matched once, not once per call
    launch = calls["name_id"].isin([i for i, n in names.items() if LAUNCH_CALL.search(n)]).to_numpy()
    sync = calls["name_id"].isin([i for i, n in names.items() if SYNC_CALL.search(n)]).to_numpy() & ~launch
    quick = calls["dur"].to_numpy(np.int64) < SLOW_LAUNCH_NS
    start = calls["start"].to_numpy(np.int64)
    end = start + calls["dur"].to_numpy(np.int64)
    kinds = {"launch": launch & quick, "sync": sync, "setup": ~(launch & quick) & ~sync}
    lo, hi = steps["start"].to_numpy(np.int64), steps["end"].to_numpy(np.int64)
    out = pd.DataFrame({"step": steps["step"].to_numpy(), "wall_ns": hi - lo})
    for kind, m in kinds.items():
        out[f"{kind}_ns"] = pm.union_length_by_window(start[m], end[m], lo, hi)
    return out


def device_utilization(conn: Connection, frames: EventFrames, profile_id: int, duration: int) -> pd.DataFrame:
    """See :meth:`ProfileReads.device_utilization`."""
    steps = steps_frame(conn, frames.get(conn, profile_id, "host"), duration)
    dev = frames.get(conn, profile_id, "device")
    query = text("SELECT id, device FROM profile_lanes WHERE profile_id = :p")
    lanes = dict(conn.execute(query, {"p": profile_id}).all())
    dev = dev.assign(device=dev["lane_id"].map(lanes).fillna(-1).astype("int64"))  # the frame is shared: no writes
    lo, hi = steps["start"].to_numpy(np.int64), steps["end"].to_numpy(np.int64)
    wall = hi - lo
    parts = []
    for device, group in dev.groupby("device"):
        work = group[group["kind"].isin(_DEVICE_WORK)]
        kern = group[group["kind"].isin((_K["kernel"], _K["collective"]))]
        s, d = work["start"].to_numpy(np.int64), work["dur"].to_numpy(np.int64)
        busy = pm.union_length_by_window(s, s + d, lo, hi)
        ks, kd = kern["start"].to_numpy(np.int64), kern["dur"].to_numpy(np.int64)
        kernel = pm.union_length_by_window(ks, ks + kd, lo, hi)
        utilization = np.divide(kernel, wall, out=np.zeros(len(wall)), where=wall != 0)
        parts.append(pd.DataFrame({"step": steps["step"].to_numpy(), "device": int(device), "wall_ns": wall,
                                   "busy_ns": busy, "kernel_ns": kernel, "idle_ns": wall - busy,
                                   "utilization": utilization}))  # fmt: skip
    cols = ["step", "device", "wall_ns", "busy_ns", "kernel_ns", "idle_ns", "utilization"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def _attribution(conn: Connection, frames: EventFrames, profile_id: int) -> dict[str, object]:
    """Host call tree positions, each event's nearest op and module, and device time per launching op.

    Arrays by position span the host events only (they come first since lanes are numbered host first; in profiles
    stored before, up to the last of them): device events are reached through their launches, which are host events.
    Positions are int32 where they fit. ``hpos`` is None when the host events are positions ``0..n-1`` in order (every
    profile stored since): then the frame's own columns are the arrays by position, not copied.
    """
    base, _ = profile_base(conn, profile_id)
    host = frames.get(conn, profile_id, "host")
    dev = frames.get(conn, profile_id, "device")
    ids = host["id"].to_numpy()
    n = int(ids.max()) - base + 1 if len(host) else 0
    index = pm.index_dtype(n)
    in_order = len(host) == n and (n == 0 or (int(ids[0]) == base and bool((ids[1:] > ids[:-1]).all())))
    hpos = None if in_order else pm.positions(ids, base, n)
    kind = _by_position(host["kind"].to_numpy(), hpos, n, np.int8, -1)
    parent_pos = pm.positions(host["parent"].to_numpy(), base, n).astype(index, copy=False)
    parent = _by_position(parent_pos, hpos, n, index, -1)
    del parent_pos
    names = names_of(conn, np.concatenate((host["name_id"].unique(), dev["name_id"].unique())))
    module_ids = {i for i, s in names.items() if s.startswith("nn.Module: ")}
    module_rows = host["kind"].eq(_K["python_function"]).to_numpy() & host["name_id"].isin(module_ids).to_numpy()
    is_module = _by_position(module_rows, hpos, n, bool, False)
    is_op = kind == _K["cpu_op"]
    op_of = pm.nearest_marked(parent, is_op, include_self=True)
    launch = pm.positions(dev["link"].to_numpy(), base, n).astype(index, copy=False)
    dev_op = np.where(launch >= 0, op_of[np.maximum(launch, 0)], -1)
    return {
        "base": base, "n": n, "host": host, "dev": dev, "hpos": hpos, "parent": parent, "names": names,
        "is_op": is_op, "is_module": is_module, "op_of": op_of, "dev_op": dev_op,
    }  # fmt: skip


def _module_tree(module_of: np.ndarray, par: np.ndarray, mpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The module calls at positions ``mpos`` numbered ``0..``: each position's number (-1 where no module call
    is), and each call's enclosing call's number (-1 at the outermost)."""
    index_of = np.full(len(module_of), -1, dtype=module_of.dtype)
    index_of[mpos] = np.arange(len(mpos))
    up = par[mpos]
    up_module = np.where(up >= 0, module_of[np.maximum(up, 0)], -1)
    return index_of, np.where(up_module >= 0, index_of[np.maximum(up_module, 0)], -1)


def _host_rows(a: dict[str, Any], pos: np.ndarray) -> np.ndarray:
    """Rows of the host frame of :func:`_attribution` ``a`` holding the host events at positions ``pos`` (every one
    a host event's): the positions themselves when the frame is in position order."""
    if a["hpos"] is None:
        return pos
    row_of = np.full(a["n"], -1, dtype=np.int64)
    row_of[a["hpos"]] = np.arange(len(a["hpos"]))
    return row_of[pos]


def _by_position(values: np.ndarray, hpos: np.ndarray | None, n: int, dtype: Any, fill: Any) -> np.ndarray:
    """A host frame column by position (see :func:`_attribution`): the column itself when ``hpos`` is None, else
    spread over ``n`` positions, ``fill`` where no host event is."""
    if hpos is None:
        return values.astype(dtype, copy=False)
    out = np.full(n, fill, dtype=dtype)
    out[hpos] = values
    return out


def op_table(conn: Connection, frames: EventFrames, profile_id: int, group_by_shape: bool) -> pd.DataFrame:
    """See :meth:`ProfileReads.op_table`."""
    a = _attribution(conn, frames, profile_id)
    n, host, dev, hpos = a["n"], a["host"], a["dev"], a["hpos"]
    # the op events: rows of the host frame (in its order, which names the groups' order) and their positions
    op_rows = np.flatnonzero(host["kind"].to_numpy() == _K["cpu_op"])
    # grouped by integer codes (a name id; with shapes, a code per distinct input-shapes text), named after: strings
    # per op event would cost a Python object and a string hash per row of a multi-million-event profile.
    # pd.factorize numbers the groups in the order their first op appears (as a groupby(sort=False) would)
    group, name_ids = pd.factorize(host["name_id"].to_numpy()[op_rows])
    names = pd.Series(np.asarray(name_ids)).map(a["names"])
    shape_texts: Any = None
    if group_by_shape:
        info_code, info_ids = pd.factorize(host["info_id"].to_numpy()[op_rows])
        infos = names_of(conn, np.asarray(info_ids))
        texts = pd.Series([_shapes(infos.get(int(i))) for i in info_ids], dtype=object)
        shape_of_info, shape_texts = pd.factorize(texts)
        shapes = max(len(shape_texts), 1)
        group, pairs = pd.factorize(group * shapes + shape_of_info[info_code])
        del info_code
        names = names[pairs // shapes].reset_index(drop=True)
        shape_texts = np.asarray(shape_texts, dtype=object)[pairs % shapes]
    groups = len(names)
    out = pd.DataFrame({"name": names})
    if shape_texts is not None:
        out["input_shapes"] = shape_texts
    out["calls"] = np.bincount(group, minlength=groups)

    def add_up(column: str, values: np.ndarray) -> None:
        """``values`` (one per op) summed by group into ``out[column]``."""
        total = np.zeros(groups, dtype=np.int64)
        np.add.at(total, group, values)
        out[column] = total

    # each column summed into the groups as soon as it is known: one value per op at a time, not four
    pos = op_rows if hpos is None else hpos[op_rows]
    del op_rows
    ops, par, op_of = len(pos), a["parent"], a["op_of"]
    op_index = np.full(n, -1, dtype=par.dtype)  # position -> op (sums are kept per op, not per position)
    op_index[pos] = np.arange(ops, dtype=par.dtype)
    dur = _by_position(host["dur"].to_numpy(), hpos, n, np.int64, 0)
    child_sum = np.zeros(ops, dtype=np.int64)  # host time of each op's direct children
    for lo in range(0, n, pm.PIECE):  # a piece at a time: the temporaries stay small
        up = par[lo : lo + pm.PIECE]
        has = up >= 0
        owner = op_index[up[has]]
        np.add.at(child_sum, owner[owner >= 0], dur[lo : lo + pm.PIECE][has][owner >= 0])
    host_total = dur[pos]
    del dur
    add_up("host_total_ns", host_total)
    add_up("host_self_ns", host_total - child_sum)
    del host_total, child_sum
    dev_op = a["dev_op"]
    launched = dev_op >= 0
    dev_owner = op_index[dev_op[launched]]  # the nearest op above each launch
    dev_dur = dev["dur"].to_numpy(np.int64)[launched]
    op_par = par[pos]
    up_op = np.where(op_par >= 0, op_of[np.maximum(op_par, 0)], -1)  # each op's nearest op above it
    up_index = np.where(up_op >= 0, op_index[np.maximum(up_op, 0)], -1)
    del op_index, op_par, up_op, pos, a["parent"], a["op_of"], a["dev_op"]
    add_up("device_total_ns", pm.add_up_ancestors(dev_owner, dev_dur, up_index, ops))
    self_dev = np.zeros(ops, dtype=np.int64)
    np.add.at(self_dev, dev_owner, dev_dur)
    add_up("device_self_ns", self_dev)
    out["host_mean_ns"] = out["host_total_ns"] / out["calls"]
    out["device_mean_ns"] = out["device_total_ns"] / out["calls"]
    return out.sort_values(["host_total_ns", "name"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _shapes(info: str | None) -> str:
    if not info:
        return ""
    try:
        return orjson.dumps(orjson.loads(info)[0]).decode()
    except (orjson.JSONDecodeError, IndexError, TypeError):
        return ""


def module_table(conn: Connection, frames: EventFrames, profile_id: int) -> pd.DataFrame:
    """See :meth:`ProfileReads.module_table`."""
    a = _attribution(conn, frames, profile_id)
    host, dev = a["host"], a["dev"]
    is_module, par = a["is_module"], a["parent"]
    cols = ["module", "calls", "host_total_ns", "host_self_ns", "device_total_ns", "device_self_ns"]
    if not is_module.any():
        return pd.DataFrame(columns=cols)
    module_of = pm.nearest_marked(par, is_module, include_self=True)
    mpos = np.flatnonzero(is_module)  # ascending position = parents first
    mrows = _host_rows(a, mpos)
    mnames = [a["names"].get(i) for i in host["name_id"].to_numpy()[mrows].tolist()]
    index_of, up_index = _module_tree(module_of, par, mpos)
    paths = pm.module_paths(mnames, up_index)
    mdur = host["dur"].to_numpy()[mrows].astype(np.int64)
    child = np.zeros(len(mpos), dtype=np.int64)
    np.add.at(child, up_index[up_index >= 0], mdur[up_index >= 0])
    dev_op = a["dev_op"]
    dev_dur = dev["dur"].to_numpy(np.int64)
    launch_mod = np.where(dev_op >= 0, module_of[np.maximum(dev_op, 0)], -1)
    owner = np.where(launch_mod >= 0, index_of[np.maximum(launch_mod, 0)], -1)
    self_dev = np.zeros(len(mpos), dtype=np.int64)
    np.add.at(self_dev, owner[owner >= 0], dev_dur[owner >= 0])
    total_dev = pm.add_up_ancestors(owner[owner >= 0], dev_dur[owner >= 0], up_index, len(mpos))
    frame = pd.DataFrame(
        {"module": paths, "host_total_ns": mdur, "host_self_ns": mdur - child, "device_total_ns": total_dev,
         "device_self_ns": self_dev}
    )  # fmt: skip
    grouped = frame.groupby("module", sort=False)
    out = grouped.sum()
    out.insert(0, "calls", grouped.size())
    return out.reset_index().sort_values("module", kind="stable").reset_index(drop=True)[cols]


def kernel_ops(conn: Connection, frames: EventFrames, profile_id: int) -> pd.DataFrame:
    """See :meth:`ProfileReads.kernel_ops`."""
    a = _attribution(conn, frames, profile_id)
    n, host, dev, names = a["n"], a["host"], a["dev"], a["names"]
    name_at = _by_position(host["name_id"].to_numpy(), a["hpos"], n, np.int64, -1)
    dev_op = a["dev_op"]
    op_id = np.where(dev_op >= 0, dev_op.astype(np.int64) + a["base"], -1)
    op_name = pd.Series(np.where(dev_op >= 0, name_at[np.maximum(dev_op, 0)], -1)).map(names).to_numpy()
    paths = _module_path_of(a, dev_op)
    return pd.DataFrame(
        {
            "id": dev["id"].to_numpy(np.int64), "kind": [KINDS[k] for k in dev["kind"].tolist()],
            "name": dev["name_id"].map(names).to_numpy(), "start": dev["start"].to_numpy(),
            "dur": dev["dur"].to_numpy(), "launch_id": dev["link"].to_numpy(np.int64), "op_id": op_id, "op": op_name,
            "module": paths,
        }
    )  # fmt: skip


def _module_path_of(a: dict[str, object], pos: np.ndarray) -> list[str | None]:
    is_module, par = a["is_module"], a["parent"]
    if not is_module.any():
        return [None] * len(pos)
    module_of = pm.nearest_marked(par, is_module, include_self=True)
    host = a["host"]
    mpos = np.flatnonzero(is_module)
    index_of, up_index = _module_tree(module_of, par, mpos)
    paths = pm.module_paths([a["names"].get(i) for i in host["name_id"].to_numpy()[_host_rows(a, mpos)].tolist()],
                            up_index)  # fmt: skip
    return [paths[index_of[module_of[p]]] if p >= 0 and module_of[p] >= 0 else None for p in pos.tolist()]


def kernel_table(conn: Connection, profile_id: int) -> pd.DataFrame:
    """See :meth:`ProfileReads.kernel_table`."""
    rows = conn.execute(
        text(
            "SELECT n.name, COUNT(*), SUM(e.dur), MIN(e.dur), MAX(e.dur), AVG(d.occupancy), AVG(d.registers), "
            "AVG(d.blocks_per_sm) FROM profile_events e JOIN profile_lanes l ON l.id = e.lane_id "
            "JOIN names n ON n.id = e.name_id LEFT JOIN profile_event_details d ON d.event_id = e.id "
            "WHERE l.profile_id = :p AND l.kind = 'device' AND e.kind IN (:k, :c) GROUP BY n.name"
        ),
        {"p": profile_id, "k": _K["kernel"], "c": _K["collective"]},
    ).all()
    cols = ["name", "calls", "total_ns", "min_ns", "max_ns", "mean_occupancy", "mean_registers", "mean_blocks_per_sm"]
    frame = pd.DataFrame(rows, columns=cols)
    frame = frame.astype({"calls": "int64", "total_ns": "int64", "min_ns": "int64", "max_ns": "int64"})
    frame.insert(3, "mean_ns", frame["total_ns"] / frame["calls"])
    total = frame["total_ns"].sum()
    frame.insert(6, "share", frame["total_ns"] / total if total else 0.0)
    frame.insert(7, "tensor_cores", frame["name"].map(uses_tensor_cores).astype(bool))
    return frame.sort_values(["total_ns", "name"], ascending=[False, True], kind="stable").reset_index(drop=True)
