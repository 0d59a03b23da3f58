"""Diffs of real Kineto traces, checked against rows derived from the JSON itself: two CPU recordings made here
(4 and 5 training steps, CUDA activity added by ``traces.gpu_shaped_trace``), and, as conformance tests, the reference
pair of ``../shared/data/kineto`` (one kernel launch removed, three ops added) with its known numbers."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from traces import gpu_shaped_trace, load_trace, record_cpu_trace

import torchscope
from torchscope.cli.main import cli
from torchscope.io.importing import import_path
from torchscope.storage.compare import diff

HOST_CATS = {"cpu_op", "user_annotation", "cuda_runtime", "cuda_driver", "python_function"}


def events(path: Path) -> list[dict]:
    return [e for e in load_trace(path)["traceEvents"] if e.get("ph") == "X"]


def ns(us: float) -> int:
    return round(us * 1000)


def start_ns(us: float) -> int:
    """A timestamp in integer ns as the importer computes it (whole µs, then the rounded fraction): nesting is
    decided on these, as in the store."""
    whole = math.floor(us)
    return whole * 1000 + round((us - whole) * 1000)


def kernels_of(evs: list[dict]) -> dict[str, tuple[int, int]]:
    """name -> (calls, total ns) of the GPU kernels."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in evs:
        if e.get("cat", "").lower() == "kernel":
            out[e["name"]][0] += 1
            out[e["name"]][1] += ns(e["dur"])
    return {k: (c, t) for k, (c, t) in out.items()}


def ops_of(evs: list[dict]) -> dict[str, tuple[int, int, int]]:
    """name -> (calls, total ns, self ns) of the CPU ops; self = minus the host events directly inside it."""
    host = [{**e, "ts": start_ns(e["ts"]), "dur": ns(e["dur"])} for e in evs if e.get("cat") in HOST_CATS]
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for op in (e for e in host if e["cat"] == "cpu_op"):
        lo, hi = op["ts"], op["ts"] + op["dur"]
        inside = [e for e in host if e is not op and (e["pid"], e["tid"]) == (op["pid"], op["tid"])
                  and lo <= e["ts"] and e["ts"] + e["dur"] <= hi and e["dur"] < op["dur"]]  # fmt: skip
        direct = [e for e in inside if not any(o is not e and o["ts"] <= e["ts"] and e["ts"] + e["dur"] <= o["ts"] + o["dur"]
                                               and o["dur"] > e["dur"] for o in inside)]  # fmt: skip
        row = out[op["name"]]
        row[0] += 1
        row[1] += op["dur"]
        row[2] += op["dur"] - sum(e["dur"] for e in direct)
    return {k: (c, t, s) for k, (c, t, s) in out.items()}


def expected_diff(a: dict[str, tuple], b: dict[str, tuple], sort_index: int) -> list[tuple]:
    """(name, status, *values A, *values B) per name, by |change of value sort_index| then name."""
    rows = []
    for name in set(a) | set(b):
        status = diff.BOTH if name in a and name in b else (diff.ONLY_A if name in a else diff.ONLY_B)
        va = a.get(name, (0,) * len(next(iter(b.values()))))
        vb = b.get(name, (0,) * len(va))
        rows.append((name, status, *va, *vb))
    width = (len(rows[0]) - 2) // 2
    return sorted(rows, key=lambda r: (-abs(r[2 + width + sort_index] - r[2 + sort_index]), r[0]))


@pytest.fixture(scope="module", params=["recorded", pytest.param("reference", marks=pytest.mark.conformance)])
def pair(request: pytest.FixtureRequest) -> tuple[Path, Path]:
    """Trace files A and B: ``recorded`` here (A's training 4 steps, B's 5, on differently named devices) or the
    ``reference`` pair ``compare_base``/``compare_test``."""
    if request.param == "reference":
        kineto = request.getfixturevalue("shared_data") / "kineto"
        return kineto / "compare_base.json.gz", kineto / "compare_test.json.gz"
    return request.getfixturevalue("recorded_pair")


