"""Comparing two live-captured runs of real tiny models, where B adds one layer (``extra``) to A."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import torchscope
from runs import ACTIVE, CAPTURED, STEPS, train_pair_run as train
from traces import load_trace, reference
from torchscope.io.importing import import_path
from torchscope.storage.compare import diff



@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    db = tmp_path_factory.mktemp("compare") / "torchscope.db"
    return db, train(db, "two-layers", extra=False), train(db, "three-layers", extra=True)


def test_structural_diff_names_exactly_the_added_layer_and_its_ops(two_runs) -> None:
    db, a, b = two_runs
    with torchscope.open(db) as store:
        cmp = torchscope.compare(store, a["id"], b["id"])
    nodes, modules = cmp.graph_nodes, cmp.graph_modules
    assert diff.by_status(nodes, diff.ONLY_A).empty
    only_b = diff.by_status(nodes, diff.ONLY_B)
    assert sorted(only_b["key"]) == sorted([
        "module:extra", "param:extra.weight", "param:extra.bias", "op:extra/F.linear#0",
        "grad:param:extra.weight", "grad:param:extra.bias", "grad:op:extra/F.linear#0",
    ])  # fmt: skip
    assert set(only_b["module"]) == {"extra"}
    assert only_b.loc[only_b["kind"] == "op", ["op", "name_b"]].values.tolist() == [["F.linear", "linear_1"]]
    assert modules[modules["status"] != diff.BOTH][["module", "status", "class_b", "ops_b"]].values.tolist() == [
        ["extra", diff.ONLY_B, "Linear", 1]
    ]
    # fc2's op is linear_1 in A and linear_2 in B: matched by its place (module fc2), not by its counter name
    fc2 = nodes.set_index("key").loc["op:fc2/F.linear#0"]
    assert (fc2["status"], fc2["name_a"], fc2["name_b"], fc2["shape_changed"]) == (diff.BOTH, "linear_1", "linear_2", False)
    shared_ops = nodes[(nodes["status"] == diff.BOTH) & (nodes["kind"] == "op")]
    assert sorted(shared_ops["key"]) == ["op:/torch.relu#0", "op:fc1/F.linear#0", "op:fc2/F.linear#0"]


def test_node_statistics_change_on_the_shared_structure(two_runs) -> None:
    db, a, b = two_runs
    with torchscope.open(db) as store:
        changes = store.graph_node_diff(a["id"], b["id"])
    assert (changes["status"] == diff.BOTH).all()
    assert not changes["key"].str.contains("extra").any()
    weight = changes.set_index("key").loc["param:fc1.weight"]
    # the last captured step is 2; the statistics are of the weights its forward used
    assert weight["norm_a"] == pytest.approx(a["fc1_norm"][CAPTURED[-1]], rel=1e-5)
    assert weight["norm_b"] == pytest.approx(b["fc1_norm"][CAPTURED[-1]], rel=1e-5)
    assert weight["norm_change"] == pytest.approx((weight["norm_b"] - weight["norm_a"]) / weight["norm_a"])
    grads = changes[changes["role"] == "grad"]
    assert "grad:param:fc2.weight" in set(grads["key"])
    sizes = changes["norm_change"].abs().dropna().tolist()
    assert sizes == sorted(sizes, reverse=True)


def test_scalars_config_and_profiles_of_the_two_runs(two_runs) -> None:
    db, a, b = two_runs
    with torchscope.open(db) as store:
        cmp = torchscope.compare(store, str(a["id"]), f"run:{b['id']}")
        pa, pb = store.latest_profile(a["id"]), store.latest_profile(b["id"])
    assert cmp.config.values.tolist() == [
        ["extra_width", diff.ONLY_B, None, "8"],
        ["layers", "changed", "2", "3"],
    ]
    loss = cmp.scalars[cmp.scalars["tag"] == "loss"]
    assert loss["x"].tolist() == list(range(STEPS))
    assert loss["value_a"].tolist() == [a["losses"][s] for s in range(STEPS)]
    assert loss["value_b"].tolist() == [b["losses"][s] for s in range(STEPS)]
    assert loss["delta"].tolist() == [b["losses"][s] - a["losses"][s] for s in range(STEPS)]
    assert f"run {a['id']} (two-layers): comparing its latest profile, p{pa} (window 1)" in cmp.notes
    assert (cmp.a.profile_id, cmp.b.profile_id) == (pa, pb)
    # B runs one more Linear per forward: 2 more aten::linear calls over the 2 profiled steps
    linear = cmp.ops.set_index("name").loc["aten::linear"]
    assert (linear["calls_a"], linear["calls_b"], linear["calls_delta"]) == (2 * ACTIVE, 3 * ACTIVE, ACTIVE)
    assert list(cmp.steps["step_a"]) == list(cmp.steps["step_b"]) == [1, 2]
    for table, cols in ((cmp.ops, ["calls", "host_self_ns", "host_total_ns"]), (cmp.modules, ["calls", "host_self_ns"])):
        t = diff.totals(table, cols)
        assert (t["delta"] == t["b"] - t["a"]).all()
    # the profiler names modules by class and count: extra took B's Linear_1, so fc2 became Linear_2, "only in B"...
    assert diff.by_status(cmp.modules, diff.ONLY_B)["module"].tolist() == ["Net_0/Linear_2"]
    # ...while on the graph's module paths the one module only in B is extra
    times = cmp.module_times.set_index("module")
    assert times["status"].to_dict() == {"": diff.BOTH, "fc1": diff.BOTH, "fc2": diff.BOTH, "extra": diff.ONLY_B}
    assert (times["calls_b"] == ACTIVE).all() and times.loc["extra", "calls_a"] == 0
    profile_fc2 = cmp.modules.set_index("module").loc["Net_0/Linear_2", "host_self_ns_b"]  # fc2 is B's 3rd Linear
    assert times.loc["fc2", "host_self_ns_b"] == profile_fc2
    t = diff.totals(cmp.module_times, ["host_self_ns"])
    assert t.iloc[0]["delta"] == t.iloc[0]["b"] - t.iloc[0]["a"]


def test_time_alignment_interpolates_each_run_on_seconds_since_start(two_runs) -> None:
    db, a, b = two_runs
    with torchscope.open(db) as store:
        frame = store.diffs.scalar_diff(a["id"], b["id"], align="time")
        ra, sa = store.run(a["id"]), store.scalars(a["id"])
    assert (frame["x"].diff().dropna() >= 0).all()
    own = ((sa["wall_time"] - ra["started_at"]) / 1e9).tolist()
    at_own = frame.set_index("x").loc[own, "value_a"].tolist()
    assert at_own == pytest.approx([a["losses"][s] for s in range(STEPS)])


@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("compare_base")], indirect=True)
def test_live_profile_against_an_imported_trace(two_runs, trace_file: Path) -> None:
    db, a, _ = two_runs
    imported = import_path(db, trace_file).profiles[0]["id"]
    kernels = [e for e in load_trace(trace_file)["traceEvents"] if e.get("cat") == "kernel"]
    with torchscope.open(db) as store:
        cmp = torchscope.compare(store, a["id"], f"p{imported}")
        ops_a, ops_b = store.op_table(cmp.a.profile_id), store.op_table(imported)
    assert cmp.config is None and cmp.graph_nodes is None  # a run against a profile: profile tables only
    assert set(diff.by_status(cmp.ops, diff.BOTH)["name"]) == set(ops_a["name"]) & set(ops_b["name"]) != set()
    assert (cmp.kernels["status"] == diff.ONLY_B).all()
    assert int(cmp.kernels["total_ns_delta"].sum()) == sum(round(e["dur"] * 1000) for e in kernels)
    t = diff.totals(cmp.ops, ["calls", "host_self_ns"])
    assert (t["delta"] == t["b"] - t["a"]).all()


def test_runs_without_profiles_or_graphs_say_so(db_path: Path) -> None:
    with torchscope.init(name="a", db=db_path) as ra:
        ra.log({"loss": 1.0}, step=0)
    with torchscope.init(name="b", db=db_path) as rb:
        rb.log({"loss": 0.5}, step=0)
    with torchscope.open(db_path) as store:
        cmp = torchscope.compare(store, ra.id, rb.id)
    assert cmp.ops is None and cmp.graph_nodes is None and cmp.config.empty
    assert f"run {ra.id} (a) has no profile: no profile comparison" in cmp.notes
    assert f"run {ra.id} (a) and run {rb.id} (b) captured no graph: no graph comparison" in cmp.notes
    assert cmp.scalar_summary.values.tolist() == [["loss", diff.BOTH, 1, 1, 1.0, 0.5, -0.5, 1.0, 0.5]]
    with pytest.raises(torchscope.NotFoundError):
        torchscope.compare(store, ra.id, 999)
    with pytest.raises(torchscope.TorchscopeError, match="not a run or profile id"):
        torchscope.compare(store, ra.id, "q7")


def test_a_run_with_several_profiles_is_compared_on_its_latest(db_path: Path) -> None:
    model = nn.Linear(4, 2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*acc_events.*")
        with torchscope.init(name="two-windows", db=db_path) as run:
            with run.profile(wait=0, warmup=1, active=1, repeat=2) as prof:
                for _ in range(4):
                    model(torch.randn(3, 4)).sum().backward()
                    prof.step()
    with torchscope.open(db_path) as store:
        first, latest = store.profiles(run.id)["id"].tolist()
        cmp = torchscope.compare(store, run.id, f"p{first}")
    assert (cmp.a.profile_id, cmp.b.profile_id) == (latest, first)
    assert cmp.notes == [
        f"run {run.id} (two-windows): comparing its latest profile, p{latest} (window 2); it has 2 profiles, "
        "compare another with p<id>"
    ]
    t = diff.totals(cmp.ops, ["calls", "host_self_ns"])
    assert (t["delta"] == t["b"] - t["a"]).all() and t.loc[0, "a"] > 0
