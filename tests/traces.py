"""Real Kineto traces for tests, recorded here with torch.profiler on the CPU (no reference data needed)."""

from __future__ import annotations

from pathlib import Path

import orjson
import torch


def record_cpu_trace(path: Path, steps: int = 4, width: int = 32) -> Path:
    """Train a small MLP for ``steps`` profiled steps (shapes, memory and module stacks recorded) and write the
    Chrome trace to ``path`` (``.json``); returns ``path``."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    schedule = torch.profiler.schedule(wait=0, warmup=1, active=steps)
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], schedule=schedule, record_shapes=True, profile_memory=True,
        with_stack=True, on_trace_ready=lambda p: p.export_chrome_trace(str(path)),
    ) as prof:  # fmt: skip
        for _ in range(steps + 1):
            loss = model(torch.randn(16, width)).square().mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
            prof.step()
    return path


def trace_events(path: Path) -> tuple[dict, list]:
    """(top-level fields, events) of a trace written as plain JSON."""
    data = orjson.loads(path.read_bytes())
    return {k: v for k, v in data.items() if k != "traceEvents"}, data["traceEvents"]
