"""Training processes the tests start as subprocesses (``python tests/procs.py KIND DB ...``). Fixtures are code."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import torchscope

PATH = Path(__file__).resolve()
"""This file, to start as a script; its folder holds the tests' helper modules."""


def value_at(step: int, tag: int = 0) -> float:
    """The exact value logged at ``step`` for tag number ``tag`` (tests recompute it to check the store)."""
    return step * 0.5 + tag / 7


def tiny_training_step() -> Callable[[], None]:
    """One step of a small MLP on a fixed batch: real torch work, which (like any training loop) spends its time
    in torch kernels that let other threads run, so torchscope's writer thread gets its turns."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 32), torch.randn(64, 1)

    def step() -> None:
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def log_until_killed(db: str) -> None:
    """Train and log one step after another, printing ``step wall_time`` after each log call, until killed."""
    train = tiny_training_step()
    run = torchscope.init(name="doomed", db=db)
    print(f"run {run.id}", flush=True)
    step = 0
    while True:
        train()
        run.log({"v": value_at(step)}, step=step)
        print(f"{step} {time.time()}", flush=True)
        step += 1


def log_live(db: str) -> None:
    """Log ``train/loss`` every 20 ms until killed, printing ``step wall_time`` after each; ``train/bad`` is NaN at
    step 40; system metrics every second."""
    run = torchscope.init(name="live", db=db, config={"lr": 0.25}, system_metrics=1.0)
    print(f"run {run.id}", flush=True)
    step = 0
    while True:
        data = {"train/loss": value_at(step)}
        if step % 10 == 0:
            data["train/bad"] = float("nan") if step == 40 else 1.0
        run.log(data, step=step)
        print(f"{step} {time.time()}", flush=True)
        step += 1
        time.sleep(0.02)  # a training step


def log_steps(db: str, name: str, steps: int) -> None:
    """Log ``steps`` steps of four tags, then finish."""
    with torchscope.init(name=name, db=db) as run:
        for step in range(steps):
            run.log({f"t{i}": value_at(step, i) for i in range(4)}, step=step)
            if step % 100 == 0:
                sum(range(20000))  # some work between bursts, so both processes commit many times
    print(f"dropped {run.dropped}", flush=True)


def exit_without_finish(db: str, crash: str) -> None:
    """Log, never call ``finish``, and leave the interpreter normally or through an uncaught exception."""
    run = torchscope.init(name=f"exit-{crash}", db=db)
    for step in range(1000):
        run.log({"v": value_at(step)}, step=step)
    if crash == "raise":
        raise RuntimeError("training blew up")


if __name__ == "__main__":
    kind, db, *rest = sys.argv[1:]
    if kind == "until-killed":
        log_until_killed(db)
    elif kind == "exit":
        exit_without_finish(db, rest[0])
    elif kind == "live":
        log_live(db)
    elif kind == "steps":
        log_steps(db, rest[0], int(rest[1]))
    else:
        raise SystemExit(f"unknown kind {kind}")
