"""Many writers: the ranks of a gloo DDP job (CPU processes) log into one store at once, on SQLite and PostgreSQL.

Each rank trains a small DDP model and logs ``--tags`` scalars every step for ``--steps`` steps, timing every
``run.log`` call; a watched model is captured every ``--watch-every`` steps. Prints, per backend: processes, rows
expected and found (scalars, captured steps), dropped records, "database is locked" (or any torchscope) warnings,
``run.log`` latency (median / p99 across all ranks), the time from the ranks' ``finish()`` call to its return, and
the writers' total rows/s.

    .venv/bin/python benchmarks/bench_ranks.py [--world 4] [--steps 2000] [--tags 8] [--backend sqlite,postgresql]

PostgreSQL needs its server binaries (``initdb``; the tests' helper starts a private server).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve()


def rank_main(
    rank: int, world: int, folder: Path, db: str, steps: int, tags: int, watch_every: int, train: bool
) -> None:
    """One rank: join the group, train, log, finish; write ``folder/rank<r>.json`` with its timings."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    import torchscope

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=world)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    run = torchscope.init("bench-ranks", db=db, system_metrics=False)
    run.watch(model, every=watch_every)
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01)
    x, y = torch.randn(32, 16), torch.randn(32, 4)
    clock, latencies = time.perf_counter_ns, []
    started = time.perf_counter()
    for step in range(steps):
        if train or step % watch_every == 0:  # --no-train: only the watched steps train (a write-only stress test)
            loss = torch.nn.functional.mse_loss(ddp(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        values = {f"t{i}": step + i / 8 for i in range(tags)}
        t0 = clock()
        run.log(values, step=step)
        latencies.append(clock() - t0)
    trained = time.perf_counter() - started
    t0 = time.perf_counter()
    run.finish()
    finish_s = time.perf_counter() - t0
    result = {"rank": rank, "run": run.id, "latencies": latencies, "finish_s": finish_s, "train_s": trained,
              "dropped": run.dropped}  # fmt: skip
    (folder / f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def run_job(db: str, world: int, steps: int, tags: int, watch_every: int, train: bool) -> dict[str, object]:
    """Start ``world`` ranks at once and gather what they measured and what the store holds."""
    import sqlalchemy

    import torchscope

    folder = Path(tempfile.mkdtemp(prefix="bench-ranks-"))
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "TORCHSCOPE_JOB_ID": f"bench-{uuid.uuid4().hex[:6]}",
           "PYTHONWARNINGS": "always"}  # fmt: skip
    started = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, str(HERE), "--rank", str(r), "--world", str(world), "--folder", str(folder),
                          "--db", db, "--steps", str(steps), "--tags", str(tags), "--watch-every", str(watch_every),
                          *([] if train else ["--no-train"])],
                         env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for r in range(world)
    ]
    errors = [p.communicate(timeout=1800)[1] for p in procs]
    wall = time.perf_counter() - started
    failed = [p.returncode for p in procs if p.returncode != 0]
    ranks = [json.loads((folder / f"rank{r}.json").read_text()) for r in range(world) if (folder / f"rank{r}.json").exists()]
    latencies = sorted(v for r in ranks for v in r["latencies"]) or [0]
    reasons = sorted({e.strip().splitlines()[-1][:160] for p, e in zip(procs, errors) if p.returncode != 0 and e.strip()})
    engine = sqlalchemy.create_engine(db if "://" in db else f"sqlite:///{db}")
    with engine.connect() as conn:
        ids = [r["run"] for r in ranks]
        scalars = sum(conn.exec_driver_sql(f"SELECT COUNT(*) FROM scalars WHERE run_id = {int(i)}").scalar() for i in ids)
        captured = sum(conn.exec_driver_sql(f"SELECT COUNT(*) FROM graph_steps WHERE run_id = {int(i)}").scalar()
                       for i in ids)  # fmt: skip
    engine.dispose()
    store = torchscope.open(db)
    jobs = store.runs()["job_id"].dropna().unique().tolist()
    store.close()
    text = "\n".join(errors)
    forwards = steps if train else len(range(0, steps, watch_every))  # watch(every=) counts the model's forwards
    return {
        "processes": world, "exit codes != 0": len(failed), "why ranks failed": "; ".join(reasons) or "-", "scalar rows": f"{scalars:,} of {world * steps * tags:,}",
        "captured steps": f"{captured:,} of {world * len(range(0, forwards, watch_every)):,}",
        "dropped": sum(r["dropped"] for r in ranks), "'locked' in stderr": text.lower().count("locked"),
        "torchscope warnings": text.count("TorchscopeWarning"), "jobs in store": len(jobs),
        "run.log median / p99 (µs)": f"{latencies[len(latencies) // 2] / 1e3:.1f} / "
                                     f"{latencies[int(len(latencies) * 0.99)] / 1e3:.1f}",
        "finish() max (s)": f"{max([r['finish_s'] for r in ranks] or [0]):.2f}",
        "rows/s, all writers": f"{scalars / max(max([r['train_s'] + r['finish_s'] for r in ranks] or [0]), 1e-9):,.0f}",
        "wall incl. start (s)": f"{wall:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--tags", type=int, default=8)
    parser.add_argument("--watch-every", type=int, default=50)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--no-train", action="store_true", help="log without training between calls (stress)")
    parser.add_argument("--rank", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank is not None:
        rank_main(args.rank, args.world, Path(args.folder), args.db, args.steps, args.tags, args.watch_every,
                  not args.no_train)
        return
    for backend in args.backend.split(","):
        if backend == "sqlite":
            db = str(Path(tempfile.mkdtemp(prefix="bench-ranks-db-")) / "job.db")
            figures = run_job(db, args.world, args.steps, args.tags, args.watch_every, not args.no_train)
        else:
            sys.path.insert(0, str(HERE.parents[1] / "tests"))
            from postgres import postgres_server

            with postgres_server() as url:
                figures = run_job(url, args.world, args.steps, args.tags, args.watch_every, not args.no_train)
        print(f"\n{backend}: {args.world} ranks x {args.steps} steps x {args.tags} scalars, watched every "
              f"{args.watch_every} steps{', no training between logs' if args.no_train else ''}")  # fmt: skip
        for key, value in figures.items():
            print(f"  {key:28s} {value}")
    print(f"\n(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
