"""Exporting: Chrome traces that round-trip through our importer (TensorBoard: test_export_tensorboard.py)."""

from __future__ import annotations

import sqlite3
import warnings

import orjson
import pandas as pd
import pytest
import torch

from traces import reference

import torchscope
from torchscope.cli.main import main
from torchscope.errors import ExportError
from torchscope.io.exporting import export_run
from torchscope.io.importing import import_path
from torchscope.storage.profile.records import TYPED_COLUMNS
from torchscope.storage.store import Store


def assert_same_profile(store: Store, a: int, b: int) -> None:
    """Profiles ``a`` and ``b`` hold identical events, lanes, details, other args and memory events (ids aside)."""
    pa, pb = store.profile(a), store.profile(b)
    for key in ("start_ns", "duration_ns", "event_count", "kernel_count", "step_first", "step_last", "device_name"):
        assert pa[key] == pb[key], key
    ea, eb = store.events(a), store.events(b)
    shift = int(eb["id"].min() - ea["id"].min())
    ea, eb = ea.reset_index(drop=True), eb.reset_index(drop=True)
    same = ["kind", "name", "start", "dur", "corr", "ext_id", "info"]
    pd.testing.assert_frame_equal(ea[same], eb[same])
    pd.testing.assert_series_equal(ea["parent"] + shift, eb["parent"])
    pd.testing.assert_series_equal(ea["link"] + shift, eb["link"])
    lane_cols = ["pid", "tid", "kind", "device", "stream", "label", "sort", "event_count", "max_level"]
    pd.testing.assert_frame_equal(store.lanes(a)[lane_cols], store.lanes(b)[lane_cols])
    da, db = store.event_details(a), store.event_details(b)
    da["event_id"] += shift
    pd.testing.assert_frame_equal(da, db)
    xa, xb = store.event_args(a), store.event_args(b)
    xa["event_id"] += shift
    pd.testing.assert_frame_equal(xa, xb)
    fa, fb = store.flows(a), store.flows(b)
    fa[["src", "dst"]] += shift
    pd.testing.assert_frame_equal(fa, fb)
    ma, mb = store.memory_timeline(a).drop(columns="lane_id"), store.memory_timeline(b).drop(columns="lane_id")
    pd.testing.assert_frame_equal(ma, mb)


@pytest.mark.parametrize(
    "trace_file",
    ["cpu_trace", "gpu_trace", "rank0_trace", *reference("mi250_rocm_train", "a100_alexnet", "cpu_only_rank34")],
    indirect=True,
)
def test_chrome_trace_export_round_trips_with_identical_events(trace_file, tmp_path, db_path):
    first = import_path(db_path, trace_file)
    out = tmp_path / "out.json"
    lines = list(export_run(db_path, first.run_id, chrome_trace=out))
    assert lines == [f"wrote profile 1 ({first.profiles[0]['events']} events) as a Chrome trace to {out}"]
    second = import_path(db_path, out)
    with Store(db_path) as store:
        assert_same_profile(store, first.profiles[0]["id"], second.profiles[0]["id"])


def test_live_profile_with_memory_and_shapes_round_trips(tmp_path, db_path):
    run = torchscope.init("live", db=db_path)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*acc_events.*")
        with run.profile(wait=0, warmup=1, active=2, record_shapes=True, profile_memory=True) as prof:
            for _ in range(3):
                model(torch.randn(2, 8)).sum().backward()
                prof.step()
    run.finish()
    out = tmp_path / "live.json"
    list(export_run(db_path, run.id, chrome_trace=out))
    again = import_path(db_path, out)
    with Store(db_path) as store:
        assert len(store.memory_timeline(1)) > 0
        assert_same_profile(store, 1, again.profiles[0]["id"])


def test_export_of_a_profile_of_another_run_is_an_error(cpu_trace, gpu_trace, tmp_path, db_path, capsys):
    import_path(db_path, cpu_trace)
    import_path(db_path, gpu_trace)
    with pytest.raises(ExportError, match="not a profile of run 1"):
        list(export_run(db_path, 1, chrome_trace=tmp_path / "x.json", profile_id=2))
    main(["export", "2", "--db", str(db_path), "--chrome-trace", str(tmp_path / "y.json")])
    assert "wrote profile 2" in capsys.readouterr().out


