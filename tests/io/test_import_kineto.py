"""Importing real Kineto traces: counts and times checked against the JSON itself, atomicity, windows, analyses.

Each test runs on traces recorded here (``cpu_trace``, ``gpu_trace``, ``rank_traces``); the reference traces of
other machines (``../shared/data/kineto``) are conformance params of the same tests.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
import pytest

from traces import GEMM_KERNEL, SGEMM_KERNEL, gpu_shaped_trace, load_trace, reference

from torchscope.cli.main import main
from torchscope.errors import TraceImportError
from torchscope.io.exporting import export_run
from torchscope.io.importing import import_path
from torchscope.storage.store import Store

TRACES = ["a100_alexnet", "v100_train_rank0", "mi250_rocm_train", "cpu_only_rank34", "gpu_sampled_rank0"]


def truth(path: Path) -> dict[str, object]:
    """What the file holds, derived straight from its JSON."""
    events = load_trace(path)["traceEvents"]
    kernels = [e for e in events if e.get("ph") == "X" and e.get("cat") == "kernel"]
    steps = {e["name"] for e in events if e.get("ph") == "X" and e.get("cat") == "user_annotation"
             and e["name"].startswith("ProfilerStep#")}  # fmt: skip
    stored = [e for e in events if e.get("ph") == "X" or (e.get("ph") == "i" and e.get("name") != "[memory]")]
    return {
        "kernels": len(kernels),
        "kernel_ns": sum(round(e["dur"] * 1000) for e in kernels),
        "steps": len(steps),
        "events": len(stored),
    }


@pytest.mark.parametrize("trace_file", ["cpu_trace", "gpu_trace", *reference(*TRACES)], indirect=True)
def test_real_trace_imports_with_the_files_kernel_count_time_and_steps(trace_file, db_path):
    path = trace_file
    expected = truth(path)
    result = import_path(db_path, path)
    with Store(db_path) as store:
        profile = store.profiles(result.run_id).iloc[0]
        kernels = store.kernel_table(int(profile["id"]))
        assert profile["source"] == "import"
        assert int(profile["kernel_count"]) == expected["kernels"]
        assert int(kernels["calls"].sum()) == expected["kernels"]
        assert int(kernels["total_ns"].sum()) == expected["kernel_ns"]
        assert int(profile["step_count"]) == expected["steps"]
        assert len(store.step_breakdown(int(profile["id"]))) == max(expected["steps"], 1)
        assert int(profile["event_count"]) == expected["events"]
        assert len(store.events(int(profile["id"]))) == expected["events"]


@pytest.mark.parametrize(
    ("trace_file", "steps"),
    [("gpu_trace", [1, 2, 3, 4]), *[pytest.param(*p.values, [101, 102, 103, 104, 105], marks=p.marks, id=p.id)
                                     for p in reference("v100_train_rank0")]],  # fmt: skip
    indirect=["trace_file"],
)
def test_step_breakdown_adds_up_to_each_steps_wall_time(trace_file, steps, db_path):
    result = import_path(db_path, trace_file)
    with Store(db_path) as store:
        pid = int(store.profiles(result.run_id).iloc[0]["id"])
        frame = store.step_breakdown(pid)
        parts = [c for c in frame.columns if c.endswith("_ns") and c != "wall_ns"]
        assert parts == ["kernel_ns", "communication_ns", "memcpy_ns", "memset_ns", "runtime_ns", "dataloader_ns",
                         "cpu_ns", "idle_ns"]  # fmt: skip
        assert (frame[parts].sum(axis=1) == frame["wall_ns"]).all()
        assert frame["step"].tolist() == steps
        assert (frame["kernel_ns"] > 0).all()
        util = store.device_utilization(pid)
        assert ((util["busy_ns"] + util["idle_ns"]) == util["wall_ns"]).all()
        assert (util["kernel_ns"] <= util["busy_ns"]).all()


@pytest.mark.parametrize(
    ("trace_file", "launching", "own_kernels"),
    [("gpu_trace", {"aten::mm", "aten::addmm"}, "aten::mm"),
     *[pytest.param(*p.values, {"aten::convolution_backward", "aten::cudnn_convolution"},
                    "aten::convolution_backward", marks=p.marks, id=p.id) for p in reference("v100_train_rank0")]],
    indirect=["trace_file"],
)  # fmt: skip
def test_each_kernel_is_joined_to_the_op_that_launched_it(trace_file, launching, own_kernels, db_path):
    path = trace_file
    events = load_trace(path)["traceEvents"]
    result = import_path(db_path, path)
    launches = {e["args"]["correlation"]: e["name"] for e in events
                if e.get("cat") == "cuda_runtime" and "correlation" in e.get("args", {})}  # fmt: skip
    with Store(db_path) as store:
        pid = int(store.profiles(result.run_id).iloc[0]["id"])
        joined = store.kernel_ops(pid)
        full = store.events(pid)
        kernels = joined[joined["kind"] == "kernel"]
        assert len(kernels) == sum(1 for e in events if e.get("cat") == "kernel") > 0
        launch = full.set_index("id").loc[kernels["launch_id"].astype("int64")]
        by_corr = [launches[int(c)] for c in launch["corr"]]
        assert launch["name"].tolist() == by_corr
        assert kernels["op"].notna().all()
        assert set(kernels["op"]) >= launching
        ops = store.op_table(pid)
        conv = ops.set_index("name").loc[own_kernels]
        assert conv["device_self_ns"] == conv["device_total_ns"] > 0


@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("gpu_sampled_rank0")], indirect=True)
def test_events_window_returns_exactly_the_events_overlapping_it(trace_file, db_path):
    result = import_path(db_path, trace_file)
    with Store(db_path) as store:
        pid = int(store.profiles(result.run_id).iloc[0]["id"])
        every = store.events(pid)
        a = int(every["start"].median())  # 1 ms from the middle of the trace
        b = a + 1_000_000
        window = store.events(pid, start=a, end=b)
        end = every["start"] + every["dur"]
        expected = every[(every["start"] < b) & (end >= a)]
        assert sorted(window["id"]) == sorted(expected["id"])
        assert 0 < len(window) < len(every)


@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("v100_train_rank0")], indirect=True)
def test_max_items_keeps_the_longest_events_of_each_lane(trace_file, db_path):
    result = import_path(db_path, trace_file)
    with Store(db_path) as store:
        pid = int(store.profiles(result.run_id).iloc[0]["id"])
        every = store.events(pid)
        few = store.events(pid, max_items=50)
        assert few.groupby("lane_id").size().max() <= 50
        assert few.attrs["truncated"]
        assert set(few.attrs["truncated"]) == {lane for lane, n in every.groupby("lane_id").size().items() if n > 50}
        for lane, group in few.groupby("lane_id"):
            rest = every[(every["lane_id"] == lane) & ~every["id"].isin(group["id"])]
            if len(rest):
                # whole duration classes are kept: nothing left out is as long as the shortest kept class
                level = np.frexp(group["dur"].to_numpy(float))[1].min()
                assert np.frexp(rest["dur"].to_numpy(float))[1].max() < level


def test_trace_directory_with_several_ranks_gives_one_profile_per_file(rank_traces, tmp_path, db_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    for rank in (0, 1):  # the DDP job's rank traces, with CUDA activity added
        gpu_shaped_trace(rank_traces / f"rank-{rank}.json", logdir / f"host_{rank}.pt.trace.json.gz")
    kernels = [sum(1 for e in load_trace(logdir / f"host_{rank}.pt.trace.json.gz")["traceEvents"]
                   if e.get("cat") == "kernel") for rank in (0, 1)]  # fmt: skip
    result = import_path(db_path, logdir, name="ranks")
    with Store(db_path) as store:
        frame = store.profiles(result.run_id)
        assert frame["name"].tolist() == ["host_0", "host_1"]
        assert frame["kernel_count"].tolist() == kernels and min(kernels) > 0
        assert store.run(result.run_id)["name"] == "ranks"
    assert "profile" in result.summary()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda raw: gzip.compress(raw)[: len(gzip.compress(raw)) // 2], id="truncated-gzip"),
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated-json"),
        pytest.param(lambda raw: b'{"hello": "world"}', id="unrelated-json"),
        pytest.param(lambda raw: b'{"traceEvents": [{"ph": "X", "name": "x"}]}', id="malformed-event"),
    ],
)
def test_broken_trace_raises_a_clear_error_and_leaves_nothing_behind(content, gpu_trace, tmp_path, db_path):
    raw = gzip.decompress(gpu_trace.read_bytes())
    logdir = tmp_path / "log"
    logdir.mkdir()
    (logdir / "a_good.json").write_bytes(raw)  # imported first, then rolled back with the bad one
    bad = content(raw)
    (logdir / ("b_bad.json.gz" if bad[:2] == b"\x1f\x8b" else "b_bad.json")).write_bytes(bad)
    import_path(db_path, tmp_path / "log" / "a_good.json")  # the store already holds one good import
    with pytest.raises(TraceImportError, match="b_bad"):
        import_path(db_path, logdir)
    with Store(db_path) as store:
        assert len(store.runs()) == 1
        assert len(store.profiles()) == 1


def test_unrelated_file_is_refused(tmp_path, db_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(TraceImportError, match="neither a Chrome/Kineto trace"):
        import_path(db_path, other)


def test_cli_import_prints_summary_and_reports_errors_in_one_line(gpu_trace, tmp_path, db_path, capsys):
    kernels = sum(1 for e in load_trace(gpu_trace)["traceEvents"] if e.get("cat") == "kernel")
    main(["import", str(gpu_trace), "--db", str(db_path), "--name", "gpu"])
    out = capsys.readouterr().out
    assert "imported run 1 (gpu)" in out and f"{kernels} kernels" in out
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"[")
    with pytest.raises(SystemExit) as exit_info:
        main(["import", str(bad), "--db", str(db_path)])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "bad.json" in err and len(err.strip().splitlines()) == 1


def test_tensor_core_kernels_are_flagged_by_name_in_a_recorded_trace(gpu_trace, db_path):
    result = import_path(db_path, gpu_trace)
    with Store(db_path) as store:
        table = store.kernel_table(result.profiles[0]["id"]).set_index("name")
    assert table.index[table["tensor_cores"]].tolist() == [GEMM_KERNEL]
    assert not table.loc[SGEMM_KERNEL, "tensor_cores"]
    assert abs(table["share"].sum() - 1.0) < 1e-9


def test_tensor_core_kernels_are_flagged_by_name(shared_data, db_path):
    a100 = import_path(db_path, shared_data / "kineto" / "a100_alexnet.json.gz")
    sampled = import_path(db_path, shared_data / "kineto" / "gpu_sampled_rank0.json.gz")
    with Store(db_path) as store:
        table = store.kernel_table(a100.profiles[0]["id"])
        flagged = table.loc[table["tensor_cores"], "name"].tolist()
        assert len(flagged) == 1 and flagged[0].startswith("sm80_xmma_fprop_implicit_gemm_indexed_tf32f32")
        other = store.kernel_table(sampled.profiles[0]["id"]).set_index("name")["tensor_cores"]
        assert other[[n for n in other.index if "cutlass_80_tensorop_s1688gemm" in n]].all()
        assert not other[[n for n in other.index if "sgemm" in n]].any()
        assert not other[[n for n in other.index if "GammaBeta" in n]].any()
        assert abs(table["share"].sum() - 1.0) < 1e-9


@pytest.mark.parametrize("trace_file", ["rank0_trace", *reference("cpu_only_rank34")], indirect=True)
def test_cpu_only_collectives_count_as_communication(trace_file, db_path):
    path = trace_file
    data = load_trace(path)
    base = int(data["baseTimeNanoseconds"])

    def ns(us: float) -> int:
        return int(np.floor(us)) * 1000 + int(np.rint((us - np.floor(us)) * 1000)) + base

    step = next(e for e in data["traceEvents"] if e.get("name", "").startswith("ProfilerStep#"))
    lo, hi = ns(step["ts"]), ns(step["ts"]) + round(step["dur"] * 1000)
    spans = sorted((max(ns(e["ts"]), lo), min(ns(e["ts"]) + round(e["dur"] * 1000), hi))
                   for e in data["traceEvents"] if e.get("name", "").startswith("gloo:"))  # fmt: skip
    covered, reach = 0, lo
    for s, e in spans:
        s = max(s, reach)
        if e > s:
            covered, reach = covered + e - s, e
    result = import_path(db_path, path)
    with Store(db_path) as store:
        row = store.step_breakdown(result.profiles[0]["id"]).iloc[0]
    assert row["wall_ns"] == hi - lo
    assert row["communication_ns"] == covered > 0
    assert row["kernel_ns"] == row["memcpy_ns"] == 0


def test_progress_bar_is_shown_when_asked(gpu_trace, db_path, capsys):
    import_path(db_path, gpu_trace, progress=True)
    assert f"import {gpu_trace.name}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "trace_file", ["gpu_trace", *reference("a100_alexnet", "mi250_rocm_train", "gpu_sampled_rank0")], indirect=True
)
def test_every_device_activity_with_a_launch_in_the_trace_is_linked_to_it(trace_file, db_path):
    path = trace_file
    events = load_trace(path)["traceEvents"]
    launches = {e["args"]["correlation"] for e in events
                if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}  # fmt: skip
    device = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    expected = sum(1 for e in device if e["args"].get("correlation") in launches)
    result = import_path(db_path, path)
    with Store(db_path) as store:
        joined = store.kernel_ops(result.profiles[0]["id"])
    work = joined[joined["kind"].isin(["kernel", "collective", "memcpy", "memset"])]
    assert len(work) == len(device)
    assert int((work["launch_id"] >= 0).sum()) == expected == len(device)


@pytest.mark.parametrize("trace_file", ["cpu_trace", "gpu_trace", *reference("v100_train_rank0")], indirect=True)
def test_forward_ops_are_linked_to_their_backward_ops(trace_file, db_path):
    path = trace_file
    events = load_trace(path)["traceEvents"]
    starts = {(e["pid"], e["tid"], e["ts"]): e["name"] for e in sorted(events, key=lambda e: e.get("dur", 0))
              if e.get("ph") == "X"}  # the outermost op starting at a time wins, as in the store  # fmt: skip
    ends: dict[int, dict[str, str]] = {}
    for e in events:
        if e.get("cat") == "fwdbwd":
            ends.setdefault(e["id"], {})[e["ph"]] = starts[(e["pid"], e["tid"], e["ts"])]
    result = import_path(db_path, path)
    with Store(db_path) as store:
        pid = result.profiles[0]["id"]
        flows = store.flows(pid)
        names = store.events(pid).set_index("id")["name"]
    assert len(flows) == len(ends) > 0
    got = {int(f): (names[s], names[d]) for f, s, d in zip(flows["flow_id"], flows["src"], flows["dst"])}
    assert got == {f: (e["s"], e["f"]) for f, e in ends.items()}


@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("v100_train_rank0")], indirect=True)
def test_imported_run_spans_the_time_its_trace_covers(trace_file, db_path):
    data = load_trace(trace_file)
    first = min(e["ts"] for e in data["traceEvents"] if e.get("ph") == "X")  # the profiler's own span
    start = int(data.get("baseTimeNanoseconds", 0)) + int(np.floor(first)) * 1000 + int(np.rint((first % 1) * 1000))
    result = import_path(db_path, trace_file)
    with Store(db_path) as store:
        run = store.run(result.run_id)
        profile = store.profile(result.profiles[0]["id"])
    assert (run["status"], run["source"]) == ("finished", "import")
    assert run["started_at"] == profile["start_ns"] == start
    assert run["ended_at"] == profile["start_ns"] + profile["duration_ns"]


def test_plain_chrome_trace_with_begin_end_pairs_and_other_categories(tmp_path, db_path):
    trace = [
        {"ph": "B", "name": "outer", "cat": "my_stage", "pid": 1, "tid": 2, "ts": 100.0},
        {"ph": "B", "name": "inner", "cat": "my_stage", "pid": 1, "tid": 2, "ts": 110.5},
        {"ph": "E", "pid": 1, "tid": 2, "ts": 120.25},
        {"ph": "X", "name": "op", "cat": "cpu_op", "pid": 1, "tid": 2, "ts": 112.0, "dur": 3.0},
        {"ph": "E", "pid": 1, "tid": 2, "ts": 150.0},
        {"ph": "E", "pid": 1, "tid": 3, "ts": 151.0},  # unmatched: dropped
    ]
    path = tmp_path / "plain.json"
    path.write_bytes(orjson.dumps(trace))
    result = import_path(db_path, path)
    with Store(db_path) as store:
        pid = result.profiles[0]["id"]
        events = store.events(pid).set_index("name")
        assert events.loc[["outer", "inner", "op"], ["kind", "start", "dur"]].values.tolist() == [
            ["other", 0, 50_000], ["other", 10_500, 9_750], ["cpu_op", 12_000, 3_000],
        ]  # fmt: skip
        assert events.loc["inner", "info"] == "my_stage"
        assert events.loc["op", "parent"] == events.loc["inner", "id"]
        assert events.loc["inner", "parent"] == events.loc["outer", "id"]
    out = tmp_path / "again.json"
    list(export_run(db_path, result.run_id, chrome_trace=out))
    again = import_path(db_path, out)
    with Store(db_path) as store:
        a, b = store.events(pid), store.events(again.profiles[0]["id"])
        cols = ["kind", "name", "start", "dur", "info"]
        assert a[cols].reset_index(drop=True).equals(b[cols].reset_index(drop=True))
