"""Timeline reads and the pure level-of-detail code: windows, density blocks, search, event details, spans.

Store-level expectations come from the trace JSON: of traces recorded here (``gpu_trace``: a CPU recording with CUDA
activity added) and, as conformance params, of the A100 and V100 traces of ../shared/data; the pure functions are
checked on hand-made events whose answer is known.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from traces import load_trace, reference

import torchscope
from torchscope.errors import BadRequestError, NotFoundError
from torchscope.io.importing import import_path
from torchscope.storage.timeline import lod


def _events(path: Path) -> list[dict]:
    return load_trace(path)["traceEvents"]


@pytest.fixture(params=["gpu_trace", *reference("a100_alexnet")])
def a100(request: pytest.FixtureRequest, db_path: Path) -> tuple[torchscope.Store, list[dict], float]:
    """(store, the trace's events, its first timestamp) of a GPU trace: recorded here, or the reference A100 one."""
    path = trace_path(request)
    import_path(db_path, path)
    events = _events(path)
    t0 = min(e["ts"] for e in events if e.get("ph") == "X")
    with torchscope.open(db_path) as store:
        yield store, events, t0


def trace_path(request: pytest.FixtureRequest) -> Path:
    """The file of a ``gpu_trace``/``cpu_trace`` param or of a reference trace's name."""
    name = request.param
    if name in ("cpu_trace", "gpu_trace"):
        return request.getfixturevalue(name)
    return request.getfixturevalue("shared_data") / "kineto" / f"{name}.json.gz"


def _ns(us: float) -> int:
    return round(us * 1000)


def _at(ts: float, t0: float) -> int:
    """ns from ``t0`` to ``ts`` (both µs) as the importer counts them: each in integer ns, then subtracted."""
    def whole(us: float) -> int:
        return math.floor(us) * 1000 + round((us - math.floor(us)) * 1000)

    return whole(ts) - whole(t0)


def test_whole_window_draws_or_merges_every_event_once(a100) -> None:
    store, events, _ = a100
    stored = [e for e in events if e.get("ph") == "X" or (e.get("ph") == "i" and e.get("name") != "[memory]")]
    drawn, blocks = store.timeline_window(1, px=800)
    assert drawn.attrs["in_window"] == len(stored)
    assert len(drawn) + int(blocks["count"].sum()) == len(stored)
    assert drawn["id"].is_unique
    # what is drawn one by one is at least a pixel wide; density blocks stay inside the window
    assert (drawn["dur"] >= drawn.attrs["ns_per_px"]).all()
    assert (blocks["start"] >= 0).all() and (blocks["end"] <= drawn.attrs["end"]).all()


def test_budget_keeps_the_longest_events(a100) -> None:
    store, _, _ = a100
    drawn, blocks = store.timeline_window(1, px=100_000, max_items=50)
    everything, _ = store.timeline_window(1, px=100_000, max_items=10**6)
    assert len(drawn) == 50
    assert sorted(drawn["dur"], reverse=True) == sorted(everything["dur"], reverse=True)[:50]
    assert len(drawn) + blocks["count"].sum() == drawn.attrs["in_window"]


def test_zoomed_window_draws_the_kernel_with_exact_times_and_lanes_in_display_order(a100) -> None:
    store, events, t0 = a100
    kernel = max((e for e in events if e.get("cat") == "kernel"), key=lambda e: e["dur"])
    start = _at(kernel["ts"], t0)
    drawn, _ = store.timeline_window(1, start - 1_000_000, start + 2_000_000, px=1200)
    row = drawn[(drawn["kind"] == "kernel") & (drawn["start"] == start)]
    assert row["name"].tolist() == [kernel["name"]] and row["dur"].tolist() == [_ns(kernel["dur"])]
    lanes = store.timeline_lanes(1)
    assert lanes["kind"].tolist()[:1] == ["host"] and "device" in lanes["kind"].tolist()
    assert lanes["row0"].is_monotonic_increasing
    assert lanes.set_index("id").loc[int(row["lane_id"].iloc[0]), "label"] == f"stream {kernel['args']['stream']}"


def test_event_details_join_kernel_and_launch(a100) -> None:
    store, events, t0 = a100
    kernel = max((e for e in events if e.get("cat") == "kernel"), key=lambda e: e["dur"])
    launch = next(e for e in events if e.get("cat") == "cuda_runtime" and e["args"]["correlation"] == kernel["args"]["correlation"])
    drawn, _ = store.timeline_window(1, _at(kernel["ts"], t0), _at(kernel["ts"], t0) + 1)
    kernel_id = int(drawn[drawn["kind"] == "kernel"]["id"].iloc[0])
    detail = store.timeline_event(1, kernel_id)
    assert detail["details"]["grid"] == ",".join(str(g) for g in kernel["args"]["grid"])
    assert detail["details"]["registers"] == kernel["args"]["registers per thread"]
    assert detail["corr"] == kernel["args"]["correlation"]
    (src,) = detail["launched_by"]
    assert (src["name"], src["start"], src["dur"]) == (launch["name"], _at(launch["ts"], t0), _ns(launch["dur"]))
    back = store.timeline_event(1, int(src["id"]))
    assert [k["id"] for k in back["launched"]] == [kernel_id]
    assert back["op"] is not None and back["op"]["kind"] == "cpu_op"
    with pytest.raises(NotFoundError):
        store.timeline_event(1, 10**9)
    with pytest.raises(BadRequestError):
        store.timeline_window(1, 10, 5)


def test_search_and_name_spans_match_the_trace(a100) -> None:
    store, events, t0 = a100
    launches = [e for e in events if e.get("name") == "cudaLaunchKernel"]
    found = store.timeline_search(1, "CUDALAUNCHKERNEL")
    assert found.attrs["total"] == len(found) == len(launches)
    spans = store.name_spans(1).set_index("name")
    assert spans.loc["cudaLaunchKernel", "calls"] == len(launches)
    assert spans.loc["cudaLaunchKernel", "first_start"] == min(_at(e["ts"], t0) for e in launches)
    assert spans.loc["cudaLaunchKernel", "last_end"] == max(_at(e["ts"], t0) + _ns(e["dur"]) for e in launches)
    assert store.timeline_search(1, "").attrs["total"] == 0


def test_minimap_counts_every_event_per_lane(a100) -> None:
    store, events, _ = a100
    counts = store.timeline_minimap(1, bins=50)
    lanes = store.timeline_lanes(1).set_index("id")
    assert counts.shape == (len(lanes), 50)
    assert counts.sum(axis=1).to_dict() == lanes["event_count"].to_dict()
    per_stream = collections.Counter(e["args"]["stream"] for e in events if e.get("cat") == "kernel")
    stream_lane = lanes[lanes["label"] == "stream 7"].index[0]
    assert counts.loc[stream_lane].sum() >= per_stream[7]


@pytest.mark.parametrize(
    ("trace_file", "host_events"),
    [("gpu_trace", 1_000), *[pytest.param(*p.values, 30_000, marks=p.marks, id=p.id) for p in reference("v100_train_rank0")]],
    indirect=["trace_file"],
)  # fmt: skip
def test_nested_host_events_get_their_depth(db_path: Path, tmp_path: Path, trace_file: Path, host_events: int) -> None:
    # two events longer than the packed format's 2**22 ns on a thread of their own, whatever the recording's speed
    trace = load_trace(trace_file)
    first = next(e for e in trace["traceEvents"] if e.get("ph") == "X")
    trace["traceEvents"] += [{"ph": "X", "cat": "user_annotation", "name": f"long {i}", "pid": first["pid"],
                              "tid": 999_999, "ts": first["ts"], "dur": dur} for i, dur in enumerate((5_000, 9_000))]
    (tmp_path / "trace.json").write_bytes(orjson.dumps(trace))
    import_path(db_path, tmp_path / "trace.json")
    with torchscope.open(db_path) as store:
        raw = store.events(1)
        drawn, _ = store.timeline_window(1, px=10**7, max_items=10**7)
        lanes = store.timeline_lanes(1).set_index("id")
    parent = {int(i): (None if p is pd.NA else int(p)) for i, p in zip(raw["id"], raw["parent"])}

    def depth(i: int) -> int:
        d = 0
        while parent[i] is not None:
            i, d = parent[i], d + 1
        return d

    # times and names come back exactly (long events travel apart from the packed short ones)
    exact = drawn.merge(raw[["id", "start", "dur", "name", "kind"]], on="id", suffixes=("", "_raw"))
    assert len(exact) == len(drawn) and (exact["dur"] > 4_194_304).sum() >= 2
    for col in ("start", "dur", "name", "kind"):
        assert (exact[col] == exact[f"{col}_raw"]).all(), col
    host = drawn[drawn["lane_id"].map(lanes["kind"]) == "host"]
    assert len(host) > host_events and host["depth"].max() >= 5
    expected = [depth(int(i)) for i in host["id"]]
    assert host["depth"].tolist() == expected
    assert (host["row"] == host["lane_id"].map(lanes["row0"]) + host["depth"]).all()


# -- the pure level-of-detail functions ---------------------------------------------------------------------------------


def _index(lanes: list[int], starts: list[int], durs: list[int], parents: list[int] | None = None) -> lod.EventIndex:
    dur = np.array(durs, dtype=np.int64)
    parent = np.array(parents or [-1] * len(durs), dtype=np.int64)
    return lod.EventIndex(
        base=1, lane=np.array(lanes, dtype=np.int32), kind=np.zeros(len(durs), dtype=np.int8),
        name_id=np.zeros(len(durs), dtype=np.int64), level=np.frexp(dur.astype(float))[1].astype(np.int8),
        start=np.array(starts, dtype=np.int64), dur=dur, parent=parent, link=np.full(len(durs), -1),
        depth=lod.nesting_depth(parent), n_lanes=max(lanes) + 1,
    )  # fmt: skip


def test_nesting_depth_follows_parents() -> None:
    assert lod.nesting_depth(np.array([-1, 0, 1, 0, -1, 4])).tolist() == [0, 1, 2, 1, 0, 1]


def test_overlap_includes_long_events_that_started_before_the_window() -> None:
    ix = _index([0, 0, 0, 1], [0, 500, 2000, 900], [10_000, 10, 10, 0])
    assert sorted(lod.overlapping(ix, 1000, 1500).tolist()) == [0]
    assert sorted(lod.overlapping(ix, 900, 1000).tolist()) == [0, 3]  # the instant at 900
    assert sorted(lod.overlapping(ix, 10_000, 20_000).tolist()) == []


def test_narrow_events_merge_into_blocks_of_adjacent_pixels() -> None:
    # 1 px = 10 ns, so bins of 8 ns: one 100 ns event is drawn; 5 one-ns events in bins 25-28 (200-231 ns) form
    # one block; the one at 500 ns (bin 62) another
    starts = [0, 200, 205, 210, 221, 229, 500]
    ix = _index([0] * 7, starts, [100, 1, 1, 1, 1, 1, 1])
    w = lod.window(ix, np.array([0]), 0, 1000, px=100, max_items=100, max_blocks=100)
    assert w.events.tolist() == [0]
    assert w.block_count.tolist() == [5, 1]
    assert w.block_start.tolist() == [200, 496] and w.block_end.tolist() == [232, 504]
    assert w.block_busy.tolist() == pytest.approx([5 / 32, 1 / 8])
    assert w.in_window == 7
    coarse = lod.window(ix, np.array([0]), 0, 1000, px=100, max_items=100, max_blocks=1)
    assert len(coarse.block_count) == 1 and coarse.block_count.tolist() == [6]


def test_live_profile_timeline_modules_and_memory_attribution(db_path: Path) -> None:
    import warnings

    import torch

    run = torchscope.init("live", db=db_path)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        with run.profile(wait=0, warmup=0, active=2, record_shapes=True, profile_memory=True, with_stack=True) as prof:
            for _ in range(2):
                model(torch.randn(4, 8)).sum().backward()
                prof.step()
    run.finish()
    with torchscope.open(db_path) as store:
        pid = int(store.profiles(run.id)["id"].iloc[0])
        raw = store.events(pid)
        drawn, blocks = store.timeline_window(pid, px=400)
        assert len(drawn) + blocks["count"].sum() == drawn.attrs["in_window"] == len(raw)
        modules = store.op_modules(pid).set_index("name")["module"]
        assert modules["aten::relu"] == "Sequential_0/ReLU_0"
        assert set(modules) <= {"Sequential_0", "Sequential_0/Linear_0", "Sequential_0/Linear_1", "Sequential_0/ReLU_0"}
        memory = store.memory_timeline(pid)
        by_op = store.memory_by_op(pid)
        assert by_op["allocations"].sum() == (memory["bytes"] > 0).sum() > 0
        assert by_op["frees"].sum() == (memory["bytes"] < 0).sum()
        # brute force: the innermost op running on the allocation's thread (latest start, then shortest)
        ops = raw[raw["kind"] == "cpu_op"]
        expected: collections.Counter[str] = collections.Counter()
        held: collections.Counter[str] = collections.Counter()
        rows = list(memory.itertuples(index=False))
        for i, row in enumerate(rows):
            if row.bytes <= 0:
                continue
            running = (ops["start"] <= row.ts) & (ops["start"] + ops["dur"] > row.ts)
            inside = ops[(ops["lane_id"] == row.lane_id) & running]
            inside = inside.sort_values(["start", "dur"], ascending=[False, True])
            op = inside["name"].iloc[0] if len(inside) else "(no op)"
            expected[op] += 1
            block = (row.device_type, row.device, row.addr)
            after = [r for r in rows[i + 1 :] if (r.device_type, r.device, r.addr) == block]
            if not after or after[0].bytes > 0:  # the block's next event is not its free: held past the window
                held[op] += row.bytes
        got = by_op[by_op["allocations"] > 0].set_index("op")["allocations"].to_dict()
        assert got == dict(expected)
        assert by_op[by_op["held_bytes"] > 0].set_index("op")["held_bytes"].to_dict() == dict(held)
        assert 0 < by_op["held_bytes"].sum() < by_op["allocated_bytes"].sum()  # this trace has both kinds


@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("a100_alexnet")], indirect=True)
def test_timeline_reads_agree_on_sqlite_and_postgresql(any_db: str, trace_file: Path, tmp_path: Path) -> None:
    path = trace_file
    import_path(any_db, path)
    import_path(tmp_path / "reference.db", path)
    with torchscope.open(any_db) as store, torchscope.open(tmp_path / "reference.db") as reference:
        middle = int(reference.profile(1)["duration_ns"]) // 2  # and 1 ms of it
        for a, b in ((None, None), (middle, middle + 1_000_000)):
            got, ref = store.timeline_window(1, a, b, px=800), reference.timeline_window(1, a, b, px=800)
            pd.testing.assert_frame_equal(got[0], ref[0])
            pd.testing.assert_frame_equal(got[1], ref[1])
        pd.testing.assert_frame_equal(store.timeline_search(1, "cudaLaunch"), reference.timeline_search(1, "cudaLaunch"))
        kernel = int(reference.timeline_window(1, px=10**6)[0].query("kind == 'kernel'")["id"].iloc[0])
        assert store.timeline_event(1, kernel) == reference.timeline_event(1, kernel)


