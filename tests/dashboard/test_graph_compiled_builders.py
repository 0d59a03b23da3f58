"""The graph page's torch.compile builders, without a browser: marks on the executed graph, the FX view's colours
against the executed ops, torch.export's graph, time per module of compiled code."""

from __future__ import annotations


import pandas as pd
import pytest
import torch
from compile_models import BreakNet, Chatty, TinyTransformer, record_break_run
from models import line_of
from runs import flushed_store

import torchscope
from torchscope.dashboard.views.graph.compiled import compile_marks, fx_scene, op_key
from torchscope.dashboard.views.graph.data import GraphData
from torchscope.dashboard.views.graph.model import captured_model


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> None:
    """Each test compiles from scratch: frames another test compiled would recompile here instead."""
    torch._dynamo.reset()


@pytest.fixture(scope="module")
def compiled_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[torchscope.Store, int]:
    db = tmp_path_factory.mktemp("compiled") / "torchscope.db"
    run_id = record_break_run(db, backend="aot_eager", profile=True)  # Dynamo's graphs and regions; no C++ build
    return torchscope.open(db), run_id


def test_op_names_of_both_graphs_meet():
    assert [op_key(n) for n in ("F.linear", "linear", "Tensor.__mul__", "mul", "Tensor.add_", "torch.tanh")] == [
        "linear", "linear", "mul", "mul", "add", "tanh",
    ]  # fmt: skip


def test_compiled_modules_and_breaks_are_marked_on_the_executed_graph(compiled_run):
    store, run_id = compiled_run
    model = captured_model(*store.graph(run_id, step=2))
    events = store.compile_events(run_id)
    marks = compile_marks(model, store.graph_breaks(run_id), events)
    root, block, head = (model.by_module[m] for m in ("", "block", "head"))
    assert marks.compiled == {root, block}  # head ran inside the root's resumed frame, not as a frame of its own
    assert [b["lineno"] for b in marks.breaks[block]] == [line_of(Chatty.forward, "# <print>")]
    assert [b["lineno"] for b in marks.breaks[root]] == [line_of(BreakNet.forward, "# <item>")]
    assert head not in marks.breaks
    n_re = int((events.kind == "recompile").sum())
    assert n_re == 1 and [r["frame"] for r in marks.recompiles[root]] == [events.frame.iloc[-1]]
    assert marks.summary == f"torch.compile: {len(events) - n_re} frames compiled, 1 recompiles, 2 graph breaks"


def test_fx_view_colours_dynamo_ops_against_the_executed_ones(compiled_run):
    store, run_id = compiled_run
    model = captured_model(*store.graph(run_id, step=2))
    scene = fx_scene(store.fx_graph(run_id), model)
    assert scene.counts == {"dynamo": {"both": 5, "fx-only": 0, "executed-only": 0}}
    both = sorted(e["data"]["label"] for e in scene.elements if "fx-both" in e.get("classes", ""))
    assert both == ["linear\nblock.lin", "linear\nhead", "mul\n(root)", "relu\nblock", "sum\n(root)"]


def test_export_graph_shows_what_export_decomposed(run):
    torch.manual_seed(0)
    model = TinyTransformer()
    handle = run.watch(model, every=1)
    x = torch.randn(2, 5, 8)
    model(x)
    assert handle.export(x)
    handle.remove()
    store = flushed_store(run)
    fx = store.fx_graph(run.id)
    assert set(fx.compile_id) == {"export"}
    linears = fx[fx.target == "linear"]
    assert set(linears.module) == {"encoder.layers.0.linear1", "encoder.layers.0.linear2",
                                   "encoder.layers.0.self_attn", "head"}  # fmt: skip
    scene = fx_scene(fx, captured_model(*store.graph(run.id, step=0)))
    assert "multi_head_attention_forward in encoder.layers.0.self_attn" in scene.executed_only["export"]
    fx_only = {e["data"]["label"] for e in scene.elements if "fx-fx-only" in e.get("classes", "")}
    assert "scaled_dot_product_attention\nencoder.layers.0.self_attn" in fx_only  # what MHA became in ATen


def test_an_export_that_cannot_trace_warns_and_returns_false(run):
    model = BreakNet()
    handle = run.watch(model, every=1)
    with pytest.warns(torchscope.TorchscopeWarning, match="torch.export of BreakNet failed"):
        assert not handle.export(torch.rand(3, 4) + 0.5)  # the .item() branch is data-dependent
    handle.remove()


def test_time_colouring_of_a_compiled_model_uses_its_compiled_regions(compiled_run):
    store, run_id = compiled_run
    data = GraphData(store)
    version = int(store.graph_steps(run_id)["version_id"].iloc[-1])
    profile_id, joined = data.times(run_id, version)
    table = store.compiled_module_table(profile_id).set_index("module")
    model = data.captured(run_id, version)
    root = model.by_module[""]
    assert joined[root]["module"] and joined[root]["host_ns"] == table.loc["", "host_total_ns"] / table.loc["", "calls"]


def test_fx_ops_that_inductor_fused_into_one_kernel_are_marked_with_it():
    fx = pd.DataFrame({
        "graph_id": [1] * 5, "compile_id": ["0/0"] * 5, "step": [0] * 5, "graph_module": ["m"] * 5,
        "id": [0, 1, 2, 3, 4], "name": ["x", "mul", "add", "relu", "output"],
        "op": ["placeholder", "call_function", "call_function", "call_function", "output"],
        "target": ["x", "mul", "add", "relu", "output"], "module": [None, "a", "a", "b", None],
        "filename": [None] * 5, "lineno": [None] * 5, "inputs": [[], [0], [1], [2], [3]], "model": ["M"] * 5,
    })  # fmt: skip
    kernels = pd.DataFrame({
        "compile_id": ["0/0", "0/0"], "seq": [0, 1], "kernel": ["cpp_fused_add_mul_0", "cpp_fused_relu_1"],
        "kind": ["cpp", "cpp"], "profiler_name": [None, None], "module": ["a", "b"],
        "source_nodes": [["mul", "add"], ["relu"]], "aten": [[], []], "model": ["M", "M"],
    })  # fmt: skip
    scene = fx_scene(fx, None, kernels)
    fused = {e["data"]["label"]: e["data"]["kernel"] for e in scene.elements if "fx-fused" in e.get("classes", "")}
    assert fused == {"mul\na\n⊂ cpp_fused_add_mul_0": "cpp_fused_add_mul_0",
                     "add\na\n⊂ cpp_fused_add_mul_0": "cpp_fused_add_mul_0"}  # relu is its kernel's only node
    assert scene.fused == {"dynamo": (2, 1)}
    assert fx_scene(fx, None).fused == {}  # without kernels: nothing marked
