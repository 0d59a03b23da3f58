"""Graph capture on tiny real models: structure, statistics, gradients, anomalies, versions, the handle."""

from __future__ import annotations

import gc
import math
import warnings
import weakref

import numpy as np
import pytest
import torch

import torchscope
from torchscope.errors import CaptureError, NotFoundError, TorchscopeWarning

from models import DictIO, InPlace, LogBlock, NanNet, SharedTwice, SqrtAtZero, TinyMLP, line_of
from runs import flushed_store


def _train(model, inputs, steps=1, backward=True):
    for _ in range(steps):
        out = model(*inputs)
        if backward:
            out.float().sum().backward()


def test_mlp_graph_has_each_op_module_param_and_edge(run):
    torch.manual_seed(0)
    model = TinyMLP()
    with run.watch(model, every=1):
        _train(model, (torch.randn(5, 4),))
    nodes, edges = flushed_store(run).graph(run.id)
    ops = nodes[nodes.kind == "op"]
    assert ops["op"].tolist() == ["F.linear", "torch.relu", "F.linear", "Tensor.add"]
    assert ops["name"].tolist() == ["linear_0", "relu_0", "linear_1", "add_0"]
    assert ops["order"].tolist() == [0, 1, 2, 3]
    assert ops["module"].tolist() == ["fc1", "", "fc2", ""]
    relu_line = line_of(TinyMLP.forward, "<relu>")
    assert ops["line"].tolist() == [relu_line, relu_line, relu_line + 1, relu_line + 1]
    assert ops["file"].str.endswith("tests/models.py").all()
    by_name = nodes.set_index("name")
    assert by_name.loc["fc1", "kind"] == "module" and by_name.loc["fc1", "op"] == "Linear"
    assert by_name.loc["linear_0", "parent"] == by_name.loc["fc1", "id"]
    assert by_name.loc["fc1", "parent"] == by_name.loc["TinyMLP", "id"]
    assert by_name.loc["fc1.weight", "kind"] == "param"
    assert by_name.loc["fc1.weight", "parent"] == by_name.loc["fc1", "id"]
    assert by_name.loc["linear_0", "in_shapes"] == [[5, 4], [8, 4], [8]]
    assert by_name.loc["linear_0", "out_shapes"] == [[5, 8]]
    assert by_name.loc["linear_0", "out_dtypes"] == ["float32"]
    data = edges[edges.kind == "data"]
    name = dict(zip(nodes.id, nodes.name))
    pairs = sorted((name[s], name[d], a) for s, d, a in zip(data.src, data.dst, data.dst_arg))
    assert pairs == sorted([
        ("input[0]", "linear_0", "0"), ("fc1.weight", "linear_0", "1"), ("fc1.bias", "linear_0", "2"),
        ("linear_0", "relu_0", "0"), ("relu_0", "linear_1", "0"), ("fc2.weight", "linear_1", "1"),
        ("fc2.bias", "linear_1", "2"), ("linear_1", "add_0", "0"), ("add_0", "output", "0"),
    ])  # fmt: skip
    grads = nodes[nodes.kind == "grad"]
    assert sorted(grads.name) == sorted(
        ["grad:fc1.weight", "grad:fc1.bias", "grad:fc2.weight", "grad:fc2.bias", "grad:linear_0", "grad:relu_0",
         "grad:linear_1", "grad:add_0"]
    )  # fmt: skip
    assert (grads.set_index("name").loc["grad:fc1.weight", "target"]) == by_name.loc["fc1.weight", "id"]


def test_statistics_equal_torch_for_values_and_gradients(run):
    torch.manual_seed(1)
    model = TinyMLP()
    x = torch.randn(64, 4)
    with run.watch(model, every=1):
        model(x).sum().backward()
    stats = flushed_store(run).tensor_stats(run.id, step=0).set_index("name")
    hidden = model.fc1(x).detach()
    row = stats.loc["linear_0"]
    assert row["role"] == "value" and row["shape"] == [64, 8] and row["dtype"] == "float32" and row["device"] == "cpu"
    assert row["numel"] == 512
    assert row["min"] == pytest.approx(hidden.min().item())
    assert row["max"] == pytest.approx(hidden.max().item())
    assert row["mean"] == pytest.approx(hidden.mean().item(), rel=1e-5)
    assert row["std"] == pytest.approx(hidden.std().item(), rel=1e-5)
    assert row["norm"] == pytest.approx(hidden.norm().item(), rel=1e-5)
    assert row["zeros"] == 0 and row["nan"] == row["posinf"] == row["neginf"] == 0
    assert row["hist"].tolist() == torch.histc(hidden, 32, hidden.min().item(), hidden.max().item()).long().tolist()
    assert row["hist_n"] == 512
    assert row["sample"].tolist() == pytest.approx(hidden.reshape(-1)[::32][:16].double().tolist())
    relu = stats.loc["relu_0"]
    assert relu["zeros"] == int((hidden <= 0).sum())
    grad = stats.loc["grad:fc1.weight"]
    assert grad["role"] == "grad"
    assert grad["norm"] == pytest.approx(model.fc1.weight.grad.norm().item(), rel=1e-5)
    assert grad["mean"] == pytest.approx(model.fc1.weight.grad.mean().item(), rel=1e-4, abs=1e-7)


