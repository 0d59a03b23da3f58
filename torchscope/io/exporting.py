"""``torchscope export``: a run's scalars and histograms as TensorBoard event files, a profile as a Chrome trace
(profiles as Parquet tables: :mod:`torchscope.io.parquet`)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from torchscope.errors import ExportError
from torchscope.storage.profile.kinds import KIND, KIND_CATEGORY
from torchscope.storage.store import Store

_DETAIL_ARGS = (
    ("registers", "registers per thread"), ("shared_memory", "shared memory"), ("blocks_per_sm", "blocks per SM"),
    ("warps_per_sm", "warps per SM"), ("occupancy", "est. achieved occupancy %"), ("bytes", "bytes"),
)  # fmt: skip


def export_run(
    db: str | os.PathLike[str] | None,
    run_id: int,
    tensorboard_dir: str | os.PathLike[str] | None = None,
    chrome_trace: str | os.PathLike[str] | None = None,
    profile_id: int | None = None,
    parquet_dir: str | os.PathLike[str] | None = None,
) -> Iterator[str]:
    """Export run ``run_id``; yields one printable line per file written.

    ``tensorboard_dir``: its scalars (``simple_value``) and imported histograms (``HistogramProto``) as an event
    file TensorBoard reads. ``chrome_trace``: profile ``profile_id`` of the run (default: its first) as Chrome
    trace JSON (Perfetto, chrome://tracing, and ``torchscope import`` read it back with identical events).
    ``parquet_dir``: profile ``profile_id`` (default: every profile of the run, e.g. one per rank) as Parquet
    tables (docs/parquet.md; needs pyarrow).
    """
    with Store(db) as store:
        run = store.run(run_id)
        if tensorboard_dir:
            yield write_tensorboard(store, int(run["id"]), Path(tensorboard_dir))
        if chrome_trace:
            first = _profiles_of_run(store, int(run["id"]), profile_id, "a Chrome trace")[0]
            yield write_chrome_trace(store, first, Path(chrome_trace))
        if parquet_dir:
            from torchscope.io.parquet import export_parquet

            yield from export_parquet(store, _profiles_of_run(store, int(run["id"]), profile_id, "Parquet"), parquet_dir)


def _profiles_of_run(store: Store, run_id: int, profile_id: int | None, what: str) -> list[int]:
    """``[profile_id]`` when it is a profile of the run, else every profile of the run (ExportError when none)."""
    profiles = store.profiles(run_id)
    if profiles.empty:
        raise ExportError(f"run {run_id} has no profile to export as {what}")
    known = [int(x) for x in profiles["id"]]
    if profile_id is None:
        return known
    if int(profile_id) not in known:
        raise ExportError(f"profile {profile_id} is not a profile of run {run_id} (it has {known})")
    return [int(profile_id)]


def write_tensorboard(store: Store, run_id: int, logdir: Path) -> str:
    """Write the run's scalars and histograms into a new event file under ``logdir``; returns a summary line."""
    logdir.mkdir(parents=True, exist_ok=True)
    scalars = store.scalars(run_id)
    histograms = store.histograms(run_id)
    writer = EventFileWriter(str(logdir))
    try:
        for row in scalars.itertuples(index=False):
            value = summary_pb2.Summary.Value(tag=row.tag, simple_value=float(row.value))
            writer.add_event(_event(row.wall_time, row.step, value))
        for row in histograms.itertuples(index=False):
            buckets = row.buckets
            histo = summary_pb2.HistogramProto(
                min=_num(row.min), max=_num(row.max), num=_num(row.num), sum=_num(row.sum),
                sum_squares=_num(row.sum_squares), bucket_limit=[b[1] for b in buckets], bucket=[b[2] for b in buckets],
            )  # fmt: skip
            writer.add_event(_event(row.wall_time, row.step, summary_pb2.Summary.Value(tag=row.tag, histo=histo)))
    finally:
        writer.close()
    return (
        f"wrote {len(scalars)} scalars ({scalars['tag'].nunique()} tags) and {len(histograms)} histograms "
        f"of run {run_id} to {logdir}"
    )


def _event(wall_ns: int, step: int, value: summary_pb2.Summary.Value) -> event_pb2.Event:
    return event_pb2.Event(wall_time=wall_ns / 1e9, step=int(step), summary=summary_pb2.Summary(value=[value]))


def _num(value: Any) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _lane_id(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value


def _us(ns: int) -> float:
    """Microseconds with the ns kept exactly (the importer turns the double back into the same ns)."""
    return float(f"{ns // 1000}.{ns % 1000:03d}")


def write_chrome_trace(store: Store, profile_id: int, path: Path) -> str:
    """Write profile ``profile_id`` as Chrome trace JSON to ``path``; returns a summary line."""
    meta = store.profile(profile_id)
    lanes = store.lanes(profile_id).set_index("id")
    events = store.events(profile_id)
    details = store.event_details(profile_id).set_index("event_id")
    memory = store.memory_timeline(profile_id)
    # timestamps are written relative to a whole second, so they stay exact in a double
    base = int(meta["start_ns"]) - int(meta["start_ns"]) % 1_000_000_000
    offset = int(meta["start_ns"]) - base
    out: list[dict[str, Any]] = []
    for lane_id, lane in lanes.iterrows():
        pid, tid = _lane_id(lane["pid"]), _lane_id(lane["tid"])
        if lane["label"] is not None and not pd.isna(lane["label"]):
            label = {"name": lane["label"]}
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "ts": 0, "args": label})
        if not pd.isna(lane["sort"]):
            out.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "ts": 0,
                        "args": {"sort_index": int(lane["sort"])}})  # fmt: skip
    launches = dict(zip(events["id"].tolist(), zip(events["lane_id"].tolist(), events["start"].tolist())))
    lane_pid = {i: (_lane_id(r["pid"]), _lane_id(r["tid"])) for i, r in lanes.iterrows()}
    device_args = {
        i: {k: int(r[k]) for k in ("device", "stream") if not pd.isna(r[k])}
        for i, r in lanes.iterrows() if r["kind"] == "device"
    }  # fmt: skip
    detail_rows = details.to_dict("index")
    for ev in events.itertuples(index=False):
        pid, tid = lane_pid[ev.lane_id]
        kind = _kind_code(ev.kind)
        ts = _us(offset + int(ev.start))
        args: dict[str, Any] = {}
        if not pd.isna(ev.ext_id):
            args["External id"] = int(ev.ext_id)
        if not pd.isna(ev.corr):
            args["correlation"] = int(ev.corr)
        if kind == KIND["instant"]:
            scope = ev.info or "t"
            out.append({"ph": "i", "s": scope, "name": ev.name, "pid": pid, "tid": tid, "ts": ts, "args": args})
            continue
        cat = ev.info if kind == KIND["other"] else KIND_CATEGORY[kind]
        if kind != KIND["other"] and isinstance(ev.info, str):
            dims, types = orjson.loads(ev.info)
            args["Input Dims"], args["Input type"] = dims, types
        if ev.lane_id in device_args:
            args.update(device_args[ev.lane_id])
        if ev.id in detail_rows:
            _add_details(args, detail_rows[ev.id])
        out.append({"ph": "X", "cat": cat, "name": ev.name, "pid": pid, "tid": tid, "ts": ts,
                    "dur": _us(int(ev.dur)), "args": args})  # fmt: skip
        if not pd.isna(ev.link) and int(ev.link) in launches:
            launch_lane, launch_start = launches[int(ev.link)]
            lpid, ltid = lane_pid[launch_lane]
            flow = int(ev.corr)
            out.append({"ph": "s", "id": flow, "cat": "ac2g", "name": "ac2g", "pid": lpid, "tid": ltid,
                        "ts": _us(offset + int(launch_start))})  # fmt: skip
            out.append({"ph": "f", "id": flow, "cat": "ac2g", "name": "ac2g", "pid": pid, "tid": tid, "ts": ts,
                        "bp": "e"})  # fmt: skip
    for flow in store.flows(profile_id).itertuples(index=False):
        for phase, event_id in (("s", int(flow.src)), ("f", int(flow.dst))):
            lane_id, event_start = launches[event_id]
            pid, tid = lane_pid[lane_id]
            point = {"ph": phase, "id": int(flow.flow_id), "cat": flow.kind, "name": flow.kind, "pid": pid, "tid": tid,
                     "ts": _us(offset + int(event_start))}  # fmt: skip
            if phase == "f":
                point["bp"] = "e"
            out.append(point)
    for m in memory.itertuples(index=False):
        pid, tid = lane_pid[m.lane_id]
        args = {"Total Reserved": _opt(m.reserved), "Total Allocated": _opt(m.allocated), "Bytes": int(m.bytes),
                "Device Id": int(m.device), "Device Type": int(m.device_type), "Addr": _opt(m.addr)}  # fmt: skip
        out.append({"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", "pid": pid, "tid": tid,
                    "ts": _us(offset + int(m.ts)), "args": args})  # fmt: skip
    trace = {
        "schemaVersion": 1,
        "deviceProperties": orjson.loads(meta["devices"] or "[]"),
        **{k: v for k, v in orjson.loads(meta["info"] or "{}").items() if k != "schemaVersion"},
        "displayTimeUnit": "ns",
        "baseTimeNanoseconds": base,
        "traceEvents": out,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(trace, option=orjson.OPT_SERIALIZE_NUMPY))
    return f"wrote profile {profile_id} ({len(events)} events) as a Chrome trace to {path}"


def _kind_code(name: str) -> int:
    return KIND[name]


def _opt(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _add_details(args: dict[str, Any], row: dict[str, Any]) -> None:
    for column in ("grid", "block"):
        if isinstance(row[column], str):
            args[column] = [int(x) if x.lstrip("-").isdigit() else x for x in row[column].split(",")]
    for column, key in _DETAIL_ARGS:
        value = row[column]
        if value is not None and not pd.isna(value):
            args[key] = int(value) if column in ("registers", "shared_memory", "bytes") else float(value)