@pytest.fixture(scope="module")
def recorded_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two recordings made here: A trains 4 steps, B 5; CUDA activity added, on devices named differently."""
    folder = tmp_path_factory.mktemp("pair")
    paths = []
    for side, steps in (("a", 4), ("b", 5)):
        cpu = record_cpu_trace(folder / f"{side}.json", steps=steps)
        paths.append(gpu_shaped_trace(cpu, folder / f"compare_{side}.json.gz", device=f"synthetic GPU {side.upper()}"))
    return paths[0], paths[1]


@pytest.fixture
def base_test(pair: tuple[Path, Path], db_path: Path) -> tuple[int, int, list[dict], list[dict]]:
    a, b = pair
    pa = import_path(db_path, a).profiles[0]["id"]
    pb = import_path(db_path, b).profiles[0]["id"]
    return pa, pb, events(a), events(b)


def by_host_self(ops: pd.DataFrame) -> pd.DataFrame:
    """Op diff rows in the order of :func:`expected_diff` on host self time (|change| descending, then name)."""
    order = sorted(range(len(ops)), key=lambda i: (-abs(ops["host_self_ns_delta"].iloc[i]), ops["name"].iloc[i]))
    return ops.iloc[order]


def is_reference(pair: tuple[Path, Path]) -> bool:
    return pair[0].name == "compare_base.json.gz"


def test_kernel_diff_of_the_reference_traces_matches_the_json(db_path: Path, base_test, pair) -> None:
    pa, pb, ea, eb = base_test
    with torchscope.open(db_path) as store:
        got = store.diffs.kernel_diff(pa, pb)
    want = expected_diff(kernels_of(ea), kernels_of(eb), sort_index=1)
    cols = ["name", "status", "calls_a", "total_ns_a", "calls_b", "total_ns_b"]
    assert [tuple(r) for r in got[cols].itertuples(index=False)] == want
    assert (got["total_ns_delta"] == got["total_ns_b"] - got["total_ns_a"]).all()
    assert (got["calls_delta"] == got["calls_b"] - got["calls_a"]).all()
    # the deltas add up exactly to the change of the total kernel time in the files
    total_a = sum(t for _, t in kernels_of(ea).values())
    total_b = sum(t for _, t in kernels_of(eb).values())
    totals = diff.totals(got, ["calls", "total_ns"]).set_index("column")
    assert totals.loc["total_ns"].tolist() == [total_a, total_b, total_b - total_a]
    assert int(got["total_ns_delta"].sum()) == total_b - total_a
    calls = {name: (c_b - c_a) for name, (c_a, _), (c_b, _) in
             ((n, kernels_of(ea).get(n, (0, 0)), kernels_of(eb).get(n, (0, 0))) for n in got["name"])}  # fmt: skip
    assert dict(zip(got["name"], got["calls_delta"])) == calls
    if is_reference(pair):  # one launch of the int add kernel is gone: the only change, and the largest row
        top = got.iloc[0]
        assert "CUDAFunctor_add<int>" in top["name"] and (top["calls_delta"], top["total_ns_delta"]) == (-1, -4000)
        assert top["mean_ns_a"] == top["mean_ns_b"] == 4000.0
        assert total_b - total_a == -4000
    else:  # B trained 5 steps, A 4, each step launching the same kernels
        assert (got["calls_b"] * 4 == got["calls_a"] * 5).all() and (got["status"] == diff.BOTH).all()


def test_op_diff_of_the_reference_traces_matches_the_json(db_path: Path, base_test, pair) -> None:
    pa, pb, ea, eb = base_test
    with torchscope.open(db_path) as store:
        got = store.diffs.op_diff(pa, pb)
    if not is_reference(pair):  # ops launched kernels: sorted by device time; host columns checked below
        assert got.attrs["sort_by"] == "device_self_ns"
        got = by_host_self(got)
    else:
        assert got.attrs["sort_by"] == "host_self_ns"  # no kernel was launched from inside an op
    want = expected_diff(ops_of(ea), ops_of(eb), sort_index=2)
    cols = ["name", "status", "calls_a", "host_total_ns_a", "host_self_ns_a", "calls_b", "host_total_ns_b",
            "host_self_ns_b"]  # fmt: skip
    assert [tuple(r) for r in got[cols].itertuples(index=False)] == want
    assert diff.by_status(got, diff.ONLY_A).empty
    for col in ("calls", "host_total_ns", "host_self_ns", "device_self_ns"):
        assert int(got[f"{col}_delta"].sum()) == int(got[f"{col}_b"].sum()) - int(got[f"{col}_a"].sum())
    json_total = {side: sum(t for _, t, _ in ops_of(e).values()) for side, e in (("a", ea), ("b", eb))}
    assert int(got["host_total_ns_delta"].sum()) == json_total["b"] - json_total["a"]
    if is_reference(pair):
        only_b = diff.by_status(got, diff.ONLY_B)
        assert only_b["name"].tolist() == ["All2All_Pooled_Req", "AddmmBackward0", "CatBackward0"]
        assert json_total["b"] - json_total["a"] == 529_000


def test_steps_and_breakdown_side_by_side_reconcile(db_path: Path, base_test, pair) -> None:
    pa, pb, ea, eb = base_test
    with torchscope.open(db_path) as store:
        steps = store.diffs.step_diff(pa, pb)
        breakdown = store.diffs.breakdown_diff(pa, pb)

    def json_steps(evs: list[dict]) -> list[tuple[int, int]]:
        return sorted((int(e["name"].split("#")[1]), ns(e["dur"])) for e in evs if e["name"].startswith("ProfilerStep#"))

    paired = min(len(json_steps(ea)), len(json_steps(eb)))  # steps side by side; B's extra step has no A
    assert list(zip(steps["step_a"], steps["wall_ns_a"]))[:paired] == json_steps(ea)[:paired]
    assert list(zip(steps["step_b"], steps["wall_ns_b"]))[:paired] == json_steps(eb)[:paired]
    parts = breakdown[breakdown["category"] != "wall"]
    wall = breakdown[breakdown["category"] == "wall"].iloc[0]
    assert wall["total_ns_a"] == sum(w for _, w in json_steps(ea))
    assert int(parts["total_ns_a"].sum()) == wall["total_ns_a"] and int(parts["total_ns_b"].sum()) == wall["total_ns_b"]
    assert parts["mean_ns_delta"].sum() == pytest.approx(wall["mean_ns_delta"], abs=1e-6)
    if is_reference(pair):  # B's extra ops are CPU time taken from idle time
        assert steps["wall_ns_delta"].tolist() == [0, 0]
        by_cat = breakdown.set_index("category")
        assert by_cat.loc["cpu", "total_ns_b"] - by_cat.loc["cpu", "total_ns_a"] == 529_000 - 67_000
        assert by_cat.loc["idle", "total_ns_b"] - by_cat.loc["idle", "total_ns_a"] == -(529_000 - 67_000)


def test_cli_prints_the_top_rows_and_the_reconciled_totals(db_path: Path, base_test, pair) -> None:
    pa, pb, _, _ = base_test
    result = CliRunner().invoke(cli, ["compare", f"p{pa}", f"profile:{pb}", "--db", str(db_path), "--top", "2"])
    assert result.exit_code == 0, result.output
    out = result.output
    a, b = (p.name.removesuffix(".json.gz") for p in pair)
    assert out.splitlines()[:2] == [f"A: profile {pa} ({a}) of run 1 ({a})",
                                    f"B: profile {pb} ({b}) of run 2 ({b})"]  # fmt: skip
    if not is_reference(pair):
        with torchscope.open(db_path) as store:
            kernels = store.diffs.kernel_diff(pa, pb)
        lines = out[out.index("Kernels by total_ns (top 2") :].splitlines()
        assert lines[3].strip().startswith(kernels["name"].iloc[0][:30]) and "total total_ns: A " in lines[5]
        return
    ops = out[out.index("Operators by host_self_ns (top 2") :].splitlines()
    assert ops[2].split() == ["name", "status", "calls", "A", "calls", "B", "A", "B", "delta", "change"]
    assert ops[3].split() == ["All2All_Pooled_Req", "only", "B", "0", "1", "0ns", "311µs", "+311µs", "only", "B"]
    assert ops[4].split() == ["AddmmBackward0", "only", "B", "0", "1", "0ns", "207µs", "+207µs", "only", "B"]
    assert ops[5].startswith("total host_self_ns: A 28µs, B 557µs, change +529µs")
    kernels = out[out.index("Kernels by total_ns") :].splitlines()
    assert "CUDAFunctor_add<int>" in kernels[3]
    assert kernels[3].split()[-7:] == ["both", "3", "2", "12µs", "8µs", "-4µs", "-33.3%"]
    assert kernels[5].startswith("total total_ns: A 432µs, B 428µs, change -4µs")


@pytest.mark.parametrize(
    ("files", "devices"),
    [("recorded", "synthetic GPU A vs synthetic GPU B"),
     pytest.param("reference", "NVIDIA A100-PG509-200 vs Tesla V100-SXM2-32GB", marks=pytest.mark.conformance)],
)  # fmt: skip
def test_a100_against_v100_compares_kernels_by_name_across_devices(
    files: str, devices: str, db_path: Path, request: pytest.FixtureRequest
) -> None:
    if files == "reference":
        kineto = request.getfixturevalue("shared_data") / "kineto"
        a, b = kineto / "a100_alexnet.json.gz", kineto / "v100_train_rank0.json.gz"
    else:
        a, b = request.getfixturevalue("recorded_pair")
    pa = import_path(db_path, a).profiles[0]["id"]
    pb = import_path(db_path, b).profiles[0]["id"]
    ka, kb = kernels_of(events(a)), kernels_of(events(b))
    with torchscope.open(db_path) as store:
        cmp = torchscope.compare(store, f"p{pa}", f"p{pb}")
    assert f"different devices: {devices}" in cmp.notes
    kernels = cmp.kernels
    assert set(diff.by_status(kernels, diff.BOTH)["name"]) == set(ka) & set(kb)
    assert set(diff.by_status(kernels, diff.ONLY_A)["name"]) == set(ka) - set(kb)
    assert set(diff.by_status(kernels, diff.ONLY_B)["name"]) == set(kb) - set(ka)
    total_a, total_b = sum(t for _, t in ka.values()), sum(t for _, t in kb.values())
    assert diff.totals(kernels, ["total_ns"]).iloc[0].tolist() == ["total_ns", total_a, total_b, total_b - total_a]
    deltas = kernels["total_ns_delta"].abs().tolist()
    assert deltas == sorted(deltas, reverse=True)
    assert cmp.ops.attrs["sort_by"] == "device_self_ns"
    assert int(cmp.ops["device_self_ns_delta"].sum()) == int(cmp.ops["device_self_ns_b"].sum()) - int(
        cmp.ops["device_self_ns_a"].sum()
    )
    assert cmp.config is None and cmp.scalars is None  # profiles, not runs: no run-level tables


def test_the_same_diff_on_both_backends(any_db: str, pair: tuple[Path, Path]) -> None:
    a, b = pair
    pa = import_path(any_db, a).profiles[0]["id"]
    pb = import_path(any_db, b).profiles[0]["id"]
    ea, eb = events(a), events(b)
    with torchscope.open(any_db) as store:
        cmp = torchscope.compare(store, f"p{pa}", f"p{pb}")
        assert store.latest_profile(cmp.a.run_id) == pa
    cols = ["name", "status", "calls_a", "total_ns_a", "calls_b", "total_ns_b"]
    assert [tuple(r) for r in cmp.kernels[cols].itertuples(index=False)] == expected_diff(
        kernels_of(ea), kernels_of(eb), sort_index=1
    )
    op_cols = ["name", "status", "calls_a", "host_total_ns_a", "host_self_ns_a", "calls_b", "host_total_ns_b",
               "host_self_ns_b"]  # fmt: skip
    ops = cmp.ops if cmp.ops.attrs["sort_by"] == "host_self_ns" else by_host_self(cmp.ops)
    assert [tuple(r) for r in ops[op_cols].itertuples(index=False)] == expected_diff(
        ops_of(ea), ops_of(eb), sort_index=2
    )