def test_first_nan_is_attributed_to_log_op_with_module_and_line(run):
    torch.manual_seed(2)
    model = NanNet()
    block = model.encoder.block.act
    line = line_of(LogBlock.forward, "<log>")
    x = torch.randn(3, 4)
    seen = []
    with run.watch(model, every=1):
        for step in range(10):
            block.poison = step == 7
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model(x).backward()
            seen += [str(w.message) for w in caught if issubclass(w.category, TorchscopeWarning)]
            model.zero_grad()
    anomalies = flushed_store(run).anomalies(run.id)
    assert anomalies["step"].tolist() == [7]
    row = anomalies.iloc[0]
    assert (row["phase"], row["op"], row["module"], row["line"]) == ("forward", "torch.log", "encoder.block.act", line)
    assert row["file"].endswith("tests/models.py") and row["nan"] == 12 and row["tensor"] == "log_0"
    assert row["inputs"][0]["name"] == "sub_0" and row["inputs"][0]["max"] < 0 and row["inputs"][0]["nan"] == 0
    assert seen == [
        f"torchscope: first NaN of step 7 (forward) comes from torch.log in encoder.block.act at {row['file']}:{line}"
    ]


def test_backward_inf_is_attributed_to_the_op_whose_backward_made_it(run):
    model = SqrtAtZero()
    with pytest.warns(TorchscopeWarning, match="first Inf of step 0 \\(backward\\) comes from torch.sqrt"):
        with run.watch(model, every=1):
            model(torch.randn(2, 3)).backward()
    row = flushed_store(run).anomalies(run.id).iloc[0]
    assert (row["phase"], row["op"], row["line"], row["tensor"]) == (
        "backward", "torch.sqrt", line_of(SqrtAtZero.forward, "<sqrt>"), "grad:sub_0",
    )  # fmt: skip
    assert row["posinf"] == 6 and row["inputs"][0]["name"] == "grad:sqrt_0" and row["inputs"][0]["max"] == 1.0


def test_dict_list_inputs_and_outputs_are_named_by_their_path(run):
    model = DictIO()
    batch = {"a": torch.randn(2, 4), "b": torch.randn(1, 4)}
    with run.watch(model, every=1):
        out = model(batch, [torch.randn(3, 4)], scale=2.0)
        assert out["n"] == 3
        (out["out"][0].sum() + out["out"][1].sum()).backward()
    nodes, edges = flushed_store(run).graph(run.id)
    assert nodes[nodes.kind == "input"]["name"].tolist() == ["input[0]['a']", "input[0]['b']", "input[1][0]"]
    assert nodes[nodes.kind == "output"]["name"].tolist() == ["output['out'][0]", "output['out'][1]"]
    cat = nodes.set_index("name").loc["cat_0"]
    assert cat["in_shapes"] == [[1, 4], [3, 4]] and cat["out_shapes"] == [[4, 4]]
    assert sorted(edges[edges.dst == cat["id"]]["dst_arg"]) == ["0.0", "0.1"]


def test_shared_module_called_twice_is_two_calls_of_one_weight(run):
    model = SharedTwice()
    with run.watch(model, every=1):
        _train(model, (torch.randn(2, 4),))
    nodes, edges = flushed_store(run).graph(run.id)
    calls = nodes[nodes.kind == "module"].set_index("name")
    assert calls.loc["shared", "call"] == 0 and calls.loc["shared#1", "call"] == 1
    weight = nodes[nodes.name == "shared.weight"]
    assert len(weight) == 1
    users = nodes.set_index("id").loc[edges[edges.src == weight.id.iloc[0]]["dst"], "name"]
    assert sorted(users) == ["linear_0", "linear_1"]
    ops = nodes[nodes.kind == "op"].set_index("name")
    assert ops.loc["linear_0", "parent"] == calls.loc["shared", "id"]
    assert ops.loc["linear_1", "parent"] == calls.loc["shared#1", "id"]


