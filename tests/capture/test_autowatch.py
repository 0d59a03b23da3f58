"""The pieces of ``torchscope run`` that need no subprocess: the printed-line grammar and who owns a parameter."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from torch import nn

from torchscope.capture.autowatch import parse_window
from torchscope.capture.module_tree import ModuleTree, modules_in_frames
from torchscope.capture.stdout_scalars import LineScalars, TeeStream, parse_pairs


@pytest.mark.parametrize(
    ("line", "pairs"),
    [
        ("epoch 3 | loss: 0.25, acc=91.5%", {"epoch": 3.0, "loss": 0.25, "acc": 91.5}),
        ("Train Epoch: 1 [640/60000 (1%)]\tLoss: 2.283", {"Epoch": 1.0, "Loss": 2.283}),
        ("Test set: Average loss: 0.0500, Accuracy: 9839/10000 (98%)", {"loss": 0.05}),
        ("lr=3e-4 val/loss -1.5E+02; grad_norm: .5)", {"lr": 3e-4, "val/loss": -150.0, "grad_norm": 0.5}),
        ("done. loss 0.5.", {"loss": 0.5}),
        ("saved /tmp/run-3.pt", {}),
        ("stopped after 3e5 steps", {"after": 3e5}),  # any word before a number: why it is only on when asked
        ("loss 1 loss 2", {"loss": 2.0}),
    ],
)
def test_printed_pairs(line: str, pairs: dict[str, float]) -> None:
    assert parse_pairs(line) == pairs


def test_nan_is_a_value() -> None:
    assert math.isnan(parse_pairs("loss: nan")["loss"])


def test_tee_writes_everything_unchanged_and_parses_complete_lines() -> None:
    out = io.StringIO()
    logged: list[tuple[dict[str, float], int]] = []
    step: list[int | None] = [None]
    lines = LineScalars(lambda values, at: logged.append((values, at)), lambda: step[0])
    tee = TeeStream(out, lines)
    print("lr 0.1", file=tee)  # before the first step: held
    tee.write("loss: 2.5\r")  # a progress bar redraws in place
    step[0] = 4
    tee.write("loss: 1.5\nacc")
    assert logged == [({"lr": 0.1}, 0), ({"loss": 2.5}, 0), ({"loss": 1.5}, 4)]
    tee.write("=0.9")
    tee.close_line()
    assert logged[-1] == ({"acc": 0.9}, 4)
    assert out.getvalue() == "lr 0.1\nloss: 2.5\rloss: 1.5\nacc=0.9"
    assert tee.getvalue() == out.getvalue()  # every other attribute is the wrapped stream's


class Holder(nn.Module):
    """No forward of its own: a generator and a discriminator side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.parts = nn.ModuleDict({"g": nn.Sequential(nn.Linear(2, 2)), "d": nn.Sequential(nn.Linear(2, 1))})


def test_roots_of_an_optimizers_parameters() -> None:
    tree = ModuleTree()
    try:
        model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        head_only = tree.trained_roots(model[2].parameters())
        holder = Holder()
        both = tree.trained_roots(holder.parameters())
        old = model[2]
        model[2] = nn.Linear(4, 3)  # a replaced child: the old one is no longer under the model
    finally:
        tree.remove()
    assert head_only == ([model], [])
    assert both[0] == [holder.parts["g"], holder.parts["d"]] and both[1] == []
    assert tree.trained_roots(old.parameters()) == ([old], [])
    assert tree.trained_roots(model[2].parameters()) == ([model], [])
    copied = copy.deepcopy(model)  # built after the tree was removed, and by copying: unknown to it
    roots, unknown = tree.trained_roots(copied.parameters())
    assert roots == [] and len(unknown) == len(list(copied.parameters()))
    assert modules_in_frames(None, unknown, ()) == [] and _found_here(copied, unknown) == [copied]


def _found_here(model: nn.Module, params: list[torch.Tensor]) -> list[nn.Module]:
    import sys

    return modules_in_frames(sys._getframe(), params, ())


@pytest.mark.parametrize(("text", "window"), [("10:13", (10, 13)), ("5", (5, 6)), ("0:1", (0, 1))])
def test_profile_window(text: str, window: tuple[int, int]) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["5:3", "3:3", "-1:2", "a:b", ""])
def test_bad_profile_window(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window(text)
