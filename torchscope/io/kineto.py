"""Decoding a Chrome / Kineto trace into numpy columns, batch by batch, in one pass over its events.

This is the only place that knows the trace format's field names. It is used by the live profiler's record handler
(on the writer thread: :func:`read_trace`, a window's file) and by ``torchscope import`` (:func:`stream_trace`, a file
of any size in bounded batches). It never builds per-event objects beyond the decoded :class:`TraceEvent` s.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import numpy as np
import orjson

from torchscope.errors import TraceImportError
from torchscope.storage.profile.kinds import CATEGORY_KIND, DEVICE_KINDS, KIND, is_collective
from torchscope.io.json_stream import ADVICE, TraceReader
from torchscope.storage.profile.records import (
    NO_INT, NO_INT32, SHAPE_ARGS, TYPED_ARGS, EventBatch, FlowEnds, TraceColumns, TraceMeta,
)

_KERNEL, _COLLECTIVE, _OTHER, _INSTANT = KIND["kernel"], KIND["collective"], KIND["other"], KIND["instant"]
_HAS_DETAILS = frozenset((KIND["kernel"], KIND["memcpy"], KIND["memset"], KIND["collective"]))
_INT64 = (1 << 63) - 1
_INT32 = (1 << 31) - 1
_INT16 = (1 << 15) - 1
_MAX_NS = float(1 << 62)  # |time| and duration bound in ns: start + duration stays inside int64
_SCALAR_TYPES = frozenset((int, float, str, bool, type(None)))
_DETAIL_KEYS = (
    "grid", "block", "registers per thread", "shared memory", "blocks per SM", "warps per SM",
    "est. achieved occupancy %", "bytes", "queued", "context", "memory bandwidth (GB/s)",
)  # fmt: skip
_ID_KEYS = frozenset(("External id", "correlation", *TYPED_ARGS))
_EXT_KEY = frozenset(("External id",))
_HOST_KEYS = _ID_KEYS
"""Args of an X event kept in typed columns (and an op's inputs, in its info: :func:`_inputs`); every other arg is
kept as it was (:attr:`EventBatch.args_json`)."""
_DEVICE_KEYS = _HOST_KEYS | frozenset(("device", "stream", *_DETAIL_KEYS))
"""Args of a kernel, memcpy, memset or collective kept in typed columns (device and stream: its lane's)."""
_MEMORY_KEYS = frozenset(("Total Reserved", "Total Allocated", "Bytes", "Device Id", "Device Type", "Addr"))
_TRACE_KEYS = frozenset(("traceEvents", "deviceProperties"))
"""Top-level fields kept apart; every other one is kept in the profile's info (baseTimeNanoseconds too)."""


_UNSET = msgspec.UNSET


class TraceEvent(msgspec.Struct, gc=False):
    """One trace event, as decoded: only the fields torchscope reads (a dict per event would cost twice as much).

    A field the event does not have is ``msgspec.UNSET``, except ``ph``, ``cat``, ``dur`` and ``s``, which read as
    the trace format's defaults (an event with none of those is as one that says so). Metadata events are kept as
    the trace wrote them (:attr:`TraceReader.plain`); fields come in the order torch.profiler writes theirs, for
    :func:`_as_dict`.
    """

    ph: Any = None
    name: Any = _UNSET
    ts: Any = _UNSET
    pid: Any = _UNSET
    tid: Any = _UNSET
    args: Any = None
    cat: Any = None
    dur: Any = 0
    s: Any = "t"
    id: Any = _UNSET


_DEFAULTS = {"ph": None, "args": None, "cat": None, "dur": 0, "s": "t"}


def _as_dict(event: TraceEvent) -> dict[str, Any]:
    """A decoded event as a JSON object, when the text it was is not at hand: keys beyond :class:`TraceEvent`'s
    fields are not kept, nor a field that only says its default."""
    values = ((f, getattr(event, f)) for f in event.__struct_fields__)
    return {f: v for f, v in values if v is not _UNSET and not (f in _DEFAULTS and v == _DEFAULTS[f])}


def _given(value: Any, field: str) -> Any:
    """``value`` of a required field; KeyError (reported as "a trace event has no ... field") when it is unset."""
    if value is _UNSET:
        raise KeyError(field)
    return value


def _or(value: Any, default: Any) -> Any:
    return default if value is _UNSET else value


def read_trace(path: str) -> TraceColumns:
    """The trace file at ``path`` decoded whole (a live profiler window's: small), as :func:`stream_trace` does it.

    Raises :class:`TraceImportError` for a file that is not a trace or holds malformed events.
    """
    *batches, meta = stream_trace(path)
    return TraceColumns(batches=batches, meta=meta)


def stream_trace(
    path: str, block: int | None = None, on_read: Callable[[int, int], None] | None = None
) -> Iterator[EventBatch | TraceMeta]:
    """The trace file at ``path`` decoded in bounded batches: :class:`EventBatch` es, then its :class:`TraceMeta`.

    Memory stays at a block of text and its events whatever the file's size (see :mod:`torchscope.io.json_stream`).
    ``on_read(bytes read, file size)`` is called after each batch.
    """
    reader = TraceReader(path, block, TraceEvent, plain_phases=("M",))  # metadata events are kept as written
    decoder = TraceDecoder(path)
    for events in reader.batches():
        decoder.feed(events, reader.plain)
        del events
        yield decoder.take()
        if on_read:
            on_read(reader.position, reader.size)
    yield decoder.finish(reader.fields)


class TraceDecoder:
    """Decodes a trace's events batch by batch into :class:`EventBatch` columns, keeping what spans batches.

    Lanes, names, shape texts, open ``B`` slices and flows carry over from one :meth:`feed` to the next; ``take``
    returns the events fed since the last ``take``; ``finish`` checks the trace as a whole and returns its meta.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.lanes: dict[tuple[Any, Any], int] = {}
        self.lane_rows: list[list[Any]] = []
        self.names: dict[Any, int] = {}
        self.infos: dict[str, int] = {}
        self.labels: dict[tuple[Any, Any], str] = {}
        self.sorts: dict[tuple[Any, Any], Any] = {}
        self.process_labels: dict[Any, str] = {}
        self.open_slices: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
        # fwdbwd flow ends as machine values (see FlowEnds): flow id, source end or not, key of its lane, ts in µs
        self.flow_id, self.flow_source, self.flow_key, self.flow_ts = array("q"), array("b"), array("i"), array("d")
        self.flow_keys: dict[tuple[Any, Any], int] = {}  # (pid, tid) of flow ends, numbered as first seen
        self.metadata: list[dict[str, Any]] = []  # the trace's metadata events (process/thread names, ...), as read
        self._written: Iterator[dict[str, Any]] = iter(())  # the metadata events of the batch fed, as written
        self.skipped: Counter[str] = Counter()
        self.negative = 0
        self.count = 0  # events taken so far
        self.memory_count = 0
        self.ts_range = [np.inf, -np.inf]  # ns, for the check against baseTimeNanoseconds
        self._reset()

    def _reset(self) -> None:
        self.lane_l: list[int] = []
        self.kind_l: list[int] = []
        self.name_l: list[int] = []
        self.ts_l: list[Any] = []
        self.dur_l: list[Any] = []
        self.corr_l: list[Any] = []
        self.ext_l: list[Any] = []
        self.info_l: list[int] = []
        self.typed_l: list[tuple[Any, ...]] = []  # (index in the batch, *TYPED_ARGS values) of events with any
        self.details: list[tuple[Any, ...]] = []
        # events' other args as JSON text, by trace event index (kept apart: a kept tuple per event slows the GC)
        self.args_seq: list[int] = []
        self.args_json: list[str] = []
        self.memory: list[tuple[Any, ...]] = []
        self.new_names = len(self.names)
        self.new_infos = len(self.infos)

    def feed(self, events: list[TraceEvent], metadata: list[dict[str, Any]] | None = None) -> None:
        """Decode ``events``; :class:`TraceImportError` for malformed ones. ``metadata``: their metadata (``M``)
        events in order as the trace wrote them, to keep (by default each is kept with :class:`TraceEvent`'s
        fields)."""
        self._written = iter(metadata or ())
        try:
            self._decode(events)
        except KeyError as exc:
            raise TraceImportError(f"{self.where}: a trace event has no {exc} field; {ADVICE}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise TraceImportError(
                f"{self.where}: malformed trace event ({type(exc).__name__}: {exc}); {ADVICE}"
            ) from exc

    def _lane(self, key: tuple[Any, Any]) -> int:
        lane = self.lanes.get(key)
        if lane is None:
            _given(key[0], "pid"), _given(key[1], "tid")
            lane = self.lanes[key] = len(self.lane_rows)
            self.lane_rows.append([key[0], key[1], None, None, None, None, False])
        return lane

    def _info(self, text: str) -> int:
        idx = self.infos.get(text)
        if idx is None:
            idx = self.infos[text] = len(self.infos)
        return idx

    def _decode(self, events: list[TraceEvent]) -> None:
        lanes, lane_rows, names, new_lane = self.lanes, self.lane_rows, self.names, self._lane
        info_of = self._info
        lane_add, kind_add, name_add = self.lane_l.append, self.kind_l.append, self.name_l.append
        ts_add, dur_add, corr_add = self.ts_l.append, self.dur_l.append, self.corr_l.append
        ext_add, info_add, detail_add = self.ext_l.append, self.info_l.append, self.details.append
        args_seq, args_json = self.args_seq.append, self.args_json.append
        typed_add = self.typed_l.append
        id_keys, host_keys, device_keys, no_inputs = _ID_KEYS, _HOST_KEYS, _DEVICE_KEYS, _NO_INPUTS
        kind_count = self.kind_l.__len__
        cat_kind = CATEGORY_KIND
        device_kinds = DEVICE_KINDS
        ended: list[TraceEvent] = []  # B/E pairs of plain Chrome traces, as X events (decoded after the batch)
        base = self.count
        for e in _with_ended(events, ended):
            ph = e.ph
            if ph == "X":
                key = (e.pid, e.tid)
                lane = lanes.get(key)
                if lane is None:
                    lane = new_lane(key)
                cat = e.cat
                kind = cat_kind.get(cat, _OTHER)
                name = e.name
                args = e.args
                corr = ext = NO_INT
                info = -1
                if args:
                    ext = args.get("External id", NO_INT)
                    corr = args.get("correlation", NO_INT)
                    known = host_keys
                    taken = no_inputs  # the op's input args kept in its info text
                    if kind == _OTHER:
                        known = id_keys
                    elif "Input Dims" in args:
                        inputs, taken = _inputs(args)
                        info = info_of(inputs)
                    if kind in device_kinds:
                        if kind == _KERNEL and is_collective(name):
                            kind = _COLLECTIVE
                        row = lane_rows[lane]
                        row[6] = True
                        if row[4] is None and row[5] is None:  # the lane's device and stream: the first event's
                            row[4], row[5] = args.get("device"), args.get("stream")
                        if kind in _HAS_DETAILS:
                            detail_add(_details(base + kind_count(), args))
                            if args.get("device") == row[4] and args.get("stream") == row[5]:
                                known = device_keys
                    plain = ("External id" in args) + ("correlation" in args) + len(taken)
                    if len(args) > plain:  # typed args, maybe others
                        get = args.get  # the TYPED_ARGS, unrolled: this runs for most events
                        evi, seqn = get("Ev Idx", NO_INT), get("Sequence number", NO_INT)
                        fwd, cbid = get("Fwd thread id", NO_INT), get("cbid", NO_INT)
                        pyid, pyup = get("Python id", NO_INT), get("Python parent id", NO_INT)
                        rfid = get("Record function id", NO_INT)
                        typed = (evi is not NO_INT) + (seqn is not NO_INT) + (fwd is not NO_INT) + (
                            cbid is not NO_INT) + (pyid is not NO_INT) + (pyup is not NO_INT) + (rfid is not NO_INT)
                        if typed:
                            typed_add((kind_count(), evi, seqn, fwd, cbid, pyid, pyup, rfid))
                        if known is host_keys:  # the common case, counted without building a set
                            extra = len(args) > plain + typed
                        else:
                            extra = bool(args.keys() - known - taken)
                        if extra:
                            args_seq(base + kind_count())
                            args_json(_extra_args(args, known | taken))
                elif kind in device_kinds:
                    lane_rows[lane][6] = True
                if kind == _OTHER:
                    info = info_of(str(cat))
                idx = names.get(name)
                if idx is None:
                    idx = names[_given(name, "name")] = len(names)
                lane_add(lane)
                kind_add(kind)
                name_add(idx)
                ts_add(e.ts)
                dur_add(e.dur)
                corr_add(corr)
                ext_add(ext)
                info_add(info)
            elif ph == "i" or ph == "I":
                key = (_or(e.pid, ""), _or(e.tid, ""))
                lane = lanes.get(key)
                if lane is None:
                    lane = new_lane(key)
                name = _given(e.name, "name")
                args = e.args or {}
                if name == "[memory]":
                    self.memory.append(_memory(lane, _given(e.ts, "ts"), args))
                    continue
                if len(args) > ("External id" in args):
                    args_seq(base + kind_count())
                    args_json(_extra_args(args, _EXT_KEY))
                idx = names.get(name)
                if idx is None:
                    idx = names[name] = len(names)
                lane_add(lane)
                kind_add(_INSTANT)
                name_add(idx)
                ts_add(e.ts)
                dur_add(0)
                corr_add(NO_INT)
                ext_add(args.get("External id", NO_INT))
                scope = e.s  # instant scope: g(lobal), p(rocess), t(hread)
                info_add(info_of(scope if type(scope) is str else str(scope)))
            elif ph == "B":
                self.open_slices.setdefault((_given(e.pid, "pid"), _given(e.tid, "tid")), []).append(e)
            elif ph == "E":
                stack = self.open_slices.get((_given(e.pid, "pid"), _given(e.tid, "tid")))
                if stack:  # an unmatched end (the trace started inside a slice) is dropped
                    begin = stack.pop()
                    args = {**(begin.args or {}), **(e.args or {})}
                    dur = _given(e.ts, "ts") - _given(begin.ts, "ts")
                    ended.append(msgspec.structs.replace(begin, ph="X", dur=dur, args=args))
            elif (ph == "s" or ph == "f") and e.cat == "fwdbwd" and e.id is not _UNSET:
                self._flow_end(e.id, ph == "s", (_or(e.pid, None), _or(e.tid, None)), _given(e.ts, "ts"))
            elif ph == "M":
                self.metadata.append(next(self._written, None) or _as_dict(e))
                args = e.args or {}
                meta = _or(e.name, None)
                key = (_or(e.pid, None), _or(e.tid, None))
                if meta == "thread_name":
                    self.labels[key] = str(args.get("name", "")).strip()
                elif meta == "process_name":
                    self.process_labels[key[0]] = str(args.get("name", "")).strip()
                elif meta == "thread_sort_index":
                    self.sorts[key] = args.get("sort_index")
            else:  # counters, async and sample events, other flows: not stored, counted in the profile's info
                self.skipped[ph if type(ph) is str else repr(ph)[:20]] += 1

    def _flow_end(self, flow_id: Any, source: bool, key: tuple[Any, Any], ts: Any) -> None:
        """Keep one flow end; one whose id is no int64 or whose time is no number is not kept."""
        if type(flow_id) is int and -_INT64 <= flow_id <= _INT64 and _number(ts):
            self.flow_id.append(flow_id)
            self.flow_source.append(source)
            self.flow_key.append(self.flow_keys.setdefault(key, len(self.flow_keys)))
            self.flow_ts.append(ts)

    def take(self) -> EventBatch:
        """The events fed since the last call, checked (see :func:`_check_batch`), as an :class:`EventBatch`."""
        batch = self._check_batch()
        self.count += len(batch)
        self.memory_count += len(batch.memory)
        self._reset()
        return batch

    def finish(self, fields: dict[str, Any]) -> TraceMeta:
        """The trace's meta from its top-level ``fields``; :class:`TraceImportError` when it holds no events."""
        meta = TraceMeta()
        _trace_fields(fields, meta, self.where)
        lo, hi = self.ts_range
        if self.count and max(abs(lo), abs(hi)) + abs(meta.base_ns) >= _MAX_NS:
            raise TraceImportError(f"{self.where}: an event time ('ts') is out of range; {ADVICE}")
        if not self.count and not self.memory_count:
            raise TraceImportError(f"{self.where}: a JSON file with no trace events ('X' or 'i'): nothing to import")
        if self.skipped:
            meta.info_fields["torchscope_skipped_phases"] = dict(sorted(self.skipped.items()))
        if self.negative:
            meta.info_fields["torchscope_negative_durations"] = self.negative
        if self.metadata:
            meta.info_fields["torchscope_metadata_events"] = self.metadata
        lanes = self.lanes
        # flow ends name their lane by (pid, tid), which may only be seen after the flow event: one on no lane of
        # an event is not kept
        lane_of_key = np.array([lanes.get(key, -1) for key in self.flow_keys], dtype=np.int32)
        lane = lane_of_key[np.frombuffer(self.flow_key, dtype=np.int32)]
        kept = lane >= 0
        meta.flows = FlowEnds(np.frombuffer(self.flow_id, dtype=np.int64)[kept],
                              np.frombuffer(self.flow_source, dtype=np.int8)[kept].astype(bool), lane[kept],
                              ns_from_us(np.frombuffer(self.flow_ts, dtype=np.float64)[kept]))  # fmt: skip
        for key, row in zip(lanes, self.lane_rows):
            row[2] = self.labels.get(key) or self.process_labels.get(key[0])
            sort = self.sorts.get(key)
            row[3] = sort if isinstance(sort, int) else None
            row[3], row[4], row[5] = _int_or_none(row[3], _INT64), _int_or_none(row[4], _INT32), _stream(row[5])
        meta.lanes = self.lane_rows
        return meta

    def _check_batch(self) -> EventBatch:
        """Hold the batch to what the store can keep, at C speed where there are many values.

        Times and durations must be finite numbers within int64 nanoseconds (else :class:`TraceImportError`); a
        negative duration is kept as 0 and counted. Optional fields of the wrong type or beyond their column's
        range (correlation and External ids, kernel details, a memory event's address and totals) are stored as
        NULL; names that are not strings are stored as their text.
        """
        where = self.where
        ts = _floats(self.ts_l, "ts", where)
        far = np.abs(ts) * 1000.0 >= _MAX_NS
        if far.any():
            raise TraceImportError(f"{where}: an event time ('ts') of {ts[far][0]:g} us is out of range; {ADVICE}")
        dur = _floats(self.dur_l, "dur", where)
        long = np.abs(dur) * 1000.0 >= _MAX_NS
        if long.any():
            raise TraceImportError(
                f"{where}: an event duration ('dur') of {dur[long][0]:g} us is out of range; {ADVICE}"
            )
        negative = int((dur < 0).sum())
        if negative:
            dur = np.maximum(dur, 0.0)
            self.negative += negative
        start = ns_from_us(ts)
        if len(start):
            self.ts_range[0] = min(self.ts_range[0], int(start.min()))
            self.ts_range[1] = max(self.ts_range[1], int((start + np.rint(dur * 1000.0).astype(np.int64)).max()))
        names = list(self.names)[self.new_names :] if len(self.names) > self.new_names else []
        if not set(map(type, names)) <= {str}:
            names = [n if type(n) is str else str(n) for n in names]
        details = self.details
        if details and not _plain(details):
            details = [(d[0], *(_scalar(v) for v in d[1:])) for d in details]
        typed = np.full((len(self.kind_l), len(TYPED_ARGS)), NO_INT32, dtype=np.int32)
        if self.typed_l:
            where, *values = zip(*self.typed_l)
            rows = np.asarray(where, dtype=np.int64)
            misfits = []
            for column, (key, raw) in enumerate(zip(TYPED_ARGS, values)):
                if raw.count(NO_INT) == len(raw):  # no event of the batch has this arg (counted at C speed)
                    continue
                typed[rows, column], bad = _int32_column(raw)
                misfits += [(where[i], key, raw[i]) for i in bad]
            if misfits:
                self._keep_misfits(misfits)
        memory = self.memory
        if memory:
            mem_ts = _floats([m[1] for m in memory], "ts of a [memory] event", where)
            if not (np.abs(mem_ts) * 1000.0 < _MAX_NS).all():
                raise TraceImportError(f"{where}: a [memory] event's time ('ts') is out of range; {ADVICE}")
            memory = [_memory_row(m, ns, where) for m, ns in zip(memory, ns_from_us(mem_ts).tolist())]
            self.ts_range[0] = min(self.ts_range[0], min(m[1] for m in memory))
            self.ts_range[1] = max(self.ts_range[1], max(m[1] for m in memory))
        return EventBatch(
            first=self.count,
            lane=np.asarray(self.lane_l, dtype=np.int32),
            kind=np.asarray(self.kind_l, dtype=np.int8),
            name=np.asarray(self.name_l, dtype=np.int32),
            start=start,
            dur=np.maximum(np.rint(dur * 1000.0), 0).astype(np.int64),
            corr=_int_column(self.corr_l),
            ext=_int_column(self.ext_l),
            info=np.asarray(self.info_l, dtype=np.int32),
            typed=typed,
            names=names,
            infos=list(self.infos)[self.new_infos :] if len(self.infos) > self.new_infos else [],
            details=details,
            memory=memory,
            args_seq=self.args_seq,
            args_json=self.args_json,
        )

    def _keep_misfits(self, misfits: list[tuple[int, str, Any]]) -> None:
        """Keep typed args that their int32 column cannot hold (``(batch index, key, value)``) with the event's
        other args, so that no value is lost."""
        kept = dict(zip(self.args_seq, self.args_json))
        for i, key, value in misfits:
            seq = self.count + i
            extra = orjson.loads(kept[seq]) if seq in kept else {}
            extra[key] = value
            kept[seq] = orjson.dumps(extra, default=str).decode()
        self.args_seq, self.args_json = sorted(kept), [kept[seq] for seq in sorted(kept)]


def ns_from_us(values: Any) -> np.ndarray:
    """Microsecond timestamps as int64 ns, exactly to the ns the double holds (large epoch values lose none)."""
    t = np.asarray(values, dtype=np.float64)
    whole = np.floor(t)
    return whole.astype(np.int64) * 1000 + np.rint((t - whole) * 1000.0).astype(np.int64)


def _int_column(values: list[Any]) -> np.ndarray:
    """Optional integers (:data:`NO_INT` for none) as int64; anything else than an integer in int64 becomes NO_INT."""
    if set(map(type, values)) <= {int}:
        try:
            return np.asarray(values, dtype=np.int64)
        except OverflowError:
            pass
    return np.asarray([v if type(v) is int and -_INT64 <= v <= _INT64 else NO_INT for v in values], dtype=np.int64)


def _int32_column(values: list[Any]) -> tuple[np.ndarray, list[int]]:
    """A typed arg's values (:data:`NO_INT` where the event has none) as int32 with ``-2**31`` for none, and the
    indices of values the column cannot hold (not an integer, or outside ``(-2**31, 2**31)``)."""
    if set(map(type, values)) <= {int}:
        try:
            wide = np.asarray(values, dtype=np.int64)
        except OverflowError:  # beyond int64: sorted out one by one below
            pass
        else:
            absent = wide == NO_INT
            outside = ~absent & ((wide <= NO_INT32) | (wide > _INT32))
            column = np.where(absent | outside, NO_INT32, wide).astype(np.int32)
            return column, np.flatnonzero(outside).tolist()
    fits = [type(v) is int and NO_INT32 < v <= _INT32 for v in values]
    column = np.array([v if ok else NO_INT32 for v, ok in zip(values, fits)], dtype=np.int32)
    return column, [i for i, (v, ok) in enumerate(zip(values, fits)) if not ok and v is not NO_INT]


def _trace_fields(data: dict[str, Any], out: TraceMeta, where: str) -> None:
    base = data.get("baseTimeNanoseconds")
    if base not in (None, ""):
        if type(base) not in (int, float) or not abs(base) < _MAX_NS:  # NaN fails the comparison too
            raise TraceImportError(
                f"{where}: 'baseTimeNanoseconds' must be a number of nanoseconds below 2^62, found {base!r:.60}; "
                f"{ADVICE}"
            )
        out.base_ns = int(base)
    devices = data.get("deviceProperties", [])
    if isinstance(devices, str):  # older Kineto writes a Python repr; keep it as text
        devices = [devices] if devices not in ("", "[]") else []
    out.devices = devices if isinstance(devices, list) else [devices]
    dist = data.get("distributedInfo")
    if isinstance(dist, dict) and type(dist.get("rank")) is int and -_INT32 <= dist["rank"] <= _INT32:
        out.rank = dist["rank"]
    out.info_fields = {k: v for k, v in data.items() if k not in _TRACE_KEYS}
    out.info_fields["torchscope_ts_base_ns"] = out.base_ns  # what the events' ts count from (0: the epoch)


def _floats(values: list[Any], field: str, where: str) -> np.ndarray:
    """``values`` as float64; :class:`TraceImportError` naming ``field`` for one that is not a finite number."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        if any(v is _UNSET for v in values):
            raise TraceImportError(f"{where}: a trace event has no '{field}' field; {ADVICE}") from exc
        raise TraceImportError(f"{where}: an event's '{field}' is not a number ({exc}); {ADVICE}") from exc
    if array.ndim != 1 or not np.isfinite(array).all():
        bad = next((v for v in values if not _number(v)), None)
        raise TraceImportError(f"{where}: an event's '{field}' is not a finite number ({bad!r:.60}); {ADVICE}")
    return array


def _number(value: Any) -> bool:
    return type(value) in (int, float) and abs(value) < _MAX_NS  # NaN fails the comparison


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


def _memory_row(row: tuple[Any, ...], ts: int, where: str) -> tuple[Any, ...]:
    lane, _, device_type, device, nbytes, addr, allocated, reserved, extra = row
    if not (-_INT16 <= device_type <= _INT16 and -_INT16 <= device <= _INT16 and -_INT64 <= nbytes <= _INT64):
        raise TraceImportError(
            f"{where}: a [memory] event has an impossible device or size (Device Type {device_type}, Device Id "
            f"{device}, Bytes {nbytes}); {ADVICE}"
        )
    return (lane, ts, device_type, device, nbytes, addr, _int_or_none(allocated, _INT64),
            _int_or_none(reserved, _INT64), extra)  # fmt: skip


def _with_ended(events: list[TraceEvent], ended: list[TraceEvent]) -> Any:
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
        args.get("queued"),
        args.get("context"),
        args.get("memory bandwidth (GB/s)"),
    )


def _extra_args(args: dict[str, Any], known: frozenset[str]) -> str:
    """The args of an event that its typed columns and info do not keep (``known``), as JSON text (text, not bytes:
    orjson's bytes are slow to keep by the thousand)."""
    return orjson.dumps({k: v for k, v in args.items() if k not in known}, default=str).decode()


_NO_INPUTS: frozenset[str] = frozenset()
_INPUTS_KEPT = {
    (typed, strides, concrete): frozenset(
        k for k, kept in zip(SHAPE_ARGS, (True, typed, strides, concrete)) if kept
    )
    for typed in (False, True) for strides in (False, True) for concrete in (False, True)
}  # fmt: skip


def _inputs(args: dict[str, Any]) -> tuple[str, frozenset[str]]:
    """An op's inputs (:data:`SHAPE_ARGS`; it has ``Input Dims``) as the JSON text its info keeps, and the keys
    that text holds. Strides and concrete values are kept there when they are lists (as torch writes them: a
    ``null`` in the text is a list the op lacks), else with its other args; a missing ``Input type`` reads ``[]``."""
    typed = "Input type" in args
    strides, concrete = args.get("Input Strides"), args.get("Concrete Inputs")
    has_strides, has_concrete = type(strides) is list, type(concrete) is list
    value = [args["Input Dims"], args.get("Input type", [])]
    if has_concrete:
        value += [strides if has_strides else None, concrete]
    elif has_strides:
        value.append(strides)
    return orjson.dumps(value).decode(), _INPUTS_KEPT[typed, has_strides, has_concrete]


def _memory(lane: int, ts: float, args: dict[str, Any]) -> tuple[Any, ...]:
    addr = args.get("Addr")
    extra = args.keys() - _MEMORY_KEYS
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
        orjson.dumps({k: v for k, v in args.items() if k in extra}, default=str).decode() if extra else None,
    )
