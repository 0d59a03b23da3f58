"""Training with a watched model gives the same bits as with its unwatched twin, however the program trains:
dtypes, eval, freezing, no_grad/inference_mode, activation checkpointing, autocast, gradient accumulation, several
optimizers, dict/dataclass/None outputs, torch.compile, DistributedDataParallel (issue 13)."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

import torchscope
from runs import flushed_store
from twins import TwinNet, assert_same_state, batches, hook_counts, train, twins

TESTS = Path(__file__).resolve().parents[1]


def _grads(model: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in model.parameters()]


def _same_grads(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for ga, gb in zip(_grads(a), _grads(b), strict=True):
        assert (ga is None and gb is None) or torch.equal(ga, gb)


def test_several_optimizers_give_identical_weights_after_k_steps(run):
    for optimizer, options in [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
        (torch.optim.Adam, {"lr": 0.01}),
        (torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    ]:
        plain, watched = twins()
        data = batches(3)
        expected = train(plain, data, optimizer, **options)
        with run.watch(watched, every=2):
            assert train(watched, data, optimizer, **options) == expected
        assert_same_state(watched, plain)
    assert flushed_store(run).graph_steps(run.id).groupby("model")["step"].apply(list).to_dict() == {
        "TwinNet": [0, 2], "TwinNet#2": [0, 2], "TwinNet#3": [0, 2]
    }  # fmt: skip


def test_gradient_accumulation_gives_identical_gradients_and_weights(run):
    plain, watched = twins()
    data = batches(5)  # two optimizer steps of two batches, then one backward that waits for its step
    expected = train(plain, data, accumulate=2)
    with run.watch(watched, every=1):
        assert train(watched, data, accumulate=2) == expected
    assert_same_state(watched, plain)
    _same_grads(watched, plain)
    assert flushed_store(run).graph_steps(run.id)["step"].tolist() == [0, 1, 2, 3, 4]


def test_float64_half_eval_and_a_frozen_part_behave_as_the_unwatched_twin(run):
    plain, watched = twins()
    for model in (plain, watched):
        model.to(torch.float64)
        model.fc1.requires_grad_(False)
    frozen = plain.fc1.weight.clone()
    data = [(x.double(), y) for x, y in batches(2)]
    expected = train(plain, data)
    with run.watch(watched, every=1):
        assert train(watched, data) == expected
        assert torch.equal(watched.fc1.weight, frozen) and watched.fc1.weight.grad is None
        assert_same_state(watched, plain)
        x = batches(1, seed=4)[0][0]
        assert torch.equal(watched.eval()(x.double()), plain.eval()(x.double()))
        watched.half(), plain.half()
        assert watched(x.half()).dtype == torch.float16
        assert torch.equal(watched(x.half()), plain(x.half()))
    nodes, _ = flushed_store(run).graph(run.id)  # the last step ran in float16
    assert {tuple(d) for d in nodes[nodes.kind == "param"]["out_dtypes"]} == {("float16",)}
    assert hook_counts(watched) == hook_counts(plain)


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_no_grad_and_inference_mode_evaluation_record_the_forward_only(run, mode):
    plain, watched = twins()
    data = batches(2)
    context = torch.no_grad if mode == "no_grad" else torch.inference_mode
    with run.watch(watched, every=1):
        train(watched, data[:1])
        train(plain, data[:1])
        watched.eval(), plain.eval()
        with context():
            out = watched(data[1][0])
        assert torch.equal(out, plain(data[1][0]))
        assert out.is_inference() == (mode == "inference_mode")
    assert_same_state(watched, plain)
    store = flushed_store(run)
    assert store.graph_steps(run.id)["step"].tolist() == [0, 1]
    kinds = [set(store.graph(run.id, step=s)[0]["kind"]) for s in (0, 1)]
    assert "grad" in kinds[0] and "grad" not in kinds[1]  # the evaluation step has its forward, no gradients


class Checkpointed(TwinNet):
    """TwinNet whose Block is recomputed in the backward pass (activation checkpointing)."""

    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.reentrant = reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.fc1(x)))
        h = checkpoint(self.block, h, use_reentrant=self.reentrant)
        return self.head(self.drop(h))


@pytest.mark.parametrize("reentrant", [False, True])
def test_activation_checkpointing_gives_identical_gradients(run, reentrant):
    plain, watched = twins(lambda: Checkpointed(reentrant))
    data = batches(2)
    expected = train(plain, data)
    with run.watch(watched, every=1):
        assert train(watched, data) == expected
    assert_same_state(watched, plain)
    _same_grads(watched, plain)
    store = flushed_store(run)
    assert store.graph_steps(run.id)["step"].tolist() == [0, 1]
    nodes, _ = store.graph(run.id, step=0)
    assert "block" in set(nodes[nodes.kind == "module"]["name"]) and "grad:fc1.weight" in set(nodes["name"])


def test_cpu_autocast_bfloat16_gives_identical_losses_and_weights(run):
    plain, watched = twins()
    data = batches(2)

    def autocast_train(model):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return train(model, data)

    expected = autocast_train(plain)
    with run.watch(watched, every=1):
        assert autocast_train(watched) == expected
    assert_same_state(watched, plain)
    nodes, _ = flushed_store(run).graph(run.id)
    assert {tuple(d) for d in nodes[nodes.op == "F.linear"]["out_dtypes"]} == {("bfloat16",)}


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    hidden: torch.Tensor | None


class DictOut(TwinNet):
    def forward(self, x):
        return {"logits": super().forward(x), "aux": None}


class DataclassOut(TwinNet):
    def forward(self, x):
        return Output(super().forward(x), None)


class NoneOut(TwinNet):
    """Returns nothing: keeps its logits on itself, as some training frameworks' modules do."""

    def forward(self, x):
        self.last = super().forward(x)


