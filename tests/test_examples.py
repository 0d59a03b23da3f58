"""The example scripts run as a user would run them and leave what their docstrings promise."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

import torchscope

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=300)


def test_find_first_nan_names_the_overflowing_exp(db_path: Path) -> None:
    result = _run("find_first_nan.py", "--db", str(db_path), "--steps", "14", "--blow-up-at", "12")
    assert result.returncode == 0, result.stderr
    store = torchscope.open(db_path)
    run_id = int(store.runs()["id"].iloc[0])
    first = store.anomalies(run_id).iloc[0]
    line = next(i for i, text in enumerate((EXAMPLES / "find_first_nan.py").read_text().splitlines(), 1) if "# <overflow>" in text)
    assert (first["step"], first["phase"], first["op"], first["module"], first["line"]) == (
        12, "forward", "torch.exp", "blocks.1", line,
    )  # fmt: skip
    assert f"torch.exp in blocks.1 at {first['file']}:{line}" in result.stderr


def test_profile_training_prints_the_breakdown_it_stored(db_path: Path) -> None:
    result = _run("profile_training.py", "--db", str(db_path))
    assert result.returncode == 0, result.stderr
    store = torchscope.open(db_path)
    profiles = store.profiles()
    assert len(profiles) == 1
    steps = store.step_breakdown(int(profiles["id"].iloc[0]))
    assert len(steps) == 3
    assert "aten::convolution" in result.stdout or "aten::conv2d" in result.stdout


# -- real training scripts, at a tiny size, with watch and profile attached ------------------------------------------

WLM_TINY = ["--sentences", "300", "--emsize", "16", "--nhid", "16", "--nlayers", "1", "--nhead", "2", "--bptt", "8",
            "--batch-size", "4", "--epochs", "2", "--max-batches", "8", "--watch-every", "10",
            "--threads", "1"]  # fmt: skip
"""8 training batches per epoch, then 3 validation batches (the 30 validation sentences make 22 rows of 10 words):
forwards 0-7 train, 8-10 validate, 11-18 train, 19-21 validate; every=10 captures forwards 0, 10 and 20."""

HIDDEN_TORCHSCOPE_LOAD = """
import hashlib, json, sys

class HideTorchscope:
    def find_spec(self, name, path=None, target=None):
        if name == "torchscope" or name.startswith("torchscope."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
        return None

sys.meta_path.insert(0, HideTorchscope())
try:
    import torchscope
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("torchscope is still importable")
sys.path.insert(0, sys.argv[1])  # examples/: language_models
import torch

model = torch.load(sys.argv[2], weights_only=False).eval()
tokens = torch.arange(16).remainder(model.ntoken).view(8, 2)
with torch.no_grad():
    out = model(tokens) if type(model).__name__ == "TransformerModel" else model(tokens, model.init_hidden(2))[0]
digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in model.state_dict().values())).hexdigest()
print(json.dumps({"class": type(model).__name__, "digest": digest, "out": list(out.shape),
                  "torchscope_loaded": any(m.split(".")[0] == "torchscope" for m in sys.modules)}))
