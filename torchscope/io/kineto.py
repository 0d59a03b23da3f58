"""Decoding a Chrome / Kineto trace (bytes of JSON) into columns, in one pass over its events.

This is the only place that knows the trace format's field names. It is used by the live profiler's record handler
(on the writer thread) and by ``torchscope import``. It never builds per-event objects beyond the decoded JSON:
columns are plain lists, turned into numpy arrays by the caller.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson

from torchscope.errors import TraceImportError
from torchscope.storage.profile.kinds import CATEGORY_KIND, DEVICE_KINDS, KIND, is_collective
from torchscope.storage.profile.records import TraceColumns

_KERNEL, _COLLECTIVE, _OTHER, _INSTANT = KIND["kernel"], KIND["collective"], KIND["other"], KIND["instant"]
_HAS_DETAILS = frozenset((KIND["kernel"], KIND["memcpy"], KIND["memset"], KIND["collective"]))
_INT64 = (1 << 63) - 1


def read_bytes(path: str) -> bytes:
    """The JSON text of a ``.json`` or ``.json.gz`` file; :class:`TraceImportError` for a broken gzip stream."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceImportError(f"{path}: the gzip file is truncated or corrupt ({exc})") from exc
    return raw


def load_json(raw: bytes, where: str) -> Any:
    """orjson-decode ``raw``; :class:`TraceImportError` naming ``where`` when it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TraceImportError(f"{where}: not valid JSON, the file is truncated or corrupt ({exc})") from exc


def decode_trace(data: Any, where: str) -> TraceColumns:
    """Columns of a decoded Chrome trace (an object with ``traceEvents`` or a bare list of events).

    Raises :class:`TraceImportError` for JSON that is not a trace or holds malformed events.
    """
    if isinstance(data, dict):
        events = data.get("traceEvents")
        if not isinstance(events, list):
            raise TraceImportError(f"{where}: JSON without 'traceEvents': not a Chrome/Kineto trace")
    elif isinstance(data, list):
        events = data
    else:
        raise TraceImportError(f"{where}: not a Chrome/Kineto trace (top level is a {type(data).__name__})")
    out = TraceColumns()
    if isinstance(data, dict):
        _trace_fields(data, out)
    try:
        _decode_events(events, out)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TraceImportError(f"{where}: malformed trace event ({type(exc).__name__}: {exc})") from exc
    if not out.kind and not out.memory:
        raise TraceImportError(f"{where}: a JSON file with no trace events ('X' or 'i'): nothing to import")
    return out


def _trace_fields(data: dict[str, Any], out: TraceColumns) -> None:
    base = data.get("baseTimeNanoseconds")
    out.base_ns = int(base) if base not in (None, "") else 0
    devices = data.get("deviceProperties", [])
    if isinstance(devices, str):  # older Kineto writes a Python repr; keep it as text
        devices = [devices] if devices not in ("", "[]") else []
    out.devices = devices if isinstance(devices, list) else [devices]
    dist = data.get("distributedInfo")
    if isinstance(dist, dict) and isinstance(dist.get("rank"), int):
        out.rank = dist["rank"]
    keep = ("schemaVersion", "distributedInfo", "record_shapes", "profile_memory", "with_stack", "traceName")
    out.info_fields = {k: data[k] for k in keep if k in data}


def _decode_events(events: list[Any], out: TraceColumns) -> None:
    lanes: dict[tuple[Any, Any], int] = {}
    lane_rows = out.lanes
    names: dict[str, int] = {}
    labels: dict[tuple[Any, Any], str] = {}
    sorts: dict[tuple[Any, Any], Any] = {}
    process_labels: dict[Any, str] = {}
    lane_l, kind_l, name_l, ts_l, dur_l = out.lane, out.kind, out.name, out.ts, out.dur
    corr_l, ext_l, info_l, details = out.corr, out.ext, out.info, out.details
    cat_kind = CATEGORY_KIND
    device_kinds = DEVICE_KINDS
    open_slices: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    ended: list[dict[str, Any]] = []  # B/E pairs of plain Chrome traces, as X events (appended after the loop)
    for e in _with_ended(events, ended):
        ph = e["ph"] if "ph" in e else None
        if ph == "X":
            key = (e["pid"], e["tid"])
            lane = lanes.get(key)
            if lane is None:
                lane = lanes[key] = len(lane_rows)
                lane_rows.append([key[0], key[1], None, None, None, None, False])
            cat = e.get("cat")
            kind = cat_kind.get(cat, _OTHER)
            name = e["name"]
            args = e.get("args")
            corr = ext = info = None
            if args:
                ext = args.get("External id")
                corr = args.get("correlation")
                if "Input Dims" in args:
                    info = orjson.dumps([args["Input Dims"], args.get("Input type", [])]).decode()
                if kind in device_kinds:
                    if kind == _KERNEL and is_collective(name):
                        kind = _COLLECTIVE
                    row = lane_rows[lane]
                    if not row[6]:
                        row[6] = True
                        row[4], row[5] = args.get("device"), args.get("stream")
                    if kind in _HAS_DETAILS:
                        details.append(_details(len(kind_l), args))
            elif kind in device_kinds:
                lane_rows[lane][6] = True
            if kind == _OTHER:
                info = str(cat)
            idx = names.get(name)
            if idx is None:
                idx = names[name] = len(names)
            lane_l.append(lane)
            kind_l.append(kind)
            name_l.append(idx)
            ts_l.append(e["ts"])
            dur_l.append(e.get("dur", 0))
            corr_l.append(corr)
            ext_l.append(ext)
            info_l.append(info)
        elif ph == "i" or ph == "I":
            key = (e.get("pid", ""), e.get("tid", ""))
            lane = lanes.get(key)
            if lane is None:
                lane = lanes[key] = len(lane_rows)
                lane_rows.append([key[0], key[1], None, None, None, None, False])
            name = e["name"]
            args = e.get("args") or {}
            if name == "[memory]":
                out.memory.append(_memory(lane, e["ts"], args))
                continue
            idx = names.get(name)
            if idx is None:
                idx = names[name] = len(names)
            lane_l.append(lane)
            kind_l.append(_INSTANT)
            name_l.append(idx)
            ts_l.append(e["ts"])
            dur_l.append(0)
            corr_l.append(None)
            ext_l.append(args.get("External id"))
            info_l.append(e.get("s", "t"))  # instant scope: g(lobal), p(rocess), t(hread)
        elif ph == "B":
            open_slices.setdefault((e["pid"], e["tid"]), []).append(e)
        elif ph == "E":
            stack = open_slices.get((e["pid"], e["tid"]))
            if stack:  # an unmatched end (the trace started inside a slice) is dropped
                begin = stack.pop()
                args = {**(begin.get("args") or {}), **(e.get("args") or {})}
                ended.append({**begin, "ph": "X", "dur": e["ts"] - begin["ts"], "args": args})
        elif (ph == "s" or ph == "f") and e.get("cat") == "fwdbwd" and "id" in e:
            out.flows.append((e["id"], ph, (e.get("pid"), e.get("tid")), e["ts"]))
        elif ph == "M":
            args = e.get("args") or {}
            meta = e.get("name")
            if meta == "thread_name":
                labels[(e.get("pid"), e.get("tid"))] = str(args.get("name", "")).strip()
            elif meta == "process_name":
                process_labels[e.get("pid")] = str(args.get("name", "")).strip()
            elif meta == "thread_sort_index":
                sorts[(e.get("pid"), e.get("tid"))] = args.get("sort_index")
    out.names = list(names)
    # flow ends name their lane by (pid, tid), which may only be seen after the flow event
    out.flows = [(fid, ph, lanes[key], ts) for fid, ph, key, ts in out.flows if key in lanes]
    for key, row in zip(lanes, lane_rows):
        row[2] = labels.get(key) or process_labels.get(key[0])
        sort = sorts.get(key)
        row[3] = sort if isinstance(sort, int) else None


def _with_ended(events: list[Any], ended: list[dict[str, Any]]) -> Any:
    """The events, then the X events made from B/E pairs while iterating them."""
    yield from events
    while ended:
        yield ended.pop()


def _details(index: int, args: dict[str, Any]) -> tuple[Any, ...]:
    grid, block = args.get("grid"), args.get("block")
    return (
        index,
        ",".join(map(str, grid)) if isinstance(grid, list) else grid,
        ",".join(map(str, block)) if isinstance(block, list) else block,
        args.get("registers per thread"),
        args.get("shared memory"),
        args.get("blocks per SM"),
        args.get("warps per SM"),
        args.get("est. achieved occupancy %"),
        args.get("bytes"),
    )


def _memory(lane: int, ts: float, args: dict[str, Any]) -> tuple[Any, ...]:
    addr = args.get("Addr")
    if isinstance(addr, int) and not -_INT64 <= addr <= _INT64:
        addr = None
    return (
        lane,
        ts,
        int(args.get("Device Type", 0)),
        int(args.get("Device Id", -1)),
        int(args.get("Bytes", 0)),
        addr,
        args.get("Total Allocated"),
        args.get("Total Reserved"),
    )
