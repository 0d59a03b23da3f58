"""Property-based tests of the importers on bad input: a failure is a TraceImportError naming the file, and leaves the
store exactly as it was; odd but valid input imports and reads back.

Hypothesis runs derandomized (the examples are a function of the test's source, no example database), so CI sees the
same inputs on every run; ``max_examples`` keeps each test to a few seconds on two cores. For a deeper hunt, set
``TORCHSCOPE_FUZZ_EXAMPLES=2000``: random examples, that many per test.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import sqlite3
import struct
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from torchscope.errors import TraceImportError
from torchscope.io.importing import import_path
from torchscope.storage.store import Store

_DEEP = int(os.environ.get("TORCHSCOPE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_DEEP or 60, deadline=None, derandomize=not _DEEP, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: two dumps are equal when the store holds exactly the same data."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


@pytest.fixture
def store_db(tmp_path: Path) -> Path:
    """A store that already holds a run with a profile, so that a failed import has something to leave alone."""
    db = tmp_path / "fuzz.db"
    good = tmp_path / "good.json"
    good.write_bytes(orjson.dumps({"traceEvents": [_event("X", "aten::mm", 0, 5), _event("X", "aten::add", 6, 1)]}))
    import_path(db, good)
    return db


def _event(ph: str, name: str, ts: float, dur: float, **more: Any) -> dict[str, Any]:
    return {"ph": ph, "name": name, "cat": "cpu_op", "pid": 1, "tid": 1, "ts": ts, "dur": dur, **more}


def check_import(db: Path, path: Path) -> Any:
    """Import ``path``; on failure, check the error and that the store is unchanged. Returns the result or None."""
    before = dump(db)
    try:
        result = import_path(db, path)
    except TraceImportError as exc:
        assert type(exc) is TraceImportError
        assert str(path) in str(exc), str(exc)
        assert dump(db) == before
        return None
    with Store(db) as store:  # what was imported reads back
        for profile_id in store.profiles(result.run_id)["id"].tolist():
            events = store.events(profile_id)
            assert (events["dur"] >= 0).all()
            store.op_table(profile_id)
        store.scalars(result.runs[-1]["id"])
    return result


# -- Kineto / Chrome traces --------------------------------------------------------------------------------------------

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e300, -1e300, 2**64 - 1, 2**63, -1.5, 0]), st.text(max_size=4),
    st.lists(st.integers(0, 9), max_size=3), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)  # fmt: skip
ARGS = st.fixed_dictionaries(
    {},
    optional={
        k: ODD
        for k in ("External id", "correlation", "Input Dims", "device", "stream", "grid", "block", "bytes",
                  "registers per thread", "Addr", "Bytes", "Device Type", "Device Id", "Total Allocated", "name",
                  "sort_index")
    },
)  # fmt: skip
EVENT = st.fixed_dictionaries(
    {"ph": st.one_of(st.sampled_from(["X", "X", "X", "i", "B", "E", "s", "f", "M", "C", "b", "P"]), ODD)},
    optional={
        "name": st.one_of(st.sampled_from(["aten::mm", "ProfilerStep#3", "[memory]", "thread_name"]), ODD),
        "cat": st.one_of(st.sampled_from(["kernel", "cpu_op", "cuda_runtime", "fwdbwd", "gpu_memcpy"]), ODD),
        "pid": ODD, "tid": ODD, "ts": ODD, "dur": ODD, "id": ODD, "s": ODD, "args": st.one_of(ARGS, ODD),
    },
)  # fmt: skip
TRACE = st.one_of(
    st.lists(EVENT, max_size=6),
    st.fixed_dictionaries(
        {"traceEvents": st.lists(EVENT, max_size=6)},
        optional={"baseTimeNanoseconds": ODD, "deviceProperties": ODD, "distributedInfo": ODD},
    ),
    ODD,
)


@FUZZ
@given(trace=TRACE)
def test_malformed_trace_fields_fail_as_trace_import_error_and_leave_the_store_unchanged(store_db, tmp_path, trace):
    path = tmp_path / "fuzz.json"
    path.write_bytes(json.dumps(trace).encode())
    check_import(store_db, path)


GOOD_TRACE = orjson.dumps(
    {
        "traceEvents": [
            _event("X", "ProfilerStep#1", 0, 100, cat="user_annotation"),
            _event("X", "aten::mm", 1, 50, args={"External id": 1}),
            _event("X", "cudaLaunchKernel", 2, 3, cat="cuda_runtime", args={"correlation": 7}),
            {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 10, "dur": 20,
             "args": {"correlation": 7, "device": 0, "stream": 7, "grid": [1, 1, 1], "block": [32, 1, 1]}},
            {"ph": "i", "name": "[memory]", "pid": 1, "tid": 1, "ts": 3, "s": "t",
             "args": {"Device Type": 0, "Device Id": -1, "Bytes": 64, "Addr": 1, "Total Allocated": 64}},
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "main"}},
        ],
        "baseTimeNanoseconds": 1_700_000_000_000_000_000,
    }
)  # fmt: skip


@st.composite
def damaged(draw: Any) -> bytes:
    """The good trace, plain or gzipped, truncated, with a byte overwritten (often not UTF-8), or emptied."""
    raw = GOOD_TRACE
    how = draw(st.sampled_from(["truncate", "overwrite", "gzip-truncate", "gzip-overwrite", "empty", "non-utf8"]))
    if how == "empty":
        return draw(st.sampled_from([b"", b"  \n", b"\x1f\x8b"]))
    if how == "non-utf8":
        at = raw.index(b"gemm")
        return raw[:at] + draw(st.binary(min_size=1, max_size=3).filter(_not_utf8)) + raw[at:]
    if how.startswith("gzip"):
        raw = gzip.compress(raw)
    at = draw(st.integers(0, len(raw) - 1))
    if how.endswith("truncate"):
        return raw[:at]
    return raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return True
    return False


@FUZZ
@given(data=damaged())
def test_truncated_corrupt_or_non_utf8_trace_files_fail_cleanly(store_db, tmp_path, data):
    path = tmp_path / "damaged.json.gz"
    path.write_bytes(data)
    check_import(store_db, path)


def test_odd_but_valid_trace_imports_and_says_what_it_skipped(store_db, tmp_path):
    events = [
        _event("X", "aten::mm", 0, 10),
        _event("X", "aten::neg", 20, -5),  # a negative duration: kept as a zero-length event, counted
        {"ph": "C", "name": "mem", "pid": 1, "ts": 1, "args": {"v": 1}},  # counters are not stored, counted
        {"ph": "C", "name": "mem", "pid": 1, "ts": 2, "args": {"v": 2}},
        {"ph": "b", "name": "async", "pid": 1, "ts": 3, "id": 1},
        _event("X", 42, 30, 1),  # a name that is not a string: stored as its text
        _event("X", "aten::add", 40, 1, args={"correlation": 2**64 - 1, "External id": "x"}),  # beyond int64: NULL
        _event("X", "ProfilerStep#99999999999999999999999", 0, 50, cat="user_annotation"),  # not a step it can keep
    ]
    path = tmp_path / "odd.json"
    path.write_bytes(orjson.dumps({"traceEvents": events}))
    result = check_import(store_db, path)
    with Store(store_db) as store:
        profile = store.profile(int(store.profiles(result.run_id)["id"].iloc[0]))
        frame = store.events(profile["id"]).sort_values("start")
    info = json.loads(profile["info"])
    assert info["torchscope_skipped_phases"] == {"C": 2, "b": 1}
    assert info["torchscope_negative_durations"] == 1
    assert profile["step_count"] == 0
    assert frame["name"].tolist() == ["ProfilerStep#99999999999999999999999", "aten::mm", "aten::neg", "42",
                                      "aten::add"]  # fmt: skip
    assert frame["dur"].tolist() == [50_000, 10_000, 0, 1_000, 1_000]
    added = frame[frame["name"] == "aten::add"].iloc[0]
    assert pd.isna(added["corr"]) and pd.isna(added["ext_id"])


# -- TensorBoard event files -------------------------------------------------------------------------------------------

FLOATS = st.one_of(st.floats(width=32), st.sampled_from([math.inf, -math.inf, math.nan, 3.4e38, -0.0, 0.0]))
WALLS = st.one_of(st.floats(0, 2e9), st.sampled_from([math.inf, -math.inf, math.nan, 1e300, -1.0, 0.0]))
TAGS = st.one_of(st.text(max_size=6), st.just(""), st.just("t" * 3000), st.just("loss"))


@st.composite
def tb_event(draw: Any) -> event_pb2.Event:
    event = event_pb2.Event(wall_time=draw(WALLS), step=draw(st.integers(-(2**63), 2**63 - 1)))
    what = draw(st.sampled_from(["scalar", "histo", "tensor-scalar", "tensor-histo", "graph", "keras", "graph_def"]))
    if what == "graph_def":
        event.graph_def = draw(st.binary(max_size=20))
        return event
    value = event.summary.value.add(tag=draw(TAGS))
    if what == "scalar":
        value.simple_value = draw(FLOATS)
    elif what == "histo":
        limits = draw(st.lists(FLOATS, max_size=4))
        value.histo.CopyFrom(summary_pb2.HistogramProto(
            min=draw(FLOATS), max=draw(FLOATS), num=draw(FLOATS), sum=draw(FLOATS), sum_squares=draw(FLOATS),
            bucket_limit=limits, bucket=draw(st.lists(FLOATS, min_size=len(limits), max_size=len(limits))),
        ))  # fmt: skip
    else:
        plugin = {"tensor-scalar": "scalars", "tensor-histo": "histograms", "graph": "graph_run_metadata_graph",
                  "keras": "graph_keras_model"}[what]  # fmt: skip
        value.metadata.plugin_data.plugin_name = plugin
        tensor = value.tensor
        kind = draw(st.sampled_from(["float", "string", "int64", "empty"]))
        shape = draw(st.lists(st.integers(0, 3), max_size=2))
        n = math.prod(shape)
        for size in shape:
            tensor.tensor_shape.dim.add(size=size)
        if kind == "float":
            tensor.dtype = 1  # DT_FLOAT
            tensor.float_val.extend(draw(st.lists(FLOATS, min_size=n, max_size=n)))
        elif kind == "string":
            tensor.dtype = 7  # DT_STRING
            tensor.string_val.extend(draw(st.lists(st.binary(max_size=12), min_size=max(n, 1), max_size=max(n, 1))))
        elif kind == "int64":
            tensor.dtype = 9  # DT_INT64
            tensor.int64_val.extend(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)))
    return event


def _write_events(directory: Path, events: list[event_pb2.Event]) -> Path:
    writer = EventFileWriter(str(directory))
    for event in events:
        writer.add_event(event)
    writer.close()
    return next(directory.glob("events.out.tfevents.*"))


def _records(raw: bytes) -> list[tuple[int, int]]:
    """(start, end) of the data of each TFRecord in ``raw``."""
    spans, pos = [], 0
    while pos + 12 <= len(raw):
        (length,) = struct.unpack_from("<Q", raw, pos)
        spans.append((pos + 12, pos + 12 + length))
        pos += 16 + length
    return spans


@st.composite
def tb_file(draw: Any) -> tuple[list[event_pb2.Event], str, int, int]:
    return (draw(st.lists(tb_event(), min_size=1, max_size=4)),
            draw(st.sampled_from(["none", "truncate", "flip", "flip-and-fix-crc"])),
            draw(st.integers(0, 10**6)), draw(st.integers(0, 7)))  # fmt: skip


@FUZZ
@given(spec=tb_file())
def test_odd_damaged_or_corrupt_event_files_fail_cleanly_or_import(store_db, tmp_path_factory, spec):
    events, how, where, bit = spec
    logdir = tmp_path_factory.mktemp("tb")
    path = _write_events(logdir, events)
    raw = bytearray(path.read_bytes())
    if how == "truncate":
        raw = raw[: where % len(raw)]
    elif how != "none":
        at = where % len(raw)
        raw[at] ^= 1 << bit
        if how == "flip-and-fix-crc":  # the record still passes its checksums: the damage reaches the decoder
            for start, end in _records(bytes(raw)):
                if start - 12 <= at < end:
                    raw[start - 4 : start] = struct.pack("<I", masked_crc32c(bytes(raw[start - 12 : start - 4])))
                    if end + 4 <= len(raw):
                        raw[end : end + 4] = struct.pack("<I", masked_crc32c(bytes(raw[start:end])))
    path.write_bytes(bytes(raw))
    result = check_import(store_db, logdir)
    if result is not None and how == "none":  # an undamaged file of odd values: every scalar is kept, exactly
        expected = {(e.step, v.tag) for e in events for v in e.summary.value
                    if v.WhichOneof("value") == "simple_value"
                    or (v.WhichOneof("value") == "tensor" and v.metadata.plugin_data.plugin_name == "scalars")}
        with Store(store_db) as store:
            got = store.scalars(result.runs[-1]["id"])
        assert {(int(s), t) for s, t in zip(got["step"], got["tag"])} == expected
