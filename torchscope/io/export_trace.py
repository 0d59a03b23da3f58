"""A profile as a Chrome trace JSON file (``torchscope export --chrome-trace``), as Kineto writes it.

What the importer kept is written back: typed columns as the Kineto args they came from, every other arg as the
trace wrote it (``profile_event_args``), the metadata events (process and thread names, labels, sort indices) and
the top-level fields. Timestamps count from the trace's own ``baseTimeNanoseconds`` (0 when it had none), so a
consumer that rounds them (HolisticTraceAnalysis) sees the same numbers as in the original. A ``.gz`` name is
written gzip-compressed. docs/export.md lists what is not kept.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from torchscope.storage.profile.kinds import KIND, KIND_CATEGORY
from torchscope.storage.profile.records import input_args
from torchscope.storage.store import Store

_DETAIL_ARGS = (
    ("registers", "registers per thread"), ("shared_memory", "shared memory"), ("blocks_per_sm", "blocks per SM"),
    ("warps_per_sm", "warps per SM"), ("occupancy", "est. achieved occupancy %"), ("bytes", "bytes"),
    ("queued", "queued"), ("context", "context"), ("bandwidth", "memory bandwidth (GB/s)"),
)  # fmt: skip
_INT_DETAILS = frozenset(("registers", "shared_memory", "bytes", "queued", "context"))
_LANE_ARGS = frozenset(KIND[k] for k in ("kernel", "memcpy", "memset", "collective"))
"""Kinds whose ``device`` and ``stream`` args the importer keeps on their lane (others keep them as they were)."""
_OWN_INFO = "torchscope_"  # info keys the importer added (skipped phases, ...): not trace fields


def _lane_id(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value


def _us(ns: int) -> float:
    """Microseconds with the ns kept exactly (the importer turns the double back into the same ns)."""
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    return float(f"{sign}{ns // 1000}.{ns % 1000:03d}")


def chrome_trace_bytes(store: Store, profile_id: int) -> tuple[bytes, int]:
    """Profile ``profile_id`` as Chrome trace JSON text, and its number of events.

    The top-level fields come first, written with a space after each colon, as Kineto writes them: HTA finds a
    trace's rank with the pattern ``"rank":\\s+(\\d+)``.
    """
    meta = store.profile(profile_id)
    info = orjson.loads(meta["info"] or "{}")
    start_ns = int(meta["start_ns"])
    base = info.get(_OWN_INFO + "ts_base_ns")
    if type(base) is not int or base > start_ns:  # stored before 0.6 (or a clock that went back): a whole second
        base = start_ns - start_ns % 1_000_000_000
    offset = start_ns - base
    lanes = store.lanes(profile_id).set_index("id")
    events = store.events(profile_id)
    out = _metadata_events(info.get(_OWN_INFO + "metadata_events"), lanes)
    out.extend(_events(store, profile_id, events, lanes, offset))
    out.extend(_memory_events(store, profile_id, lanes, offset))
    fields = {k: v for k, v in info.items() if not k.startswith(_OWN_INFO)}
    fields.setdefault("schemaVersion", 1)
    fields["deviceProperties"] = orjson.loads(meta["devices"] or "[]")
    fields.setdefault("displayTimeUnit", "ns")
    dist = fields.get("distributedInfo")
    if meta["rank"] is not None and not (isinstance(dist, dict) and "rank" in dist):  # the rank came from a file name
        fields["distributedInfo"] = {**(dist if isinstance(dist, dict) else {}), "rank": int(meta["rank"])}
    if base or "baseTimeNanoseconds" in fields:
        fields["baseTimeNanoseconds"] = base
    header = json.dumps(fields, default=str, allow_nan=False)[:-1]
    text = header.encode() + (b", " if fields else b"") + b'"traceEvents": '
    return text + orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY) + b"}", len(events)


def write_chrome_trace(store: Store, profile_id: int, path: Path) -> str:
    """Write profile ``profile_id`` as Chrome trace JSON to ``path`` (gzip when it ends in ``.gz``); returns a
    summary line."""
    text, count = chrome_trace_bytes(store, profile_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text, compresslevel=6, mtime=0) if path.name.endswith(".gz") else text)
    return f"wrote profile {profile_id} ({count} events) as a Chrome trace to {path}"


def _metadata_events(stored: Any, lanes: pd.DataFrame) -> list[dict[str, Any]]:
    """The trace's metadata events as read; for profiles stored before they were kept, made from the lanes."""
    if isinstance(stored, list):
        return stored
    out: list[dict[str, Any]] = []
    for _, lane in lanes.iterrows():
        pid, tid = _lane_id(lane["pid"]), _lane_id(lane["tid"])
        if lane["label"] is not None and not pd.isna(lane["label"]):
            label = {"name": lane["label"]}
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "ts": 0, "args": label})
        if not pd.isna(lane["sort"]):
            out.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "ts": 0,
                        "args": {"sort_index": int(lane["sort"])}})  # fmt: skip
    return out


