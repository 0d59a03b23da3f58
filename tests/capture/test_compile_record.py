"""What torch.compile did, recorded for watched models: graph breaks at the user's line, recompiles with the failed
guard, FX graphs by module; eager capture still works when compiled, whole or in part."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from compile_models import BreakNet, Chatty, ShapeNet, TinyTransformer, record_break_run
from models import line_of
from runs import flushed_store

import torchscope
from torchscope.capture import compile_record

COMPILE_MODELS = str(Path(__file__).parents[1] / "compile_models.py")


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> None:
    """Each test compiles from scratch: frames another test compiled would recompile here instead."""
    torch._dynamo.reset()


@pytest.fixture(scope="module")
def break_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[torchscope.Store, int]:
    db = tmp_path_factory.mktemp("breaks") / "torchscope.db"
    run_id = record_break_run(db, profile=True)  # Inductor, on the CPU: one real compile for this module's tests
    return torchscope.open(db), run_id


def test_print_graph_break_is_recorded_at_the_print_line(break_store):
    store, run_id = break_store
    breaks = store.graph_breaks(run_id)
    row = breaks[breaks.lineno == line_of(Chatty.forward, "# <print>")]
    assert len(row) == 1
    assert row.iloc[0]["filename"] == COMPILE_MODELS
    assert row.iloc[0]["module"] == "block" and row.iloc[0]["module_class"] == "Chatty"
    assert "builtin operator `print`" in row.iloc[0]["reason"]
    assert row.iloc[0]["step"] == 1  # step 0 was captured (eagerly); step 1 is the first compiled one


def test_item_branch_graph_break_is_recorded_at_the_branch_line(break_store):
    store, run_id = break_store
    breaks = store.graph_breaks(run_id)
    row = breaks[breaks.lineno == line_of(BreakNet.forward, "# <item>")]
    assert len(row) == 1
    assert row.iloc[0]["reason"].startswith("Unsupported Tensor.item() call")
    assert row.iloc[0]["module"] == "" and row.iloc[0]["module_class"] == "BreakNet"
    assert sorted(breaks.lineno.tolist()) == sorted(
        [line_of(Chatty.forward, "# <print>"), line_of(BreakNet.forward, "# <item>")]
    )


def test_compile_events_name_the_frames_and_their_modules(break_store):
    store, run_id = break_store
    events = store.compile_events(run_id)
    first = events[events.step == 1]
    assert set(first.kind) == {"compile"} and (events.duration_ns > 0).all()
    # step 3 (profiled) recompiles the frame after the .item() branch: Dynamo specialised it on the value
    item = line_of(BreakNet.forward, "# <item>")
    later = events[events.step == 3]
    assert later[["kind", "frame"]].values.tolist() == [["recompile", f"torch_dynamo_resume_in_forward_at_{item}"]]
    assert later.reason.iloc[0].startswith("___stack0 == ")
    resumes = first[first.frame.str.startswith("torch_dynamo_resume_in_forward")]
    assert set(resumes.module) == {"", "block"}  # after each break, the rest of that forward is its own frame
    fx = store.fx_graph(run_id)
    linears = fx[(fx.op == "call_function") & (fx.target == "linear")]
    assert set(linears.module) == {"block.lin", "head"}


def test_inductor_kernels_are_attributed_to_the_modules_they_compute(break_store):
    store, run_id = break_store
    kernels = store.compiled_kernels(run_id)
    kernels = kernels[kernels.compile_id.str.endswith("/0")]  # the first compile of each frame (not step 3's)
    externs = kernels[kernels.kind == "extern"]
    assert externs[["kernel", "profiler_name", "module"]].values.tolist() == [
        ["addmm", "aten::addmm", "block.lin"], ["addmm", "aten::addmm", "head"],
    ]  # fmt: skip
    assert externs.source_nodes.tolist() == [["linear"], ["linear"]]
    relu = kernels[kernels.kernel.str.startswith("cpp_fused_relu")]
    assert relu.module.tolist() == ["block"] and relu.source_nodes.tolist() == [["relu"]]


def test_a_profile_of_the_compiled_model_has_time_per_module(break_store):
    store, run_id = break_store
    profile_id = int(store.profiles(run_id)["id"].iloc[-1])
    table = store.compiled_module_table(profile_id).set_index("module")
    assert set(table.index) == {"", "block", "block.lin", "head"}
    assert (table.loc[["block.lin", "head"], "kernel_ns"] > 0).all()  # their addmm calls, matched in order
    assert table.loc["block", "kernel_ns"] > 0  # the fused relu kernel, by its profiled name
    assert table.loc["", "host_total_ns"] == table["host_self_ns"].sum()  # the root holds everything
    assert table.loc["block", "host_total_ns"] == table.loc[["block", "block.lin"], "host_self_ns"].sum()
    # the profile page's modules tab shows that table (compiled code has no module events)
    from torchscope.dashboard.views.profile.tables import compiled_module_rows

    rows = {r["module"]: r for r in compiled_module_rows(table.reset_index(), run_id)}
    assert set(rows) == {"", "block", "block.lin", "head"}
    assert rows["head"]["kernel_us"] == pytest.approx(table.loc["head", "kernel_ns"] / 1000, abs=1e-9)
    assert rows["block"]["host_total_us"] == pytest.approx(table.loc["block", "host_total_ns"] / 1000, abs=1e-9)


def test_captured_steps_of_a_compiled_model_run_eagerly_and_keep_the_graph(break_store):
    store, run_id = break_store
    assert store.graph_steps(run_id)["step"].tolist() == [0, 2]
    nodes, _ = store.graph(run_id, step=2)
    assert {"block", "block.lin", "head"} <= set(nodes[nodes.kind == "module"]["module"])
    assert "Tensor.item" not in set(nodes.op)  # .item() returns no tensor: not an op
    assert {"F.linear", "Tensor.relu", "Tensor.sum"} <= set(nodes.op)


def test_a_new_batch_size_recompiles_with_the_failed_size_guard(run):
    handle = run.watch(ShapeNet_model := ShapeNet(), every=100)  # step 0 is captured; the rest run compiled
    compiled = torch.compile(ShapeNet_model, backend="eager", dynamic=False)
    for batch in (2, 2, 2, 3):
        compiled(torch.randn(batch, 4))
    handle.remove()
    events = flushed_store(run).compile_events(run.id)
    assert events[["kind", "step", "frame", "module"]].values.tolist() == [
        ["compile", 1, "forward", ""], ["recompile", 3, "forward", ""],
    ]  # fmt: skip
    assert events.reason.tolist()[1] == "tensor 'x' size mismatch at index 0. expected 2, actual 3"
    assert flushed_store(run).graph_breaks(run.id).empty


def test_a_transformer_compiles_whole_without_breaks(run):
    torch.manual_seed(0)
    model = TinyTransformer()
    handle = run.watch(model, every=100)
    compiled = torch.compile(model, backend="aot_eager")
    for _ in range(2):
        compiled(torch.randn(2, 5, 8)).sum().backward()
    handle.remove()
    store = flushed_store(run)
    assert store.graph_breaks(run.id).empty
    events = store.compile_events(run.id)
    assert events[["kind", "frame", "module"]].values.tolist() == [["compile", "forward", ""]]
    fx = store.fx_graph(run.id)
    assert events.graph_ops.iloc[0] == (fx.op.isin(["call_function", "call_method", "call_module"])).sum()
    nodes, _ = store.graph(run.id, step=0)
    executed = set(nodes[nodes.kind == "module"]["module"])
    traced = set(fx.module.dropna())
    assert {"encoder.layers.0.linear1", "encoder.layers.0.self_attn", "head"} <= traced
    assert traced <= executed  # every FX node is in a module the eager graph has


def test_partial_compile_keeps_the_eager_capture_of_every_step(run):
    model = BreakNet()
    handle = run.watch(model, every=1)
    model.head = torch.compile(model.head, backend="eager")
    for _ in range(3):
        model(torch.rand(3, 4) + 0.5).sum().backward()
    handle.remove()
    store = flushed_store(run)
    assert store.graph_steps(run.id)["step"].tolist() == [0, 1, 2]
    nodes, _ = store.graph(run.id, step=2)
    assert "head" in set(nodes[nodes.kind == "module"]["module"])
    assert not any("_orig_mod" in str(m) for m in nodes.module)
    assert (nodes[nodes.kind == "op"].module == "head").sum() == 1  # its F.linear, recorded eagerly
    assert store.compile_events(run.id).empty  # every step was captured, so the compiled head ran eagerly


def test_partial_compile_records_the_compiled_submodule_between_captures(run):
    model = BreakNet()
    handle = run.watch(model, every=2)
    model.head = torch.compile(model.head, backend="eager")
    for _ in range(3):
        model(torch.rand(3, 4) + 0.5)
    handle.remove()
    store = flushed_store(run)
    assert store.graph_steps(run.id)["step"].tolist() == [0, 2]
    events = store.compile_events(run.id)
    assert events[["kind", "step", "module"]].values.tolist() == [["compile", 1, "head"]]


def test_a_recorder_failure_warns_once_and_the_compiled_model_still_runs(run, monkeypatch):
    def broken(*args):
        raise RuntimeError("trace format changed")

    monkeypatch.setattr(compile_record, "fx_nodes", broken)
    model = ShapeNet()
    handle = run.watch(model, every=100)
    compiled = torch.compile(model, backend="eager")
    x = torch.randn(2, 4)
    with pytest.warns(torchscope.TorchscopeWarning, match="recording torch.compile stopped"):
        compiled(x)
        out = compiled(x)
    handle.remove()
    torch.testing.assert_close(out, model(x))


def test_a_profile_without_compiled_code_answers_without_reading_its_events(cpu_trace, tmp_path):
    # the profile's stored timeline names say it has no compiled region: its events (millions, at scale) stay unread
    from sqlalchemy import event

    from torchscope.io.importing import import_path

    import_path(tmp_path / "p.db", cpu_trace)
    with torchscope.open(tmp_path / "p.db") as store:
        statements: list[str] = []
        event.listen(store._engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        assert store.compiled_module_table(1).empty
        assert statements and not [s for s in statements if "profile_events" in s]
