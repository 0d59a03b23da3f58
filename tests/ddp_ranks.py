"""One rank of a small DistributedDataParallel job on CPU (gloo) that records into one shared store.

``python tests/ddp_ranks.py RANK WORLD DIR DB STEPS SLOW_RANK PROFILE``: rendezvous through a file in DIR; every rank
opens a run in DB (job id from ``$TORCHSCOPE_JOB_ID``; rank and world size from the process group), logs ``STEPS``
steps of ``SCALARS`` scalars each (values from :func:`value_at`), and watches its model every step. Then, with
PROFILE ``file``, it profiles 3 steps with ``torch.profiler`` (CPU) into its own trace ``DIR/traces/rank-RANK.json``
(as a job's ranks do with ``export_chrome_trace``); with ``live``, the same window goes into the store through
``run.profile``; with ``none`` nothing is profiled. Rank ``SLOW_RANK`` does extra work in profiled step 1 (a
straggler); the others wait for it in the gradient all-reduce.

Prints ``run <id>`` first; exits 0 when everything was stored.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torchscope

PATH = Path(__file__).resolve()

SCALARS = 5
"""Tags each rank logs per step: ``t0`` .. ``t4``."""
PROFILED = 3
"""Steps in the profiler's active window."""


def value_at(rank: int, step: int, tag: int) -> float:
    """The exact value rank ``rank`` logs at ``step`` under tag ``t<tag>``."""
    return rank * 1000 + step + tag / 8


def start_job(folder: Path, db: str, world: int, *, job: str, steps: int, mode: str, slow_rank: int = 1) -> list[str]:
    """Run ``world`` ranks of this script at once (the tests' helper); returns each rank's stderr after asserting
    that every rank exited 0."""
    tests = PATH.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)]), "GLOO_SOCKET_IFNAME": "lo",
           "TORCHSCOPE_JOB_ID": job, "PYTHONWARNINGS": "always"}  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, str(PATH), str(rank), str(world), str(folder), db, str(steps), str(slow_rank), mode],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for rank in range(world)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    failed = [f"rank {rank} exited {proc.returncode}:\n{err[-3000:]}"
              for rank, (proc, (_out, err)) in enumerate(zip(procs, outputs, strict=True)) if proc.returncode]  # fmt: skip
    assert not failed, "\n".join(failed)  # every failed rank: one crash shows in the others as a closed connection
    return [err for _out, err in outputs]


def busy(ms: float) -> None:
    """Real CPU work (matrix products) for about ``ms`` milliseconds, recorded as ops in the trace."""
    import time

    import torch

    a = torch.randn(128, 128)
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        a = torch.tanh(a @ a)


def main(rank: int, world: int, folder: Path, db: str, steps: int, slow_rank: int, mode: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    x, y = torch.randn(32, 16, generator=torch.Generator().manual_seed(rank)), torch.randn(32, 4)
    run = torchscope.init("ranks", db=db, system_metrics=False)
    print(f"run {run.id}", flush=True)
    run.watch(model, every=1)
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01)

    def train_step(slow: bool = False) -> None:
        loss = torch.nn.functional.mse_loss(ddp(x), y)
        optimizer.zero_grad()
        if slow:
            busy(60)
        loss.backward()  # the gradient all-reduce (gloo) waits for the slowest rank
        optimizer.step()

    for step in range(steps):
        train_step()
        run.log({f"t{tag}": value_at(rank, step, tag) for tag in range(SCALARS)}, step=step)

    if mode != "none":
        traces = folder / "traces"
        traces.mkdir(exist_ok=True)
        export = lambda p: p.export_chrome_trace(str(traces / f"rank-{rank}.json"))  # noqa: E731
        schedule = torch.profiler.schedule(wait=0, warmup=1, active=PROFILED, repeat=1)
        cpu = [torch.profiler.ProfilerActivity.CPU]
        with (torch.profiler.profile(activities=cpu, schedule=schedule, on_trace_ready=export) if mode == "file"
              else run.profile(wait=0, warmup=1, active=PROFILED, repeat=1)) as prof:  # fmt: skip
            for i in range(1 + PROFILED):
                train_step(slow=rank == slow_rank and i == 2)
                prof.step()
    run.finish()
    dist.destroy_process_group()
    # Everything is stored and exported: leave without the interpreter's teardown. After the profiler has run, that
    # teardown now and then aborted rank 0 ("terminate called without an active exception", SIGABRT, once in
    # several clean-clone runs), a C++ thread of torch/gloo at exit as far as seen, after every result was written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if run.dropped == 0 else 1)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]), int(args[1]), Path(args[2]), args[3], int(args[4]), int(args[5]), args[6])
