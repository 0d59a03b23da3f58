"""Many ranks in one view: a job's per-rank traces form a group whose step, computation, communication, overlap and
idle times per rank and step equal a direct computation from the raw trace JSON."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import statistics
from pathlib import Path

import pytest
from ddp_ranks import PROFILED

import torchscope
from torchscope.io.importing import import_path

COMM = ("gloo:", "nccl:", "mpi:", "ucc:")
NCCL_KERNELS = ("nccl", "ncclKernel", "ncclDevKernel", "rccl", "void ncclKernel", "void ncclDevKernel")


def ns(us: float) -> int:
    """A trace's microseconds as whole nanoseconds, exact to the ns the double holds (docs/profiler.md)."""
    whole = math.floor(us)
    return int(whole) * 1000 + round((us - whole) * 1000)


def union(intervals: list[tuple[int, int]], lo: int, hi: int) -> int:
    """Length of the union of ``intervals`` clipped to ``[lo, hi)``: a plain sweep, independent of torchscope's."""
    clipped = sorted((max(s, lo), min(e, hi)) for s, e in intervals if min(e, hi) > max(s, lo))
    total, end = 0, lo
    for s, e in clipped:
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def reference_steps(trace: Path) -> list[tuple[int, int, int, int, int, int]]:
    """``(step, step_ns, compute_ns, comm_ns, overlap_ns, idle_ns)`` per ProfilerStep, straight from the JSON."""
    data = json.loads((gzip.open(trace) if trace.suffix == ".gz" else open(trace)).read())
    events = [e for e in data["traceEvents"] if e.get("ph") == "X"]
    span = lambda e: (ns(e["ts"]), ns(e["ts"]) + round(e.get("dur", 0) * 1000))  # noqa: E731
    steps = [e for e in events if e.get("cat") == "user_annotation" and e["name"].startswith("ProfilerStep#")]
    device = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    if device:
        comm = [span(e) for e in device if e["cat"] == "kernel" and e["name"].startswith(NCCL_KERNELS)]
        compute = [span(e) for e in device if not (e["cat"] == "kernel" and e["name"].startswith(NCCL_KERNELS))]
    else:
        comm = [span(e) for e in events if e.get("cat") == "user_annotation" and e["name"].startswith(COMM)]
        threads = {(e["pid"], e["tid"]) for e in steps}
        compute = [
            span(e) for e in events
            if (e["pid"], e["tid"]) in threads and e.get("cat") in ("cpu_op", "user_annotation", "python_function")
            and not e["name"].startswith(("ProfilerStep#", *COMM))
        ]  # fmt: skip
    rows = []
    for step in steps:
        lo, hi = span(step)
        c, m = union(compute, lo, hi), union(comm, lo, hi)
        busy = union(compute + comm, lo, hi)
        rows.append((int(step["name"].split("#")[1]), hi - lo, c, m, c + m - busy, hi - lo - busy))
    return sorted(rows)


def reference_table(traces: dict[int, Path], threshold: float = 0.10) -> list[tuple[object, ...]]:
    """Rows ``(step, rank, step_ns, compute_ns, comm_ns, overlap_ns, idle_ns, straggler, reason)`` by step, rank."""
    per_rank = {rank: reference_steps(path) for rank, path in traces.items()}
    rows = []
    for rank, steps in per_rank.items():
        for step, wall, compute, comm, overlap, idle in steps:
            peers = [s for r in per_rank.values() for s in r if s[0] == step]
            slow_step = len(peers) > 1 and wall > statistics.median(p[1] for p in peers) * (1 + threshold)
            slow_compute = len(peers) > 1 and compute > statistics.median(p[2] for p in peers) * (1 + threshold)
            reason = "+".join(w for w, on in (("step", slow_step), ("compute", slow_compute)) if on)
            rows.append((step, rank, wall, compute, comm, overlap, idle, slow_step or slow_compute, reason))
    return sorted(rows)


def stored_table(store: torchscope.Store, profile_id: int, threshold: float = 0.10) -> list[tuple[object, ...]]:
    frame = store.rank_steps(profile_id, threshold)
    columns = ["step", "rank", "step_ns", "compute_ns", "comm_ns", "overlap_ns", "idle_ns", "straggler", "reason"]
    return [(*(int(v) for v in row[:7]), bool(row[7]), row[8]) for row in frame[columns].itertuples(index=False)]