def _events(
    store: Store, profile_id: int, events: pd.DataFrame, lanes: pd.DataFrame, offset: int
) -> list[dict[str, Any]]:
    """The profile's X and i events with their args, the runtime -> kernel flows and the stored flows."""
    details = store.event_details(profile_id).set_index("event_id").to_dict("index")
    extra = store.event_args(profile_id)
    extra_args = dict(zip(extra["event_id"].tolist(), extra["args"].tolist()))
    del extra
    launches = dict(zip(events["id"].tolist(), zip(events["lane_id"].tolist(), events["start"].tolist())))
    lane_pid = {i: (_lane_id(r["pid"]), _lane_id(r["tid"])) for i, r in lanes.iterrows()}
    device_args = {
        i: {k: int(r[k]) for k in ("device", "stream") if not pd.isna(r[k])}
        for i, r in lanes.iterrows() if r["kind"] == "device"
    }  # fmt: skip
    out: list[dict[str, Any]] = []
    for ev in events.itertuples(index=False):
        pid, tid = lane_pid[ev.lane_id]
        kind = KIND[ev.kind]
        ts = _us(offset + int(ev.start))
        args: dict[str, Any] = {}
        if not pd.isna(ev.ext_id):
            args["External id"] = int(ev.ext_id)
        if kind == KIND["instant"]:
            if ev.id in extra_args:
                args.update(orjson.loads(extra_args[ev.id]))
            scope = ev.info or "t"
            out.append({"ph": "i", "s": scope, "name": ev.name, "pid": pid, "tid": tid, "ts": ts, "args": args})
            continue
        if not pd.isna(ev.corr):
            args["correlation"] = int(ev.corr)
        cat = ev.info if kind == KIND["other"] else KIND_CATEGORY[kind]
        if kind != KIND["other"] and isinstance(ev.info, str):
            args.update(input_args(ev.info))
        if kind in _LANE_ARGS and ev.lane_id in device_args:
            args.update(device_args[ev.lane_id])
        if ev.id in details:
            _add_details(args, details[ev.id])
        if ev.id in extra_args:
            args.update(orjson.loads(extra_args[ev.id]))
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
    return out


def _memory_events(store: Store, profile_id: int, lanes: pd.DataFrame, offset: int) -> list[dict[str, Any]]:
    lane_pid = {i: (_lane_id(r["pid"]), _lane_id(r["tid"])) for i, r in lanes.iterrows()}
    out: list[dict[str, Any]] = []
    for m in store.memory_timeline(profile_id).itertuples(index=False):
        pid, tid = lane_pid[m.lane_id]
        args = {"Total Reserved": _opt(m.reserved), "Total Allocated": _opt(m.allocated), "Bytes": int(m.bytes),
                "Device Id": int(m.device), "Device Type": int(m.device_type), "Addr": _opt(m.addr)}  # fmt: skip
        if isinstance(m.args, str):
            args.update(orjson.loads(m.args))
        out.append({"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", "pid": pid, "tid": tid,
                    "ts": _us(offset + int(m.ts)), "args": args})  # fmt: skip
    return out


def _opt(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _add_details(args: dict[str, Any], row: dict[str, Any]) -> None:
    for column in ("grid", "block"):
        if isinstance(row[column], str):
            args[column] = [int(x) if x.lstrip("-").isdigit() else x for x in row[column].split(",")]
    for column, key in _DETAIL_ARGS:
        value = row[column]
        if value is not None and not pd.isna(value):
            args[key] = int(value) if column in _INT_DETAILS else float(value)
