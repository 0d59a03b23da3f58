"""A store whose every user-chosen name is markup that runs script when a page renders it as HTML.

Run, model, module, tag, op and kernel names all carry :data:`HOSTILE`; a page that renders any of them as HTML sets
``window.__x``. Fixtures are code: a real CPU training run with ``torch.profiler``, and a small Kineto trace (the
CPU has no kernels to record) written by the test and imported.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import orjson
import torch
from torch import nn

import torchscope
from torchscope.io.importing import import_path

HOSTILE = "<img src=x onerror=__x=1>"
"""No dot in it, so it is also a valid ``nn.Module`` attribute name; ``__x=1`` sets ``window.__x``."""
BOLD = "<b>bold</b>"
"""Markup that does nothing harmful, but shows whether a chart renders names as text or as its own HTML."""

RUN_A, RUN_B = f"{HOSTILE} run A", f"{HOSTILE} run B"
TAG = f"{HOSTILE}/loss {BOLD}"
MODEL = f"{HOSTILE} model"
OP = f"{HOSTILE} op {BOLD}"
KERNEL = f"void {HOSTILE}_kernel(float*)"
IMPORTED = f"{HOSTILE} imported"
THREAD = f"{HOSTILE} thread"


def _train(db: Path, name: str) -> int:
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("fc", nn.Linear(4, 8))
    model.add_module(HOSTILE, nn.ReLU())
    model.add_module("head", nn.Linear(8, 2))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*acc_events.*")
        with torchscope.init(name=name, db=db, config={HOSTILE: HOSTILE}, system_metrics=False) as run:
            run.watch(model, every=1, name=MODEL)
            with run.profile(wait=0, warmup=1, active=2) as prof:
                for step in range(3):
                    with torch.profiler.record_function(OP):
                        loss = model(torch.randn(3, 4)).pow(2).mean()
                    loss.backward()
                    run.log({TAG: float(loss.detach())}, step=step)
                    prof.step()
    return run.id


def _trace(path: Path) -> Path:
    """A one-step Kineto trace: the hostile op launches the hostile kernel."""
    events = [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": THREAD}},
        {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": 1, "tid": 1, "ts": 100.0, "dur": 50.0},
        {"ph": "X", "cat": "cpu_op", "name": OP, "pid": 1, "tid": 1, "ts": 105.0, "dur": 20.0,
         "args": {"External id": 7}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 110.0, "dur": 5.0,
         "args": {"correlation": 1, "External id": 7}},
        {"ph": "X", "cat": "kernel", "name": KERNEL, "pid": 0, "tid": 7, "ts": 120.0, "dur": 12.0,
         "args": {"device": 0, "stream": 7, "correlation": 1, "External id": 7, "grid": [1, 1, 1],
                  "block": [32, 1, 1]}},
    ]  # fmt: skip
    path.write_bytes(orjson.dumps({"traceEvents": events}))
    return path


def hostile_store(db: Path, tmp: Path) -> dict[str, int]:
    """Fill ``db``: two trained runs and one imported trace. Returns their ids and their profiles' ids."""
    a, b = _train(db, RUN_A), _train(db, RUN_B)
    imported = import_path(db, _trace(tmp / "hostile.json"), name=IMPORTED)
    with torchscope.open(db) as store:
        profile_a = int(store.profiles(a)["id"].iloc[0])
        profile_b = int(store.profiles(b)["id"].iloc[0])
    return {"a": a, "b": b, "imported": imported.run_id, "profile_a": profile_a, "profile_b": profile_b,
            "profile_imported": int(imported.profiles[0]["id"])}  # fmt: skip