def test_an_imported_directory_of_rank_traces_is_one_group_whose_table_matches_the_raw_json(
    rank_traces: Path, db_path: Path
) -> None:
    result = import_path(db_path, rank_traces)
    store = torchscope.open(db_path)
    first, second = (int(p["id"]) for p in result.profiles)
    group = store.rank_group(second)
    assert group[["profile_id", "rank", "run_id"]].values.tolist() == [[first, 0, result.run_id], [second, 1, result.run_id]]
    expected = reference_table({0: rank_traces / "rank-0.json", 1: rank_traces / "rank-1.json"})
    assert [row[:2] for row in expected] == [(s, r) for s in range(1, PROFILED + 1) for r in (0, 1)]
    assert stored_table(store, first) == expected
    assert stored_table(store, first, threshold=0.5) == reference_table(
        {0: rank_traces / "rank-0.json", 1: rank_traces / "rank-1.json"}, threshold=0.5
    )
    summary = store.rank_summary(first)
    for rank in (0, 1):
        mine = [row for row in expected if row[1] == rank]
        got = summary[summary["rank"] == rank].iloc[0]
        assert int(got["steps"]) == PROFILED and int(got["step_ns"]) == sum(r[2] for r in mine) // PROFILED
        assert [int(got[c]) for c in ("compute_ns", "comm_ns", "overlap_ns", "idle_ns", "stragglers")] == [
            sum(r[3] for r in mine), sum(r[4] for r in mine), sum(r[5] for r in mine), sum(r[6] for r in mine),
            sum(r[7] for r in mine)]  # fmt: skip
        comm = sum(r[4] for r in mine)
        assert got["overlap_pct"] == pytest.approx(100 * sum(r[5] for r in mine) / comm) if comm else math.isnan(got["overlap_pct"])
    # the straggler: rank 1 computes 60 ms more in step 2 while rank 0 waits for it in the gradient all-reduce
    step2 = {row[1]: row for row in expected if row[0] == 2}
    assert step2[1][3] > step2[0][3] + 30_000_000 and step2[0][4] > step2[1][4]  # (a loaded machine blurs the 60 ms)
    assert step2[1][7] and "compute" in step2[1][8]


def test_the_timeline_offsets_align_each_ranks_first_common_step_on_rank_0(rank_traces: Path, db_path: Path) -> None:
    result = import_path(db_path, rank_traces)
    store = torchscope.open(db_path)
    first, second = (int(p["id"]) for p in result.profiles)
    steps = store.rank_steps(first)
    start = {(int(r), int(s)): int(t) for r, s, t in steps[["rank", "step", "start_ns"]].itertuples(index=False)}
    assert store.rank_offsets(first) == (1, {first: 0, second: start[0, 1] - start[1, 1]})
    assert store.rank_offsets(second, step=3) == (3, {first: 0, second: start[0, 3] - start[1, 3]})
    assert store.rank_offsets(second, step=99) == (1, {first: 0, second: start[0, 1] - start[1, 1]})


def test_a_single_trace_is_a_group_of_one(rank_traces: Path, db_path: Path) -> None:
    result = import_path(db_path, rank_traces / "rank-1.json")
    store = torchscope.open(db_path)
    profile = int(result.profiles[0]["id"])
    group = store.rank_group(profile)
    assert group[["profile_id", "rank", "run_id", "name"]].values.tolist() == [[profile, 1, result.run_id, "rank-1"]]
    assert store.rank_steps(profile)["straggler"].tolist() == [False] * PROFILED


def test_recorded_gpu_ranks_match_hta_style_device_definitions(rank_traces: Path, tmp_path: Path) -> None:
    from traces import gpu_shaped_trace

    folder = tmp_path / "gpu"
    folder.mkdir()
    for rank in (0, 1):  # the DDP job's traces with CUDA activity: compute kernels, NCCL all-reduce on its own stream
        gpu_shaped_trace(rank_traces / f"rank-{rank}.json", folder / f"rank-{rank}.json.gz")
    result = import_path(tmp_path / "gpu.db", folder)
    store = torchscope.open(tmp_path / "gpu.db")
    first = int(result.profiles[0]["id"])
    assert store.rank_group(first)["rank"].tolist() == [0, 1]
    expected = reference_table({r: folder / f"rank-{r}.json.gz" for r in (0, 1)})
    assert stored_table(store, first) == expected
    assert sum(row[4] for row in expected) > 0 and sum(row[3] for row in expected) > 0  # NCCL and compute kernels


def test_the_reference_gpu_ranks_match_hta_style_device_definitions(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "gpu"
    folder.mkdir()
    for rank in (0, 1):
        shutil.copy(shared_data / "kineto" / f"gpu_sampled_rank{rank}.json.gz", folder)
    db = tmp_path / "gpu.db"
    result = import_path(db, folder)
    store = torchscope.open(db)
    first = int(result.profiles[0]["id"])
    assert store.rank_group(first)["rank"].tolist() == [0, 1]
    expected = reference_table({r: folder / f"gpu_sampled_rank{r}.json.gz" for r in (0, 1)})
    assert stored_table(store, first) == expected
    assert sum(row[4] for row in expected) > 0 and sum(row[3] for row in expected) > 0  # NCCL and compute kernels
