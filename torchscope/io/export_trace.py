"""A profile as a Chrome trace JSON file (``torchscope export --chrome-trace``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from torchscope.storage.profile.kinds import KIND, KIND_CATEGORY
from torchscope.storage.store import Store

_DETAIL_ARGS = (
    ("registers", "registers per thread"), ("shared_memory", "shared memory"), ("blocks_per_sm", "blocks per SM"),
    ("warps_per_sm", "warps per SM"), ("occupancy", "est. achieved occupancy %"), ("bytes", "bytes"),
)  # fmt: skip


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