def test_in_place_ops_are_nodes_and_earlier_values_are_kept(run):
    torch.manual_seed(3)
    model = InPlace()
    x = torch.randn(2, 4)
    with run.watch(model, every=1):
        _train(model, (x,))
    store = flushed_store(run)
    nodes, edges = store.graph(run.id)
    ops = nodes[nodes.kind == "op"]
    assert ops["op"].tolist() == ["F.linear", "Tensor.add_", "Tensor.__setitem__", "Tensor.add_", "Tensor.relu_",
                                  "Tensor.mul"]  # fmt: skip
    name = dict(zip(nodes.id, nodes.name))
    chain = [(name[s], name[d]) for s, d in zip(edges.src, edges.dst) if name[d] in set(ops.name)]
    assert ("linear_0", "add__0") in chain and ("add__0", "__setitem___0") in chain
    assert ("__setitem___0", "add__1") in chain and ("add__1", "relu__0") in chain
    stats = store.tensor_stats(run.id, role="value").set_index("name")
    plain = model.fc(x).detach()
    assert stats.loc["linear_0", "min"] == pytest.approx(plain.min().item())  # before add_ changed it
    assert stats.loc["__setitem___0", "min"] == pytest.approx(-5.0)
    assert stats.loc["relu__0", "min"] == 0.0


def test_control_flow_that_changes_the_graph_makes_a_second_version(run):
    from models import Branchy

    model = Branchy()
    with run.watch(model, every=1):
        for sign in (1, -1, 1, 1):
            _train(model, (sign * torch.ones(2, 4),))
    store = flushed_store(run)
    steps = store.graph_steps(run.id)
    versions = store.graph_versions(run.id)
    assert steps["step"].tolist() == [0, 1, 2, 3]
    first, second = versions["id"].tolist()
    assert steps["version_id"].tolist() == [first, second, first, first]
    assert versions["n_steps"].tolist() == [3, 1] and versions["first_step"].tolist() == [0, 1]
    ops_a = store.graph(run.id, step=0)[0].query("kind == 'op'")["op"].tolist()
    ops_b = store.graph(run.id, step=1)[0].query("kind == 'op'")["op"].tolist()
    assert ops_a[-1] == "torch.relu" and ops_b[-2:] == ["torch.sigmoid", "Tensor.mul"]


def test_no_grad_evaluation_captures_forward_without_gradients(run):
    model = TinyMLP()
    with run.watch(model, every=1) as handle:
        with torch.no_grad():
            model(torch.randn(3, 4))
        assert handle.steps_captured == 1  # stored at once: no backward will come
    store = flushed_store(run)
    nodes, _ = store.graph(run.id)
    assert "grad" not in set(nodes.kind) and (nodes.kind == "op").sum() == 4
    assert set(store.tensor_stats(run.id)["role"]) == {"value"}


def test_every_n_captures_only_sampled_forwards(run):
    model = TinyMLP()
    with run.watch(model, every=3):
        _train(model, (torch.randn(2, 4),), steps=7)
    assert flushed_store(run).graph_steps(run.id)["step"].tolist() == [0, 3, 6]


def test_step_log_follows_run_log_steps(run):
    model = TinyMLP()
    with run.watch(model, every=2, step="log"):
        for step in range(10, 15):
            _train(model, (torch.randn(2, 4),))
            model(torch.randn(1, 4))  # an extra forward at the same step is not a new capture
            run.log({"loss": 1.0}, step=step)
    # before the first log run.step is 0; afterwards the forward of step s sees run.step == s
    assert flushed_store(run).graph_steps(run.id)["step"].tolist() == [0, 12, 14]


def test_handle_removes_hooks_idempotently_and_holds_model_weakly(run):
    from torch.nn.modules import module as nn_module

    model = TinyMLP()
    handle = run.watch(model, every=1)
    assert not model._forward_pre_hooks and not model._forward_hooks  # nothing on the model: global hooks
    assert len(nn_module._global_forward_pre_hooks) == 1 and len(nn_module._global_forward_hooks) == 1
    handle.remove()
    handle.remove()
    assert not nn_module._global_forward_pre_hooks and not nn_module._global_forward_hooks
    model(torch.randn(1, 4)).sum().backward()
    assert handle.steps_captured == 0
    ref = weakref.ref(model)
    other = run.watch(model)
    del model
    gc.collect()
    assert ref() is None and other.model is None
    other.remove()


