"""``run.watch(model, step=fn)``: the step of each forward comes from a callable (how the framework integrations pass
their global step); None leaves a forward out."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import torchscope
from torchscope.errors import CaptureError


def test_captured_steps_are_what_the_callable_says(db_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    global_step = {"value": 0, "training": True}

    def step() -> int | None:
        return global_step["value"] if global_step["training"] else None

    with torchscope.init("callable", db=db_path, system_metrics=False) as run:
        run.watch(model, every=2, step=step)
        for value in range(5):
            global_step.update(value=value, training=True)
            for _ in range(2):  # two micro-batches per step: the first one is captured
                model(torch.randn(4, 3)).sum().backward()
            global_step["training"] = False
            with torch.no_grad():  # an evaluation forward at a step that would be captured: left out
                model(torch.randn(4, 3))
    stats = torchscope.open(db_path).tensor_stats(run.id)
    assert sorted(set(stats["step"])) == [0, 2, 4]
    assert set(stats[stats["role"] == "grad"]["step"]) == {0, 2, 4}  # each captured step ended with its backward


def test_a_step_that_is_neither_a_source_nor_callable_is_refused(run: torchscope.Run) -> None:
    with pytest.raises(CaptureError, match="'forward', 'log' or a callable"):
        run.watch(torch.nn.Linear(2, 2), step="optimizer")