@pytest.mark.parametrize(
    ("make", "logits", "outputs"),
    [
        (DictOut, lambda m, out: out["logits"], ["output['logits']"]),
        (DataclassOut, lambda m, out: out.logits, ["output.logits"]),
        (NoneOut, lambda m, out: m.last, []),
    ],
)
def test_dict_dataclass_and_none_outputs_train_identically(run, make, logits, outputs):
    plain, watched = twins(make)
    torch.manual_seed(3)
    data = batches(2)
    for model in (plain, watched):
        torch.manual_seed(3)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        handle = run.watch(model, every=1) if model is watched else None
        for x, y in data:
            out = model(x)
            F.cross_entropy(logits(model, out), y).backward()
            opt.step()
            opt.zero_grad()
        if handle:
            handle.remove()
    assert_same_state(watched, plain)
    nodes, _ = flushed_store(run).graph(run.id)
    assert nodes[nodes.kind == "output"]["name"].tolist() == outputs


def test_torch_compile_of_a_watched_model_trains_like_the_compiled_unwatched_twin(run):
    # aot_eager: Dynamo and AOTAutograd trace the model, with torchscope's global hooks, forward and backward, as
    # Inductor's front end does; Inductor's own code generation is checked once below (it takes 10-20 s of gcc)
    plain, watched = twins()
    data = batches(2)
    expected = train(torch.compile(plain, backend="aot_eager"), data)
    handle = run.watch(watched, every=2)
    assert train(torch.compile(watched, backend="aot_eager"), data) == expected
    assert_same_state(watched, plain)
    watched(data[0][0])  # an eager call is step 2: captured
    handle.remove()
    assert flushed_store(run).graph_steps(run.id)["step"].tolist() == [0, 2]  # step 0 ran eagerly, step 1 compiled
    assert run.dropped == 0


def test_torch_compile_with_the_default_inductor_backend_gives_the_eager_result(run):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))  # tiny: Inductor compiles C++ for it with gcc
    x = torch.randn(2, 4)
    eager = model(x)
    with run.watch(model, every=1):
        compiled = torch.compile(model)
        compiled(x)  # step 0: captured, so run eagerly
        out = compiled(x)  # step 1: compiled by Inductor
    torch.testing.assert_close(out, eager)
    assert run.dropped == 0


def test_run_writer_and_engine_are_collected_after_finish_while_the_model_lives(db_path):
    model = TwinNet()
    run = torchscope.init("gc", db=db_path)
    handle = run.watch(model, every=1)
    train(model, batches(2))
    refs = {"run": weakref.ref(run), "writer": weakref.ref(run.writer), "engine": weakref.ref(run.writer.engine)}
    run.finish()
    del run
    gc.collect()
    assert {name: ref() is None for name, ref in refs.items()} == {"run": True, "writer": True, "engine": True}
    assert handle.run is None and handle.model is model
    train(model, batches(1))  # the watch of a finished run retires at the next forward; training goes on
    handle.remove()
    assert len(torchscope.open(db_path).graph_steps(1)) == 2


def test_a_deleted_watched_model_is_collected_while_the_run_lives(run):
    from torch.nn.modules import module as nn_module

    from torchscope.capture import registry

    model = TwinNet()
    handle = run.watch(model, every=1)
    train(model, batches(1))
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None and handle.model is None and not registry.watched
    torch.nn.Identity()(torch.zeros(1))  # the next module call takes the global hooks out
    assert not nn_module._global_forward_pre_hooks and not nn_module._global_forward_hooks
    handle.remove()
    assert run.status == "running" and flushed_store(run).graph_steps(run.id)["step"].tolist() == [0]


def test_distributed_data_parallel_on_two_gloo_processes_trains_identically_and_records_the_graph(tmp_path):
    db = tmp_path / "ddp.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)]), "GLOO_SOCKET_IFNAME": "lo"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(TESTS / "ddp_twins.py"), str(rank), str(tmp_path), str(db)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    # each rank: the watched DDP model ends bit-identical to the unwatched one, and the ranks agree
    assert [r["identical"] for r in results] == [True, True]
    assert results[0]["params"] == results[1]["params"]  # (buffers: each rank's own BatchNorm statistics)
    store = torchscope.open(db)
    run_id = int(store.runs()["id"].iloc[0])
    assert store.graph_steps(run_id)["step"].tolist() == [0, 1, 2]
    nodes, _ = store.graph(run_id)
    assert {"fc1", "bn", "block", "head"} <= set(nodes[nodes.kind == "module"]["name"])
    assert "grad:fc1.weight" in set(nodes["name"])