def test_full_mode_keeps_whole_tensors_up_to_the_cap(run, monkeypatch):
    from torchscope.capture import step as capture_step

    monkeypatch.setattr(capture_step, "FULL_MAX_BYTES", 100)  # linear_0 (5x8 floats = 160 bytes) is over the cap
    torch.manual_seed(4)
    model = TinyMLP()
    x = torch.randn(5, 4)
    with run.watch(model, every=1, tensors="full"):
        model(x).sum().backward()
    store = flushed_store(run)
    np.testing.assert_array_equal(store.tensor_value(run.id, 0, "input[0]"), x.numpy())
    np.testing.assert_array_equal(store.tensor_value(run.id, 0, "fc2.bias"), model.fc2.bias.detach().numpy())
    np.testing.assert_allclose(store.tensor_value(run.id, 0, "grad:fc2.bias", role="grad"), model.fc2.bias.grad.numpy())
    with pytest.raises(NotFoundError, match="size cap"):
        store.tensor_value(run.id, 0, "linear_0")


def test_graph_only_mode_stores_no_statistics(run):
    model = TinyMLP()
    with run.watch(model, every=1, tensors="none"):
        _train(model, (torch.randn(2, 4),))
    store = flushed_store(run)
    assert (store.graph(run.id)[0].kind == "op").sum() == 4
    assert store.tensor_stats(run.id).empty


@pytest.mark.parametrize(
    ("options", "message"),
    [({"every": 0}, "every"), ({"tensors": "all"}, "tensors"), ({"step": "epoch"}, "step")],
)
def test_bad_watch_arguments_raise_capture_error(run, options, message):
    with pytest.raises(CaptureError, match=message):
        run.watch(TinyMLP(), **options)
    with pytest.raises(CaptureError, match="nn.Module"):
        run.watch(lambda x: x)


def test_a_capture_failure_warns_and_training_goes_on(run, monkeypatch):
    from torchscope.capture import graph_record

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(graph_record.StepRecord, "on_op", broken)
    model = TinyMLP()
    x = torch.randn(2, 4)
    with pytest.warns(TorchscopeWarning, match="graph capture skipped a step: RuntimeError: boom"):
        with run.watch(model, every=1):
            out = model(x)
            out.sum().backward()
    torch.testing.assert_close(out, TinyMLP.forward(model, x))
    assert run.dropped >= 1
    with pytest.raises(NotFoundError, match="no captured graph"):
        flushed_store(run).graph(run.id)


def test_reading_a_step_that_was_not_captured_names_the_captured_ones(run):
    model = TinyMLP()
    with run.watch(model, every=2):
        _train(model, (torch.randn(2, 4),), steps=3)
    with pytest.raises(NotFoundError, match=r"step 1 of run \d+ was not captured \(captured: 0, 2\)"):
        flushed_store(run).graph(run.id, step=1)


def test_nan_statistics_count_each_kind_and_skip_them_in_min_max(run):
    from torchscope.capture.stats_layout import COLUMNS
    from torchscope.capture.tensor_stats import cpu_row

    row = dict(zip(COLUMNS, cpu_row(torch.tensor([1.0, math.nan, math.inf, -math.inf, 0.0, 3.0]))))
    assert (row["nan"], row["posinf"], row["neginf"], row["zeros"]) == (1, 1, 1, 1)
    assert (row["min"], row["max"], row["mean"]) == (0.0, 3.0, pytest.approx(4 / 3))


def test_a_step_that_is_not_captured_installs_nothing_but_the_global_root_hooks(run):
    from torch.nn.modules import module as nn_module
    from torch.overrides import _get_current_function_mode_stack

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append((len(nn_module._global_forward_pre_hooks), len(_get_current_function_mode_stack())))
            return x * 2

    model = torch.nn.Sequential(Probe())
    with run.watch(model, every=2):
        for _ in range(3):
            model(torch.ones(1))
    # the watch's one global pre-hook is always there (it also records module calls); a captured step adds the mode
    assert seen == [(1, 1), (1, 0), (1, 1)]


def test_a_forward_that_raises_leaves_no_hook_or_mode_behind_and_keeps_what_ran(run):
    from torch.nn.modules import module as nn_module

    from torchscope.capture import registry
    from torch.overrides import _get_current_function_mode_stack

    class Fails(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 2)

        def forward(self, x):
            h = self.fc(x)
            if x.sum() > 100:
                raise RuntimeError("bad batch")
            return h

    model = Fails()
    with run.watch(model, every=1):
        with pytest.raises(RuntimeError, match="bad batch"):
            model(torch.full((1, 2), 1000.0))
        assert not _get_current_function_mode_stack() and len(nn_module._global_forward_pre_hooks) == 1
        assert not registry.recording  # the failed step's module-call record is gone
        model(torch.ones(1, 2)).sum().backward()
    store = flushed_store(run)
    assert store.graph_steps(run.id)["step"].tolist() == [0, 1]
    failed = store.graph(run.id, step=0)[0]
    assert failed.query("kind == 'op'")["op"].tolist() == ["F.linear", "Tensor.sum", "Tensor.gt"]
    assert "output" not in set(failed.kind)


