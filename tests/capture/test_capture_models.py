"""Capture must not break real models: attention, LSTM, conv+batchnorm, custom autograd, compile, CUDA."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import torchscope
from torchscope.capture.stats_layout import HIST_MAX
from torchscope.capture.tensor_stats import StatsBatch, cpu_row

from models import Attention, ConvBN, CustomFn, Recurrent, SmallCNN, Square, TinyMLP, TinyTransformer, line_of
from runs import flushed_store


class CountTensorCalls(TorchFunctionMode):
    """An independent count of the documented op level: torch-API calls that return or mutate a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        mutates = (name.endswith("_") and not name.endswith("__")) or name.startswith("__i") or name == "__setitem__"
        returns = isinstance(out, torch.Tensor) or (
            isinstance(out, (tuple, list)) and any(isinstance(t, torch.Tensor) for t in out)
        )
        if returns or (mutates and args and isinstance(args[0], torch.Tensor)):
            self.names.append(name)
        return out


MODELS = {
    "attention": (Attention, lambda: (torch.randn(2, 5, 8),)),
    "lstm": (Recurrent, lambda: (torch.randn(2, 5, 4),)),
    "conv_bn": (ConvBN, lambda: (torch.randn(2, 3, 6, 6),)),
    "custom_function": (CustomFn, lambda: (torch.randn(2, 4),)),
    "transformer": (lambda: TinyTransformer(d=16, heads=2, layers=1, seq=8), lambda: (torch.randint(0, 256, (2, 8)),)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_op_count_matches_an_independent_count_and_backward_is_captured(run, name):
    make, inputs = MODELS[name]
    torch.manual_seed(0)
    model = make()
    x = inputs()
    counter = CountTensorCalls()
    with counter:
        expected = model(*x)
    with run.watch(model, every=1):
        out = model(*x)
        out.float().sum().backward()
    torch.testing.assert_close(out, expected)
    store = flushed_store(run)
    nodes, edges = store.graph(run.id)
    ops = nodes[nodes.kind == "op"]
    assert len(ops) == len(counter.names)
    assert [op.rpartition(".")[2] for op in ops["op"]] == counter.names
    params = {n for n, p in model.named_parameters()}
    assert params <= set(nodes[nodes.kind == "param"]["name"])
    grads = store.tensor_stats(run.id, role="grad")
    got = set(grads["name"])
    assert {f"grad:{p}" for p in params} <= got
    for p_name, p in model.named_parameters():
        row = grads[grads.name == f"grad:{p_name}"].iloc[0]
        assert row["norm"] == pytest.approx(p.grad.norm().item(), rel=1e-4, abs=1e-6), p_name
    assert (nodes[nodes.kind == "op"]["line"].notna()).all()
    assert set(edges["src"]) <= set(nodes["id"]) and set(edges["dst"]) <= set(nodes["id"])


def test_custom_function_shows_its_forward_ops_inside_the_graph(run):
    model = CustomFn()
    with run.watch(model, every=1):
        model(torch.randn(2, 4)).backward()
    nodes, edges = flushed_store(run).graph(run.id)
    mul = nodes.set_index("name").loc["mul_0"]
    assert mul["line"] == line_of(Square.forward, "x * x")
    sum_id = nodes.set_index("name").loc["sum_0", "id"]
    assert edges[edges.dst == sum_id]["src"].tolist() == [mul["id"]]


def test_conv_batchnorm_in_training_records_buffer_updates(run):
    model = ConvBN()
    with run.watch(model, every=1):
        model(torch.randn(2, 3, 6, 6)).sum().backward()
    nodes, _ = flushed_store(run).graph(run.id)
    buffers = set(nodes[nodes.kind == "buffer"]["name"])
    assert buffers == {"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}
    assert "Tensor.add_" in set(nodes[nodes.module == "bn"]["op"])  # num_batches_tracked += 1


def test_torch_compile_runs_captured_steps_eagerly_and_the_others_compiled(run):
    model = TinyMLP()
    handle = run.watch(model, every=2)
    compiled = torch.compile(model, backend="eager")
    for _ in range(3):
        compiled(torch.randn(3, 4)).sum().backward()  # steps 0 and 2 captured (eagerly), step 1 compiled
    model(torch.randn(3, 4)).sum().backward()  # an eager call is step 3
    handle.remove()
    store = flushed_store(run)
    assert store.graph_steps(run.id)["step"].tolist() == [0, 2]
    assert store.compile_events(run.id)["step"].tolist() == [1]
    other = run.watch(compiled, name="wrapped")  # watching the wrapper watches the module it wraps
    assert other.model is model
    other.remove()


def test_device_path_equals_cpu_path_on_every_kind_of_tensor():
    torch.manual_seed(5)
    cases = [
        torch.randn(1000),
        torch.randn(HIST_MAX * 3 + 7),  # histogram over the fixed scattered subset
        torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), 0.0, 2.0]),
        torch.full((5,), 2.0),
        torch.tensor([float("nan")]),
        torch.arange(10),
        torch.tensor([True, False, True]),
        torch.randn(3, 3).half(),
        torch.empty(0),
    ]
    batch = StatsBatch(force_device_path=True)
    for x in cases:
        batch.add(x, ())
    rows = batch.gather()
    for x, row in zip(cases, rows, strict=True):
        np.testing.assert_allclose(row, cpu_row(x), rtol=1e-5, atol=1e-6, equal_nan=True)


