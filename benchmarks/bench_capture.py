"""Overhead of graph capture on a training step: no hooks vs idle hooks vs a captured step (stats mode).

Runs a small transformer and a small CNN on the CPU (or the GPU with --device cuda). The three variants are
interleaved round by round in one process, so drift of the machine hits them alike; each ratio is taken within a
round and the figure is the median over rounds. Targets (docs/capture.md): idle hooks <= 1.03x, captured step
<= 2x the uninstrumented step. The hooks are global while a watch is live, so the uninstrumented model pays for
them too in the paired ratio; the direct cost, measured on modules that do nothing against a process without
hooks and multiplied by the module calls of a forward, is printed below it.

    .venv/bin/python benchmarks/bench_capture.py [--rounds 30] [--steps 3] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import torchscope  # noqa: E402
from models import SmallCNN, TinyTransformer  # noqa: E402


def _workloads(device: str):
    torch.manual_seed(0)
    tokens = torch.randint(0, 256, (16, 64), device=device)

    def lm_loss(model):
        logits = model(tokens[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))

    images = torch.randn(32, 3, 32, 32, device=device)
    labels = torch.randint(0, 10, (32,), device=device)

    def cnn_loss(model):
        return F.cross_entropy(model(images), labels)

    return {
        "transformer d=128 L=2 (B=16, T=63)": (lambda: TinyTransformer(d=128, heads=4, layers=2, seq=64), lm_loss),
        "cnn 3 conv+bn (B=32, 32x32)": (SmallCNN, cnn_loss),
    }


def _step(model, opt, loss_fn, device: str) -> None:
    loss = loss_fn(model)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()


def bench(name: str, make, loss_fn, run, rounds: int, steps: int, device: str) -> dict[str, float]:
    base = make().to(device)
    models = {"none": base, "idle": copy.deepcopy(base), "captured": copy.deepcopy(base)}
    handles = [
        run.watch(models["idle"], every=10**9),  # step 0 is captured during warm-up, then never again
        run.watch(models["captured"], every=1),  # every step captured, stats mode, with gradients
    ]
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3) for k, m in models.items()}
    for key in models:  # warm-up: allocator, kernels, the idle watch's step 0
        for _ in range(2):
            _step(models[key], opts[key], loss_fn, device)
    run.flush()
    means: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for key, model in models.items():
            start = time.perf_counter()
            for _ in range(steps):
                _step(model, opts[key], loss_fn, device)
            means[key].append((time.perf_counter() - start) / steps)
        run.flush()  # keep the writer's backlog out of the next round
    for handle in handles:
        handle.remove()
    result = {k: statistics.median(v) for k, v in means.items()}
    # ratios are paired within a round (same machine state), then the median over rounds
    idle = statistics.median(i / n for i, n in zip(means["idle"], means["none"]))
    captured = statistics.median(c / n for c, n in zip(means["captured"], means["none"]))
    print(
        f"{name:38s} step {result['none'] * 1e3:7.2f} ms | idle hooks {idle:5.3f}x | "
        f"captured (stats+grads) {captured:5.2f}x ({result['captured'] * 1e3:7.2f} ms)"
    )
    return {"idle": idle, "captured": captured, "step": result["none"]}


def idle_hook_cost(run, calls: int = 20000) -> tuple[float, float]:
    """Seconds the idle hooks add to one non-captured forward of the watched root module, and to one call of any
    other module while a watch is live (torchscope's module hooks are global, a registry decides which modules are
    watched). Measured on modules that do nothing, against a module called before any watch existed, so that
    machine noise, which swamps a difference of microseconds in a whole step, cannot hide or invent it."""
    plain, other, watched = torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity()
    x = torch.zeros(1)

    def best_of(model) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                model(x)
            best = min(best, (time.perf_counter() - start) / calls)
        return best

    bare = best_of(plain)  # no watch yet: no global hook
    handle = run.watch(watched, every=10**9)
    watched(x)  # step 0 is captured; the rest are not
    root, unwatched = best_of(watched), best_of(other)
    handle.remove()
    return root - bare, unwatched - bare


def module_calls(model, loss_fn) -> int:
    """How many module calls one forward of ``model`` makes (the root included)."""
    from torch.nn.modules import module as nn_module

    count = [0]
    handle = nn_module.register_module_forward_pre_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    with torch.no_grad():
        loss_fn(model)
    handle.remove()
    return count[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on a shared VM one thread avoids OpenMP barrier stalls
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        run = torchscope.init("bench-capture", db=Path(tmp) / "bench.db")
        root, other = idle_hook_cost(run)
        print(f"idle hooks cost {root * 1e6:.1f} us per forward of the root module, "
              f"{other * 1e6:.2f} us per call of any other module while a watch is live")  # fmt: skip
        for name, (make, loss_fn) in _workloads(args.device).items():
            result = bench(name, make, loss_fn, run, args.rounds, args.steps, args.device)
            n = module_calls(make().to(args.device), loss_fn)
            cost = root + (n - 1) * other
            print(f"{'':38s} idle hooks by the direct cost ({n} module calls per forward): "
                  f"{1 + cost / result['step']:.5f}x")  # fmt: skip
        run.finish()


if __name__ == "__main__":
    main()
