"""``torchscope run SCRIPT``: unmodified example scripts run through the real console script, recorded, unchanged."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import torchscope

EXE = shutil.which("torchscope", path=os.path.dirname(sys.executable)) or "torchscope"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MNIST = str(EXAMPLES / "train_mnist_like.py")
GAN = str(EXAMPLES / "train_gan_2d.py")


def _torchscope(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=240)


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=240)


def _only_run(store: torchscope.Store) -> dict[str, object]:
    runs = store.runs()
    assert len(runs) == 1
    return runs.iloc[0].to_dict()


def _steps(store: torchscope.Store, run_id: int, tag: str) -> list[int]:
    scalars = store.scalars(run_id, tags=[tag])
    return [int(s) for s in scalars["step"]]


# 320 samples in batches of 32: 10 optimizer steps per epoch, 20 in all; the loss printed every 5 steps
NET_KEYS = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight",
            "fc2.bias"]  # fmt: skip
"""The keys of ``Net().state_dict()``: a checkpoint saved under ``torchscope run`` has exactly these."""
MNIST_ARGS = ["--epochs", "2", "--train-size", "320", "--log-every", "5"]


def test_mnist_like_script_is_watched_profiled_and_parsed_and_trains_exactly_as_under_python(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    plain = _python(MNIST, *MNIST_ARGS, "--save-dir", "ck", cwd=tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    db = tmp_path / "runs.db"
    result = _torchscope("run", "--db", str(db), "--every", "5", "--profile-steps", "3:5", "--parse-stdout",
                         MNIST, *MNIST_ARGS, "--save-dir", "ck", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    # the script's output reaches the terminal unchanged, and the training is the same to the last bit
    assert result.stdout == plain.stdout
    for epoch in (1, 2):
        recorded = torch.load(tmp_path / "ck" / f"epoch{epoch}.pt")
        reference = torch.load(tmp_path / "plain" / "ck" / f"epoch{epoch}.pt")
        assert list(recorded) == list(reference) == NET_KEYS
        assert all(torch.equal(recorded[k], reference[k]) for k in recorded)

    store = torchscope.open(db)
    run = _only_run(store)
    run_id = int(run["id"])
    assert (run["name"], run["status"]) == ("train_mnist_like", "finished")
    assert run["config"]["script"] == MNIST and run["config"]["args"][:2] == ["--epochs", "2"]
    assert f"torchscope serve {db}" in result.stderr and f"http://127.0.0.1:8050/run/{run_id}" in result.stderr
    assert "run 1 finished: 20 optimizer steps, watched Net" in result.stderr

    # one optimizer/lr per optimizer step: 0.003, then 0.0021 after StepLR's first step
    lr = store.scalars(run_id, tags=["optimizer/lr"])
    assert [int(s) for s in lr["step"]] == list(range(20))
    assert list(lr["value"]) == pytest.approx([3e-3] * 10 + [3e-3 * 0.7] * 10)

    # captured steps are optimizer steps; step 10 comes right after the no_grad evaluation: its training forward
    # (with gradients) is the one captured
    assert [int(s) for s in store.graph_steps(run_id)["step"]] == [0, 5, 10, 15]
    assert set(store.graph_steps(run_id)["model"]) == {"Net"}
    nodes, edges = store.graph(run_id, step=0)
    assert {"conv1", "conv2", "dropout", "fc1", "fc2"} <= set(nodes.loc[nodes["kind"] == "module", "name"])
    assert len(edges) > 0
    assert set(store.tensor_stats(run_id, step=10)["role"]) == {"value", "grad"}

    # the profile window holds exactly optimizer steps 3 and 4
    profiles = store.profiles(run_id)
    assert len(profiles) == 1
    profile = profiles.iloc[0]
    assert (int(profile["step_first"]), int(profile["step_last"]), int(profile["step_count"])) == (3, 4, 2)
    assert [int(s) for s in store.step_breakdown(int(profile["id"]))["step"]] == [3, 4]

    # every printed number is a scalar at the step it was printed after (the script's "step 5" is step index 4)
    expected: dict[str, list[tuple[int, float]]] = {}
    for line in result.stdout.splitlines():
        if m := re.fullmatch(r"epoch (\d) step (\d+) loss: (\S+) lr=(\S+)", line):
            step = int(m[2]) - 1
            for tag, value in (("epoch", m[1]), ("step", m[2]), ("loss", m[3]), ("lr", m[4])):
                expected.setdefault(tag, []).append((step, float(value)))
        elif m := re.fullmatch(r"epoch (\d) val_loss: (\S+) val_acc: (\S+)%", line):
            step = 10 * int(m[1]) - 1
            for tag, value in (("epoch", m[1]), ("val_loss", m[2]), ("val_acc", m[3])):
                expected.setdefault(tag, []).append((step, float(value)))
    assert len(expected["loss"]) == 4 and len(expected["val_acc"]) == 2
    for tag, points in expected.items():
        stored = store.scalars(run_id, tags=[tag])
        assert sorted(zip(stored["step"].astype(int), stored["value"])) == sorted(points), tag
    assert {t for t in store.tags(run_id) if not t.startswith("sys/")} == {"optimizer/lr", *expected}


def test_exit_code_of_the_script_is_the_commands(tmp_path: Path) -> None:
    result = _torchscope("run", "--db", "runs.db", MNIST, "--epochs", "1", "--train-size", "64", "--log-every",
                         "100", "--min-accuracy", "101", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 3
    assert "is below --min-accuracy 101" in result.stderr
    run = _only_run(torchscope.open(tmp_path / "runs.db"))
    assert (run["status"], run["error"]) == ("failed", "exit code 3")
    assert list(torch.load(tmp_path / "checkpoints" / "epoch1.pt")) == NET_KEYS


SCRIPT_ENDINGS = {
    "falls_off_the_end": ("pass", 0, None, "finished", None),
    "sys_exit_none": ("sys.exit()", 0, None, "finished", None),
    "sys_exit_4": ("raise SystemExit(4)", 4, None, "failed", "exit code 4"),
    "sys_exit_message": ("sys.exit('disk full')", 1, "disk full\n", "failed", "exit code 1"),
}


@pytest.mark.parametrize("ending", SCRIPT_ENDINGS)
def test_script_ends_as_under_python(ending: str, tmp_path: Path) -> None:
    statement, code, stderr_tail, status, error = SCRIPT_ENDINGS[ending]
    script = tmp_path / "ending.py"
    script.write_text(f"import sys\nprint('working')\n{statement}\n")
    plain = _python(str(script), cwd=tmp_path)
    result = _torchscope("run", "--db", "runs.db", "--system-metrics", "0", str(script), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout) == (code, "working\n")
    if stderr_tail:
        assert plain.stderr == stderr_tail
        assert stderr_tail in result.stderr
    run = _only_run(torchscope.open(tmp_path / "runs.db"))
    assert (run["status"], run["error"]) == (status, error)


def test_uncaught_exception_prints_the_scripts_traceback_and_exits_1(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text("def load(path):\n    raise ValueError(f'no data at {path}')\n\nload('/data')\n")
    plain = _python(str(script), cwd=tmp_path)
    result = _torchscope("run", "--db", "runs.db", "--system-metrics", "0", str(script), cwd=tmp_path)
    assert result.returncode == plain.returncode == 1
    traceback = result.stderr[result.stderr.index("Traceback") :]
    # the same traceback as Python's: the script's frames only, not torchscope's or runpy's
    expected = plain.stderr.splitlines()
    assert len(expected) == 6 and traceback.splitlines()[: len(expected)] == expected
    run = _only_run(torchscope.open(tmp_path / "runs.db"))
    assert (run["status"], run["error"]) == ("failed", "ValueError: no data at /data")


def test_script_sees_argv_main_and_its_folder_as_under_python(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "helper.py").write_text("VALUE = 42\n")
    (folder / "show.py").write_text(textwrap.dedent("""
        import json, sys
        import helper  # a module beside the script
        print(json.dumps({"argv": sys.argv, "name": __name__, "path0": sys.path[0], "file": __file__,
                          "main": sys.modules["__main__"].__dict__.get("helper") is helper, "value": helper.VALUE}))
    """))  # fmt: skip
    args = [str(folder / "show.py"), "--lr", "0.1", "-v", "data dir"]
    plain = _python(*args, cwd=tmp_path)
    result = _torchscope("run", "--db", "runs.db", "--system-metrics", "0", *args, cwd=tmp_path)
    assert result.returncode == plain.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(plain.stdout) == {
        "argv": args, "name": "__main__", "path0": str(folder), "file": str(folder / "show.py"), "main": True,
        "value": 42,
    }  # fmt: skip


def test_module_runs_as_under_python_m(tmp_path: Path) -> None:
    (tmp_path / "trainer.py").write_text("import sys\nprint(__name__, sys.argv[1:])\n")
    result = _torchscope("run", "--db", "runs.db", "--system-metrics", "0", "-m", "trainer", "--epochs", "2",
                         cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "__main__ ['--epochs', '2']\n"
    assert _only_run(torchscope.open(tmp_path / "runs.db"))["name"] == "trainer"


def test_gan_watches_both_trained_models_and_not_the_averaged_copy(tmp_path: Path) -> None:
    result = _torchscope("run", "--db", "runs.db", "--every", "10", "--parse-stdout", GAN, "--steps", "20",
                         "--log-every", "10", "--out", "gan.pt", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    store = torchscope.open(tmp_path / "runs.db")
    run_id = int(_only_run(store)["id"])
    assert set(store.graph_steps(run_id)["model"]) == {"Generator", "Discriminator"}
    # each optimizer's steps: 20 each; the run's step is the most of them
    assert _steps(store, run_id, "optimizer/lr") == _steps(store, run_id, "optimizer2/lr") == list(range(20))
    printed = [dict(kv.split("=") for kv in line.split()[2:]) for line in result.stdout.splitlines()]
    assert [float(p["g_loss"]) for p in printed] == list(store.scalars(run_id, tags=["g_loss"])["value"])
    assert _steps(store, run_id, "g_loss") == [9, 19]
    checkpoint = torch.load(tmp_path / "gan.pt")
    assert list(checkpoint) == ["generator", "discriminator", "ema"]
    assert list(checkpoint["generator"]) == list(checkpoint["ema"]) == [
        "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.4.weight", "net.4.bias",
    ]  # fmt: skip


def test_watch_picks_modules_by_class_name(tmp_path: Path) -> None:
    result = _torchscope("run", "--db", "runs.db", "--watch", "Generator", "--every", "5", GAN, "--steps", "10",
                         "--log-every", "100", "--out", "gan.pt", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    store = torchscope.open(tmp_path / "runs.db")
    run_id = int(_only_run(store)["id"])
    # the generator and its averaged copy are both Generators, but only one was built (the copy is deepcopied)
    assert set(store.graph_steps(run_id)["model"]) == {"Generator"}
    assert "watching Generator (--watch Generator)" in result.stderr


def test_missing_script_or_bad_window_is_one_line_on_stderr(tmp_path: Path) -> None:
    missing = _torchscope("run", "--db", "runs.db", "nope.py", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == "torchscope: error: no script at nope.py: give the path of a Python file (or -m MODULE)\n"
    window = _torchscope("run", "--profile-steps", "5:3", MNIST, cwd=tmp_path)
    assert window.returncode == 2
    assert "--profile-steps" in window.stderr and "0 <= FIRST < END" in window.stderr
    assert not (tmp_path / "runs.db").exists() and not (tmp_path / "torchscope.db").exists()


SELF_PROFILING = """
import torch
torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
windows = []
def ready(prof):
    names = {e.key for e in prof.key_averages()}
    windows.append((prof.step_num, "ProfilerStep*" in names, "aten::addmm" in names))
schedule = torch.profiler.schedule(wait=1, warmup=1, active=2, repeat=1)
with torch.profiler.profile(schedule=schedule, on_trace_ready=ready) as prof:
    for _ in range(6):
        model(torch.randn(8, 4)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        prof.step()
print(windows)
"""


def test_a_script_that_profiles_itself_keeps_its_profiler(tmp_path: Path) -> None:
    script = tmp_path / "self_profiling.py"
    script.write_text(SELF_PROFILING)
    plain = _python(str(script), cwd=tmp_path)
    result = _torchscope("run", "--db", "runs.db", "--profile-steps", "2:4", str(script), cwd=tmp_path)
    assert result.returncode == plain.returncode == 0, result.stderr
    assert result.stdout == plain.stdout == "[(4, True, True)]\n"
    assert "the script is profiling at step 1: --profile-steps 2:4 skipped" in result.stderr
    assert "TorchscopeWarning" not in result.stderr
    store = torchscope.open(tmp_path / "runs.db")
    assert store.profiles().empty
    assert _steps(store, int(_only_run(store)["id"]), "optimizer/lr") == list(range(6))