def test_device_path_reduces_in_batches_and_keeps_the_order(monkeypatch):
    from torchscope.capture import device_stats

    monkeypatch.setattr(device_stats, "FLUSH_ELEMENTS", 50)  # a batch every few tensors
    torch.manual_seed(9)
    cases = [torch.randn(n) * n for n in (7, 30, 1, 64, 3, 100, 9)] + [torch.arange(5)]
    batch = StatsBatch(force_device_path=True)
    for x in cases:
        batch.add(x, ())
    for x, row in zip(cases, batch.gather(), strict=True):
        np.testing.assert_allclose(row, cpu_row(x), rtol=1e-5, atol=1e-6, equal_nan=True)


def test_histogram_of_a_large_tensor_counts_the_documented_subset():
    x = torch.randn(HIST_MAX * 4)
    row = cpu_row(x)
    assert row[12] == HIST_MAX and row[13 : 13 + 32].sum() == HIST_MAX and row[0] == HIST_MAX * 4


def test_small_cnn_with_inplace_relu_trains_identically_with_capture(run):
    torch.manual_seed(6)
    plain, watched = SmallCNN(), SmallCNN()
    watched.load_state_dict(plain.state_dict())
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    with run.watch(watched, every=1):
        for model in (plain, watched):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for _ in range(2):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                opt.zero_grad()
    for a, b in zip(plain.parameters(), watched.parameters()):
        torch.testing.assert_close(a, b)
    assert flushed_store(run).graph_steps(run.id)["step"].tolist() == [0, 1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_statistics_without_per_tensor_host_sync(run):
    torch.manual_seed(7)
    model = TinyMLP().cuda()
    x = torch.randn(64, 4, device="cuda")
    model(x).sum().backward()  # warm up kernels outside the measured step
    model.zero_grad()
    with run.watch(model, every=1):
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model(x).sum().backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert len(syncs) <= 1  # the one transfer of the step's statistics
    stats = flushed_store(run).tensor_stats(run.id, step=0).set_index("name")
    hidden = model.fc1(x).detach()
    assert stats.loc["linear_0", "device"].startswith("cuda")
    assert stats.loc["linear_0", "max"] == pytest.approx(hidden.max().item())
    assert stats.loc["grad:fc1.weight", "norm"] == pytest.approx(model.fc1.weight.grad.norm().item(), rel=1e-4)


def test_zero_count_is_exact_for_small_tensors_and_scaled_from_the_subset_for_large_ones():
    small = torch.relu(torch.randn(HIST_MAX))
    assert cpu_row(small)[9] == int((small == 0).sum())
    large = torch.relu(torch.randn(HIST_MAX * 16))
    exact = int((large == 0).sum())
    estimate = cpu_row(large)[9]
    assert abs(estimate - exact) < 0.03 * large.numel()
    batch = StatsBatch(force_device_path=True)
    batch.add(large, ())
    np.testing.assert_allclose(batch.gather()[0, 9], estimate)


def test_sparse_and_integer_outputs_get_rows_without_breaking_the_step(run):
    class Odd(torch.nn.Module):
        def forward(self, x):
            idx = torch.argmax(x, dim=1)
            sparse = x.to_sparse()
            return sparse.to_dense() + idx.unsqueeze(1)

    model = Odd()
    with run.watch(model, every=1):
        model(torch.tensor([[1.0, 3.0], [2.0, 0.0]]))
    stats = flushed_store(run).tensor_stats(run.id).set_index("name")
    assert stats.loc["argmax_0", "dtype"] == "int64" and stats.loc["argmax_0", "max"] == 1.0
    assert stats.loc["to_sparse_0", "numel"] == 4 and stats.loc["to_sparse_0", "hist_n"] == 0


def test_a_step_captured_through_the_device_path_stores_the_same_statistics(db_path, monkeypatch):
    import functools

    from torchscope.capture import step as capture_step

    import copy

    torch.manual_seed(10)
    base = ConvBN()
    x = torch.randn(2, 3, 6, 6)
    frames = []
    for force in (False, True):
        model = copy.deepcopy(base)  # batchnorm's buffers change with each training forward
        monkeypatch.setattr(capture_step, "StatsBatch", functools.partial(StatsBatch, force_device_path=force))
        with torchscope.init(f"force={force}", db=db_path) as run:
            with run.watch(model, every=1):
                model(x).sum().backward()
        frames.append(torchscope.open(db_path).tensor_stats(run.id))
    plain, device = frames
    assert plain["name"].tolist() == device["name"].tolist()
    columns = ["numel", "min", "max", "mean", "std", "norm", "nan", "zeros", "hist_n"]
    np.testing.assert_allclose(device[columns].to_numpy(float), plain[columns].to_numpy(float), rtol=1e-4, atol=1e-5)


def test_distributed_data_parallel_wrapper_is_captured_with_its_inner_module_paths(run, tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        model = torch.nn.parallel.DistributedDataParallel(TinyMLP())
        with run.watch(model, every=1):
            for _ in range(2):
                model(torch.randn(3, 4)).sum().backward()
    finally:
        dist.destroy_process_group()
    store = flushed_store(run)
    nodes, _ = store.graph(run.id)
    assert nodes[nodes.kind == "op"]["module"].tolist() == ["module.fc1", "module", "module.fc2", "module"]
    assert store.graph_steps(run.id)["version_id"].nunique() == 1
