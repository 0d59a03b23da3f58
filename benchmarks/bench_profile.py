"""Profiling overhead: a training loop under ``run.profile`` against ``torch.profiler`` alone, same settings.

"torch.profiler alone" is the usual set-up: the same schedule and options, each window written by
``torch.profiler.tensorboard_trace_handler``. Both loops run alternately in this process (best of ``--repeat``);
prints the mean step time of each, their ratio (target <= 1.10), and an unprofiled loop for reference.

    .venv/bin/python benchmarks/bench_profile.py [--model cnn|tiny] [--steps 60] [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

import torchscope

SETTINGS = {"wait": 1, "warmup": 1, "active": 3, "repeat": 0}
OPTIONS = {"record_shapes": True, "profile_memory": False, "with_stack": False}


def make_step(kind: str = "cnn") -> Callable[[], None]:
    """A training step: ``cnn`` (tens of ms on a CPU core) or ``tiny`` (a ~2 ms MLP step: the worst case, where
    storing each window in the background weighs most against the step itself)."""
    torch.manual_seed(0)
    if kind == "tiny":
        mlp = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
        mlp_opt = torch.optim.SGD(mlp.parameters(), lr=0.01)
        mx, my = torch.randn(32, 64), torch.randint(0, 10, (32,))

        def tiny_step() -> None:
            torch.nn.functional.cross_entropy(mlp(mx), my).backward()
            mlp_opt.step()
            mlp_opt.zero_grad()

        return tiny_step
    # a small CNN whose step takes tens of ms on a CPU core, like a real (if small) training step
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(64 * 16 * 16, 10),
    )  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    return step


def loop(step: Callable[[], None], steps: int, tick: Callable[[], None]) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step()
        tick()
    return (time.perf_counter() - started) / steps


def torch_alone(step: Callable[[], None], steps: int, tmp: Path) -> float:
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities, schedule=schedule(**SETTINGS), on_trace_ready=tensorboard_trace_handler(str(tmp)),
                 **OPTIONS) as prof:  # fmt: skip
        return loop(step, steps, prof.step)


def torchscope_profile(step: Callable[[], None], steps: int, db: Path) -> float:
    run = torchscope.init("bench", db=db)
    with run.profile(**SETTINGS, **OPTIONS) as prof:
        per_step = loop(step, steps, prof.step)
    run.finish()  # storing what is still queued happens after the loop, off the measured time
    return per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: steadier on a shared VM)")
    parser.add_argument("--model", choices=("cnn", "tiny"), default="cnn")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    step = make_step(args.model)
    for _ in range(5):
        step()
    best = {"none": float("inf"), "torch": float("inf"), "torchscope": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            best["none"] = min(best["none"], loop(step, args.steps, lambda: None))
            best["torch"] = min(best["torch"], torch_alone(step, args.steps, Path(tmp) / f"tb{i}"))
            best["torchscope"] = min(best["torchscope"], torchscope_profile(step, args.steps, Path(tmp) / f"ts{i}.db"))
        with torchscope.open(Path(tmp) / "ts0.db") as store:
            windows = len(store.profiles())
            events = int(store.profiles()["event_count"].sum())
    print(f"{args.model} model, step time, {args.steps} steps, schedule {SETTINGS}, {OPTIONS}:")
    print(f"  no profiler          {best['none'] * 1e3:8.2f} ms")
    print(f"  torch.profiler alone {best['torch'] * 1e3:8.2f} ms")
    print(f"  torchscope profile   {best['torchscope'] * 1e3:8.2f} ms   ({windows} windows, {events} events stored)")
    print(f"  ratio torchscope / torch.profiler: {best['torchscope'] / best['torch']:.3f} (target <= 1.10)")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} with {args.threads} intra-op threads, "
          f"cuda={torch.cuda.is_available()}")  # fmt: skip


if __name__ == "__main__":
    main()
