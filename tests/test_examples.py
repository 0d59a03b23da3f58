"""The example scripts run as a user would run them and leave what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