def test_exported_args_equal_the_trace_s_whatever_column_keeps_them(tmp_path, db_path):
    """Typed args (in and out of their int32 columns: too large, text, null, a bool), an op's inputs (in its info
    text, or with its other args when they are not lists), device details and other args come back exactly as the
    trace wrote them."""
    kernel_args = {"External id": 1, "queued": 0, "device": 0, "context": 1, "stream": 7, "correlation": 10,
                   "registers per thread": 32, "shared memory": 0, "blocks per SM": 1.5, "warps per SM": 3.0,
                   "grid": [1, 1, 1], "block": [128, 1, 1], "est. achieved occupancy %": 12.5}  # fmt: skip
    inputs = {"Input Dims": [[2, 3], []], "Input type": ["float", "Scalar"], "Input Strides": [[3, 1], []],
              "Concrete Inputs": ["", "2"]}  # fmt: skip
    events = [
        ("cpu_op", "op_in_range", 0, {"External id": 1, "Ev Idx": 5, "Sequence number": 7, "Fwd thread id": 1}),
        ("cpu_op", "op_misfits", 20, {"External id": 2, "Ev Idx": 3_000_000_000, "Sequence number": "12",
                                      "Fwd thread id": None, "Python id": "9"}),  # fmt: skip
        ("cpu_op", "op_int32_min", 40, {"Ev Idx": -(2**31), "Sequence number": 2**31 - 1}),
        ("cpu_op", "op_inputs", 60, {"Record function id": 4, **inputs}),
        ("cpu_op", "op_concrete_only", 80, {"Input Dims": [[2]], "Input type": ["float"], "Concrete Inputs": [""]}),
        ("cpu_op", "op_odd_strides", 100, {**inputs, "Input Strides": None, "Concrete Inputs": "2"}),
        ("python_function", "train.py(1): <module>", 120, {"Python parent id": None, "Python id": 1, "Ev Idx": 9}),
        ("python_function", "nn/module.py(7): forward", 121, {"Python parent id": 1, "Python id": 2,
                                                               "Python module id": 0}),  # fmt: skip
        ("cuda_runtime", "cudaLaunchKernel", 1, {"External id": 1, "cbid": 211, "correlation": 10}),
        ("cuda_runtime", "cudaMemcpyAsync", 21, {"cbid": True, "correlation": 11}),
        ("kernel", "gemm_kernel", 5, kernel_args),
        ("gpu_memcpy", "Memcpy HtoD", 25, {"device": 0, "context": 1, "stream": 7, "correlation": 11, "bytes": 1024,
                                           "memory bandwidth (GB/s)": 3.5}),  # fmt: skip
    ]
    trace = {"traceEvents": [
        {"ph": "X", "cat": cat, "name": name, "pid": 0 if cat in ("kernel", "gpu_memcpy") else 1,
         "tid": 7 if cat in ("kernel", "gpu_memcpy") else 1, "ts": ts, "dur": 10, "args": args}
        for cat, name, ts, args in events
    ]}  # fmt: skip
    source = tmp_path / "args.json"
    source.write_bytes(orjson.dumps(trace))
    first = import_path(db_path, source)
    out = tmp_path / "out.json"
    list(export_run(db_path, first.run_id, chrome_trace=out))
    exported = {e["name"]: e["args"] for e in orjson.loads(out.read_bytes())["traceEvents"] if e.get("ph") == "X"}
    assert exported == {name: args for _, name, _, args in events}
    assert all(type(v) is type(events[9][3][k]) for k, v in exported["cudaMemcpyAsync"].items())
    with Store(db_path) as store:
        typed = store.events(first.profiles[0]["id"])
    with sqlite3.connect(db_path) as conn:
        typed_sql = ", ".join(f"e.{c}" for c in TYPED_COLUMNS)
        rows = {name: row for name, *row in conn.execute(
            f"SELECT n.name, {typed_sql} FROM profile_events e JOIN names n ON n.id = e.name_id")}  # fmt: skip
        json_args = dict(conn.execute("SELECT n.name, a.args FROM profile_event_args a JOIN profile_events e ON "
                                      "e.id = a.event_id JOIN names n ON n.id = e.name_id").fetchall())
    assert len(typed) == len(events)
    none = [None] * len(TYPED_COLUMNS)
    assert {name: dict(zip(TYPED_COLUMNS, row)) for name, row in rows.items() if row != none} == {
        "op_in_range": {**dict.fromkeys(TYPED_COLUMNS), "ev_idx": 5, "seq_nr": 7, "fwd_tid": 1},
        "op_int32_min": {**dict.fromkeys(TYPED_COLUMNS), "seq_nr": 2**31 - 1},
        "op_inputs": {**dict.fromkeys(TYPED_COLUMNS), "rf_id": 4},
        "train.py(1): <module>": {**dict.fromkeys(TYPED_COLUMNS), "py_id": 1, "ev_idx": 9},
        "nn/module.py(7): forward": {**dict.fromkeys(TYPED_COLUMNS), "py_id": 2, "py_parent": 1},
        "cudaLaunchKernel": {**dict.fromkeys(TYPED_COLUMNS), "cbid": 211},
    }
    assert {name: orjson.loads(a) for name, a in json_args.items()} == {
        "op_misfits": {"Ev Idx": 3_000_000_000, "Sequence number": "12", "Fwd thread id": None, "Python id": "9"},
        "op_int32_min": {"Ev Idx": -(2**31)},
        "op_odd_strides": {"Input Strides": None, "Concrete Inputs": "2"},
        "train.py(1): <module>": {"Python parent id": None},
        "nn/module.py(7): forward": {"Python module id": 0},
        "cudaMemcpyAsync": {"cbid": True},
    }