def test_a_captured_step_reads_back_the_same_on_both_backends(any_db):
    torch.manual_seed(8)
    model = NanNet()
    model.encoder.block.act.poison = True
    x = torch.randn(2, 4)
    with torchscope.init("backend", db=any_db) as run:
        with pytest.warns(TorchscopeWarning, match="torch.log"):
            with run.watch(model, every=1, tensors="full"):
                model(x).backward()
    store = torchscope.open(any_db)
    nodes, edges = store.graph(run.id)
    assert (nodes.kind == "op").sum() == 8 and len(edges) > 0
    assert store.graph_versions(run.id)["n_ops"].tolist() == [8]
    stats = store.tensor_stats(run.id, "log_0")
    assert stats.loc[0, "nan"] == 8 and math.isnan(stats.loc[0, "min"]) and stats.loc[0, "hist"].sum() == 0
    assert store.anomalies(run.id)[["phase", "op"]].values.tolist() == [["forward", "torch.log"]]
    np.testing.assert_array_equal(store.tensor_value(run.id, 0, "input[0]"), x.numpy())


def test_a_failure_mid_forward_removes_the_gradient_hooks_it_had_placed(run, monkeypatch):
    from torchscope.capture import graph_record

    real = graph_record.StepRecord.on_op
    calls = []

    def fails_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("second op")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(graph_record.StepRecord, "on_op", fails_second)
    model = TinyMLP()
    with pytest.warns(TorchscopeWarning, match="second op"):
        with run.watch(model, every=2):
            for _ in range(2):
                model(torch.randn(2, 4)).sum().backward()
            assert not model.fc1.weight._backward_hooks
    assert flushed_store(run).graph_steps(run.id).empty
    assert run.dropped == 1


def test_outputs_in_a_dataclass_or_a_dict_subclass_become_output_nodes(run):
    import collections
    import dataclasses

    @dataclasses.dataclass
    class Result:
        logits: torch.Tensor
        extra: dict

    class ModelOutput(collections.OrderedDict):  # what transformers-style models return
        pass

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 2)

        def forward(self, x, *, mask=None):
            h = self.fc(x) * mask
            return Result(h, {"out": ModelOutput(hidden=h + 1)})

    model = Wrapped()
    with run.watch(model, every=1):
        model(torch.ones(1, 2), mask=torch.ones(1, 2)).logits.sum().backward()
    nodes, _ = flushed_store(run).graph(run.id)
    assert nodes[nodes.kind == "input"]["name"].tolist() == ["input[0]", "input.mask"]
    assert nodes[nodes.kind == "output"]["name"].tolist() == ["output.logits", "output.extra['out']['hidden']"]


def test_two_watched_models_in_one_run_keep_their_own_steps_and_statistics(run):
    import copy

    torch.manual_seed(11)
    generator = TinyMLP()
    twin = copy.deepcopy(generator)  # same structure: one shared graph version, separate steps and values
    with torch.no_grad():
        twin.fc1.weight.mul_(2)
    x = torch.randn(3, 4)
    with run.watch(generator, every=1, name="generator"), run.watch(twin, every=2) as second:
        assert second.name == "TinyMLP"
        for _ in range(3):
            generator(x).sum().backward()
            twin(x).sum().backward()
    third = run.watch(TinyMLP())
    assert third.name == "TinyMLP#2"
    third.remove()
    store = flushed_store(run)
    steps = store.graph_steps(run.id)
    assert steps[["step", "model"]].values.tolist() == [
        [0, "generator"], [0, "TinyMLP"], [1, "generator"], [2, "generator"], [2, "TinyMLP"],
    ]  # fmt: skip
    assert steps["version_id"].nunique() == 1
    assert store.graph_versions(run.id, model="TinyMLP")["n_steps"].tolist() == [2]
    weights = store.tensor_stats(run.id, "fc1.weight", step=0).set_index("model")["norm"]
    assert weights["TinyMLP"] == pytest.approx(2 * weights["generator"])
    assert len(store.graph_steps(run.id, model="generator")) == 3
    with pytest.raises(NotFoundError, match="step 1 of run .* of model 'TinyMLP' was not captured"):
        store.graph(run.id, step=1, model="TinyMLP")