def test_memory_summaries_agree_on_sqlite_and_postgresql(any_db: str, cpu_trace: Path, tmp_path: Path) -> None:
    import_path(any_db, cpu_trace)
    import_path(tmp_path / "reference.db", cpu_trace)
    with torchscope.open(any_db) as store, torchscope.open(tmp_path / "reference.db") as reference:
        assert len(reference.memory_curve(1)) > 10
        for read in ("memory_curve", "memory_peak", "memory_by_op"):
            pd.testing.assert_frame_equal(getattr(store, read)(1), getattr(reference, read)(1))


@pytest.mark.parametrize("trace_file", ["cpu_trace", *reference("v100_train_rank0")], indirect=True)
def test_forward_op_details_link_the_backward_op(db_path: Path, trace_file: Path) -> None:
    path = trace_file
    import_path(db_path, path)
    events = _events(path)
    t0 = min(e["ts"] for e in events if e.get("ph") == "X")
    starts = {e["id"]: e for e in events if e.get("ph") == "s" and e.get("cat") == "fwdbwd"}
    ends = {e["id"]: e for e in events if e.get("ph") == "f" and e.get("cat") == "fwdbwd"}
    with torchscope.open(db_path) as store:
        flow = store.flows(1).iloc[0]
        forward = store.timeline_event(1, int(flow["src"]))
        (backward,) = forward["flows_out"]
        assert backward["id"] == flow["dst"] and backward["flow"] == "fwdbwd"
        (back_to_forward,) = store.timeline_event(1, int(flow["dst"]))["flows_in"]
        assert back_to_forward["id"] == flow["src"]
    # the two ends sit where the trace's "s" and "f" points of that flow id are
    s_point, f_point = starts[int(flow["flow_id"])], ends[int(flow["flow_id"])]
    assert forward["start"] <= _at(s_point["ts"], t0) < forward["start"] + forward["dur"] + 1
    assert backward["start"] <= _at(f_point["ts"], t0) < backward["start"] + backward["dur"] + 1
    assert forward["kind"] == backward["kind"] == "cpu_op"
