"""Decoding a Chrome / Kineto trace (bytes of JSON) into columns, in one pass over its events.

This is the only place that knows the trace format's field names. It is used by the live profiler's record handler
(on the writer thread) and by ``torchscope import``. It never builds per-event objects beyond the decoded JSON:
columns are plain lists, turned into numpy arrays by the caller.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from typing import Any

import numpy as np
import orjson

from torchscope.errors import TraceImportError
from torchscope.storage.profile.kinds import CATEGORY_KIND, DEVICE_KINDS, KIND, is_collective
from torchscope.storage.profile.records import TraceColumns

_KERNEL, _COLLECTIVE, _OTHER, _INSTANT = KIND["kernel"], KIND["collective"], KIND["other"], KIND["instant"]
_HAS_DETAILS = frozenset((KIND["kernel"], KIND["memcpy"], KIND["memset"], KIND["collective"]))
_INT64 = (1 << 63) - 1
_INT32 = (1 << 31) - 1
_INT16 = (1 << 15) - 1
_MAX_NS = float(1 << 62)  # |time| and duration bound in ns: start + duration stays inside int64
_SCALAR_TYPES = frozenset((int, float, str, bool, type(None)))
_INT_OR_NONE = frozenset((int, type(None)))
_ADVICE = "re-export the trace, or check that the file is an unmodified Kineto/Chrome trace"


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
    if not raw.strip():
        raise TraceImportError(f"{where}: the file is empty: nothing to import ({_ADVICE})")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        what = "holds bytes that are not UTF-8" if "UTF-8" in str(exc) else "is truncated or corrupt"
        raise TraceImportError(f"{where}: not valid JSON, the file {what} ({exc}); {_ADVICE}") from exc


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
        _trace_fields(data, out, where)
    try:
        _decode_events(events, out)
    except KeyError as exc:
        raise TraceImportError(f"{where}: a trace event has no {exc} field; {_ADVICE}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise TraceImportError(f"{where}: malformed trace event ({type(exc).__name__}: {exc}); {_ADVICE}") from exc
    if not out.kind and not out.memory:
        raise TraceImportError(f"{where}: a JSON file with no trace events ('X' or 'i'): nothing to import")
    _check_columns(out, where)
    return out


def _trace_fields(data: dict[str, Any], out: TraceColumns, where: str) -> None:
    base = data.get("baseTimeNanoseconds")
    if base not in (None, ""):
        if type(base) not in (int, float) or not abs(base) < _MAX_NS:  # NaN fails the comparison too
            raise TraceImportError(
                f"{where}: 'baseTimeNanoseconds' must be a number of nanoseconds below 2^62, found {base!r:.60}; "
                f"{_ADVICE}"
            )
        out.base_ns = int(base)
    devices = data.get("deviceProperties", [])
    if isinstance(devices, str):  # older Kineto writes a Python repr; keep it as text
        devices = [devices] if devices not in ("", "[]") else []
    out.devices = devices if isinstance(devices, list) else [devices]
    dist = data.get("distributedInfo")
    if isinstance(dist, dict) and type(dist.get("rank")) is int and -_INT32 <= dist["rank"] <= _INT32:
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
    skipped: list[Any] = []
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
        else:  # counters, async and sample events, other flows: not stored, counted in the profile's info
            skipped.append(ph)
    out.names = list(names)
    if skipped:
        counts = Counter(p if type(p) is str else repr(p)[:20] for p in skipped)
        out.info_fields["torchscope_skipped_phases"] = dict(sorted(counts.items()))
    # flow ends name their lane by (pid, tid), which may only be seen after the flow event
    out.flows = [(fid, ph, lanes[key], ts) for fid, ph, key, ts in out.flows if key in lanes]
    for key, row in zip(lanes, lane_rows):
        row[2] = labels.get(key) or process_labels.get(key[0])
        sort = sorts.get(key)
        row[3] = sort if isinstance(sort, int) else None


def _check_columns(out: TraceColumns, where: str) -> None:
    """Hold the decoded columns to what the store can keep, at C speed where there are many values.

    Times and durations must be finite numbers within int64 nanoseconds (else :class:`TraceImportError`); a
    negative duration is kept as 0 and counted. Optional fields of the wrong type or beyond their column's range
    (correlation and External ids, kernel details, lane sort/device/stream, a memory event's address and totals)
    are stored as NULL; fwdbwd flows whose id is not an integer are left out; names that are not strings are
    stored as their text.
    """
    ts = _floats(out.ts, "ts", where)
    far = np.abs(ts) * 1000.0 + abs(out.base_ns) >= _MAX_NS
    if far.any():
        raise TraceImportError(f"{where}: an event time ('ts') of {ts[far][0]:g} us is out of range; {_ADVICE}")
    dur = _floats(out.dur, "dur", where)
    long = np.abs(dur) * 1000.0 >= _MAX_NS
    if long.any():
        raise TraceImportError(f"{where}: an event duration ('dur') of {dur[long][0]:g} us is out of range; {_ADVICE}")
    negative = int((dur < 0).sum())
    if negative:
        dur = np.maximum(dur, 0.0)
        out.info_fields["torchscope_negative_durations"] = negative
    out.ts, out.dur = ts, dur
    out.corr = _optional_ints(out.corr, _INT64)
    out.ext = _optional_ints(out.ext, _INT64)
    if not set(map(type, out.info)) <= {str, type(None)}:  # an instant's scope ('s') can be any JSON value
        out.info = [v if v is None or type(v) is str else str(v) for v in out.info]
    if not set(map(type, out.names)) <= {str}:
        out.names = [n if type(n) is str else str(n) for n in out.names]
    if out.details and not _plain(out.details):
        out.details = [(d[0], *(_scalar(v) for v in d[1:])) for d in out.details]
    for row in out.lanes:  # [pid, tid, label, sort, device, stream, is_device]: few rows
        row[3], row[4], row[5] = _int_or_none(row[3], _INT64), _int_or_none(row[4], _INT32), _stream(row[5])
    out.flows = [f for f in out.flows if type(f[0]) is int and -_INT64 <= f[0] <= _INT64 and _number(f[3])]
    if out.memory:
        mem_ts = _floats([m[1] for m in out.memory], "ts of a [memory] event", where)
        if not (np.abs(mem_ts) * 1000.0 + abs(out.base_ns) < _MAX_NS).all():
            raise TraceImportError(f"{where}: a [memory] event's time ('ts') is out of range; {_ADVICE}")
        out.memory = [_memory_row(m, where) for m in out.memory]


def _floats(values: list[Any], field: str, where: str) -> np.ndarray:
    """``values`` as float64; :class:`TraceImportError` naming ``field`` for one that is not a finite number."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TraceImportError(f"{where}: an event's '{field}' is not a number ({exc}); {_ADVICE}") from exc
    if array.ndim != 1 or not np.isfinite(array).all():
        bad = next((v for v in values if not _number(v)), None)
        raise TraceImportError(f"{where}: an event's '{field}' is not a finite number ({bad!r:.60}); {_ADVICE}")
    return array


def _number(value: Any) -> bool:
    return type(value) in (int, float) and abs(value) < _MAX_NS  # NaN fails the comparison


def _optional_ints(values: list[Any], limit: int) -> list[Any]:
    """``values`` with entries that are not integers within ``±limit`` replaced by None (fast when all are)."""
    kinds = set(map(type, values))
    if kinds <= _INT_OR_NONE:
        ints = [v for v in values if v is not None] if type(None) in kinds else values
        if not ints or (-limit <= min(ints) and max(ints) <= limit):
            return values
    return [_int_or_none(v, limit) for v in values]


def _int_or_none(value: Any, limit: int) -> int | None:
    return value if type(value) is int and -limit <= value <= limit else None


def _stream(value: Any) -> int | None:
    if isinstance(value, str) and value.lstrip("-").isdigit():  # some traces write the stream as text
        value = int(value)
    return _int_or_none(value, _INT64)


def _plain(details: list[tuple[Any, ...]]) -> bool:
    """Whether every kernel detail is a plain JSON scalar with integers inside int64 (the common case, by column)."""
    for column in list(zip(*details))[1:]:
        kinds = set(map(type, column))
        if not kinds <= _SCALAR_TYPES:
            return False
        ints = [v for v in column if type(v) is int] if int in kinds else None
        if ints and not (-_INT64 <= min(ints) and max(ints) <= _INT64):
            return False
    return True


def _scalar(value: Any) -> Any:
    """A kernel detail as the store can keep it: text, a finite number, or None."""
    if type(value) is int:
        return value if -_INT64 <= value <= _INT64 else None
    if type(value) is float:
        return value if np.isfinite(value) else None
    return value if type(value) is str else None


def _memory_row(row: tuple[Any, ...], where: str) -> tuple[Any, ...]:
    lane, ts, device_type, device, nbytes, addr, allocated, reserved = row
    if not (-_INT16 <= device_type <= _INT16 and -_INT16 <= device <= _INT16 and -_INT64 <= nbytes <= _INT64):
        raise TraceImportError(
            f"{where}: a [memory] event has an impossible device or size (Device Type {device_type}, Device Id "
            f"{device}, Bytes {nbytes}); {_ADVICE}"
        )
    return (lane, ts, device_type, device, nbytes, addr, _int_or_none(allocated, _INT64),
            _int_or_none(reserved, _INT64))  # fmt: skip


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