"""


def _digest(model: torch.nn.Module) -> str:
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in model.state_dict().values())).hexdigest()


def _steps_by_tag(store: torchscope.Store, run_id: int, tags: list[str]) -> dict[str, list[int]]:
    scalars = store.scalars(run_id, tags=tags)
    return {tag: sorted(int(s) for s in scalars.loc[scalars["tag"] == tag, "step"]) for tag in tags}


def _assert_watched_and_profiled(store: torchscope.Store, run_id: int, modules: set[str], op: str) -> None:
    """The run holds the graph of a training step with the model's modules, its tensor statistics (values and
    gradients), and one profile window of three steps whose operator table has ``op``."""
    nodes, edges = store.graph(run_id, step=0)
    assert len(edges) > 0
    assert modules <= set(nodes.loc[nodes["kind"] == "module", "name"])
    stats = store.tensor_stats(run_id, step=0)
    assert set(stats["role"]) == {"value", "grad"}
    profiles = store.profiles(run_id)
    assert len(profiles) == 1
    profile_id = int(profiles["id"].iloc[0])
    assert len(store.step_breakdown(profile_id)) == 3
    assert op in set(store.op_table(profile_id)["name"])


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_word_language_model_checkpoints_load_without_torchscope_and_the_run_is_stored(
    model: str, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save = tmp_path / "checkpoints"
    result = _run("word_language_model.py", "--model", model, "--db", str(db_path), "--save", str(save), *WLM_TINY)
    assert result.returncode == 0, result.stderr
    assert "| end of training | test loss" in result.stdout

    store = torchscope.open(db_path)
    runs = store.runs()
    assert (runs["name"].tolist(), runs["status"].tolist()) == ([f"wlm-{model}"], ["finished"])
    run_id = int(runs["id"].iloc[0])
    assert store.graph_steps(run_id)["step"].tolist() == [0, 10, 20]
    modules = {
        "lstm": {"encoder", "drop", "rnn", "decoder"},
        "transformer": {"encoder", "pos_encoder", "transformer_encoder.layers.0.self_attn", "decoder"},
    }[model]
    _assert_watched_and_profiled(store, run_id, modules, "aten::lstm" if model == "lstm" else "aten::addmm")
    assert _steps_by_tag(store, run_id, ["train/loss", "train/lr", "valid/loss", "valid/ppl", "test/loss"]) == {
        "train/loss": list(range(16)), "train/lr": list(range(16)),
        "valid/loss": [7, 15], "valid/ppl": [7, 15], "test/loss": [15],
    }  # fmt: skip

    # the whole-model checkpoints load here, carry nothing of torchscope, and load where torchscope is not installed
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import language_models

    expected = language_models.TransformerModel if model == "transformer" else language_models.RNNModel
    for name in ("last.pt", "best.pt"):
        assert b"torchscope" not in (save / name).read_bytes()
        assert type(torch.load(save / name, weights_only=False)) is expected
    best = torch.load(save / "best.pt", weights_only=False)
    hidden = subprocess.run(
        [sys.executable, "-I", "-c", HIDDEN_TORCHSCOPE_LOAD, str(EXAMPLES), str(save / "best.pt")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert hidden.returncode == 0, hidden.stderr
    out = [8, 2, best.ntoken] if model == "transformer" else [16, best.ntoken]
    assert json.loads(hidden.stdout) == {
        "class": expected.__name__, "digest": _digest(best), "out": out, "torchscope_loaded": False,
    }  # fmt: skip


DDP_TINY = ["--samples", "512", "--batch-size", "32", "--width", "16", "--epochs", "2", "--watch-every", "10"]
"""512 points over 2 ranks in batches of 32: 8 training batches per rank and epoch, then 1 validation batch
(128 points, 64 per rank); every=10 captures forwards 0 and 10, both training steps."""


def test_ddp_train_records_each_rank_and_saves_a_plain_state_dict(db_path: Path, tmp_path: Path) -> None:
    save = tmp_path / "ddp.pt"
    result = _run("ddp_train.py", "--db", str(db_path), "--save", str(save), "--world-size", "2", *DDP_TINY)
    assert result.returncode == 0, result.stderr

    store = torchscope.open(db_path)
    runs = store.runs().sort_values("name")
    assert runs["name"].tolist() == ["ddp-rank0", "ddp-rank1"]
    assert runs["status"].tolist() == ["finished", "finished"]
    assert [(c["rank"], c["world_size"]) for c in runs["config"]] == [(0, 2), (1, 2)]
    assert runs["rank"].tolist() == [0, 1] and runs["world_size"].tolist() == [2, 2]  # from the process group
    assert runs["job_id"].nunique() == 1 and runs["job_id"].iloc[0].startswith("ddp-")  # the script's job id
    profile = int(store.profiles(int(runs["id"].iloc[0]))["id"].iloc[0])
    assert store.rank_group(profile)["rank"].tolist() == [0, 1]  # the two ranks' windows: one group
    validation = []
    for run_id in runs["id"].astype(int):
        assert store.graph_steps(run_id)["step"].tolist() == [0, 10]
        _assert_watched_and_profiled(store, run_id, {"proj", "blocks.0", "blocks.1.1", "head"}, "c10d::allreduce_")
        assert _steps_by_tag(store, run_id, ["train/loss", "val/loss", "val/accuracy"]) == {
            "train/loss": list(range(16)), "val/loss": [7, 15], "val/accuracy": [7, 15],
        }  # fmt: skip
        validation.append(store.scalars(run_id, tags=["val/loss", "val/accuracy"]).sort_values(["tag", "step"]))
    assert validation[0]["value"].tolist() == validation[1]["value"].tolist()  # all-reduced: the same on every rank

    ddp_train = _import_example("ddp_train")
    state = torch.load(save, weights_only=True)
    assert not any(key.startswith("module.") for key in state)
    model = ddp_train.Classifier(width=16)
    model.load_state_dict(state)  # strict: every key, every shape
    assert _digest(model) == hashlib.sha256(b"".join(t.numpy().tobytes() for t in state.values())).hexdigest()


def _import_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
