"""The model stays the user's model: watching changes nothing a training program can observe (issue 13).

Each test compares a watched model with an unwatched twin (same seed, same data, same RNG state) and expects the
same bits, or checks that what torch does with a module (save, copy, trace, script, export) works as without
torchscope. Compile, checkpointing, autocast, DDP: tests/capture/test_transparency_training.py.
"""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import torch

from runs import flushed_store
from twins import TwinNet, assert_same_state, batches, hook_counts, train, twins

from torchscope.errors import TorchscopeWarning

TESTS = Path(__file__).resolve().parents[1]


def _trained_pair(run, steps: int = 2):
    plain, watched = twins()
    data = batches(steps)
    train(plain, data)
    handle = run.watch(watched, every=1)
    train(watched, data)
    return plain, watched, handle


def test_save_load_pickle_and_deepcopy_of_a_watched_model_equal_the_unwatched_twin(run):
    plain, watched, handle = _trained_pair(run)
    buffer = io.BytesIO()
    torch.save(watched, buffer)  # raised "Can't pickle local object 'create_engine.<locals>.connect'"
    buffer.seek(0)
    copies = {
        "torch.load": torch.load(buffer, weights_only=False),
        "pickle": pickle.loads(pickle.dumps(watched)),
        "deepcopy": copy.deepcopy(watched),  # raised "cannot pickle 'module' object"
    }
    x = batches(1, seed=9)[0][0]
    plain.eval()
    expected = plain(x)
    for how, loaded in copies.items():
        assert type(loaded) is TwinNet, how
        assert_same_state(loaded, plain)
        assert hook_counts(loaded) == hook_counts(plain), how
        assert torch.equal(loaded.eval()(x), expected), how
    assert hook_counts(watched) == hook_counts(plain)  # also the live watched model, between captures
    captured = handle.steps_captured
    copies["deepcopy"].train()(x).sum().backward()  # a copy is a model of its own, not watched
    handle.remove()
    assert handle.steps_captured == captured == 2
    assert flushed_store(run).graph_steps(run.id)["step"].tolist() == [0, 1]


def test_state_dict_keys_and_values_equal_the_unwatched_twin_and_load_back(run):
    plain, watched, handle = _trained_pair(run)
    assert_same_state(watched, plain)
    fresh_plain, fresh_watched = twins(seed=5)
    with run.watch(fresh_watched, every=1):
        result = fresh_watched.load_state_dict(watched.state_dict())
        assert not result.missing_keys and not result.unexpected_keys
        fresh_plain.load_state_dict(plain.state_dict())
        assert_same_state(fresh_watched, fresh_plain)
        data = batches(2, seed=3)
        assert train(fresh_watched, data) == train(fresh_plain, data)
    assert_same_state(fresh_watched, fresh_plain)
    handle.remove()


BLOCK_TORCHSCOPE = """
import importlib.abc, sys

class NoTorchscope(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torchscope" or name.startswith("torchscope."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NoTorchscope())
"""

CHILD = """
sys.path.insert(0, {tests!r})
try:
    import torchscope  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("torchscope is importable in the child")
import torch
from twins import TwinNet, hook_counts

saved = torch.load({path!r}, weights_only=False)
model, x, expected, hooks = saved["model"], saved["x"], saved["expected"], saved["hooks"]
assert type(model) is TwinNet
assert hook_counts(model) == hooks, (hook_counts(model), hooks)
assert torch.equal(model.eval()(x), expected)
assert not any(name.startswith("torchscope") for name in sys.modules)
print("loaded without torchscope")
"""


def test_a_saved_watched_model_loads_in_a_process_where_torchscope_cannot_be_imported(run, tmp_path):
    plain, watched, handle = _trained_pair(run)
    x = batches(1, seed=9)[0][0]
    path = tmp_path / "checkpoint.pt"
    torch.save(
        {"model": watched, "x": x, "expected": plain.eval()(x), "hooks": hook_counts(plain)}, path
    )  # saved while the watch is live
    handle.remove()
    code = BLOCK_TORCHSCOPE + CHILD.format(tests=str(TESTS), path=str(path))
    # -I: no PYTHONPATH, no user site, no current directory on the path; the blocker hides an installed torchscope
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "loaded without torchscope"


def test_jit_trace_and_script_of_a_watched_model_give_its_outputs_without_a_capture_warning(run):
    plain, watched, handle = _trained_pair(run)
    plain.eval(), watched.eval()
    x = batches(1, seed=9)[0][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TorchscopeWarning)
        warnings.filterwarnings("ignore", message=".*is deprecated.*")  # torch's own notice about jit
        traced = torch.jit.trace(watched, x)
        scripted = torch.jit.script(watched)  # failed: "try blocks aren't supported" in torchscope's hook
        assert torch.equal(traced(x), plain(x)) and torch.equal(scripted(x), plain(x))
    assert run.dropped == 0
    handle.remove()
    # the run under the tracer is not recorded; the eager call jit.trace makes to check its trace is an ordinary
    # forward of the module and is recorded as step 2
    steps = flushed_store(run).graph_steps(run.id)
    assert steps["step"].tolist() == [0, 1, 2]


def test_torch_export_of_a_watched_model_runs_like_the_model(run):
    plain, watched, handle = _trained_pair(run)
    plain.eval(), watched.eval()
    x = batches(1, seed=9)[0][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TorchscopeWarning)
        exported = torch.export.export(watched, (x,))
    torch.testing.assert_close(exported.module()(x), plain(x), rtol=0, atol=1e-6)
    handle.remove()
    assert flushed_store(run).graph_steps(run.id)["step"].tolist() == [0, 1]
