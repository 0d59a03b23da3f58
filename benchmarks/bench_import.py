"""Trace import speed and size: ``torchscope import`` against the bare minimum, measured in the same run.

The bare minimum is what any importer must do: gunzip, ``orjson.loads``, build one tuple per event and
``sqlite3.executemany`` those rows into a table indexed for time-window queries. Prints, for the V100 trace in
``../shared/data/kineto`` (when present) and for a synthetic 1M-event trace:
import seconds, bare-minimum seconds, their ratio (target <= 1.5), the database size and its ratio to the
uncompressed JSON (target <= 0.5).

    .venv/bin/python benchmarks/bench_import.py [--events 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from bare_minimum import bare_minimum  # benchmarks/ is this script's folder
from torchscope.io.importing import import_path
from torchscope.storage.store import Store

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "kineto"


def timed_bare_minimum(path: Path, db: Path) -> tuple[float, float]:
    """Wall and CPU seconds of :func:`bare_minimum.bare_minimum`."""
    started, cpu = time.perf_counter(), time.process_time()
    bare_minimum(path, db)
    return time.perf_counter() - started, time.process_time() - cpu


def ours(path: Path, db: Path) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    import_path(db, path)
    return time.perf_counter() - started, time.process_time() - cpu


def synthetic_trace(path: Path, events: int) -> None:
    """A training-like trace: per launch an op, its child op, a runtime call, a kernel; steps; two streams."""
    groups = events // 4
    rng = np.random.default_rng(0)
    t = 1_700_000_000_000_000.0
    out: list[dict] = []
    op_names = [f"aten::op{i}" for i in range(200)]
    kernel_names = [f"void kernel_{i}<float, 128>(float const*, float*, int)" for i in range(300)]
    per_step = max(1, groups // 20)
    step_start = t
    for g in range(groups):
        if g % per_step == 0:
            if g:
                out.append({"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{g // per_step}", "pid": 1,
                            "tid": 1, "ts": step_start, "dur": round(t - step_start, 3), "args": {}})  # fmt: skip
            step_start = t
        d = float(rng.integers(20, 80))
        corr = g + 1
        name = op_names[g % 200]
        shapes = {"Input Dims": [[32, 64], [64, 64]], "Input type": ["float", "float"]} if g % 2 else {}
        out.append({"ph": "X", "cat": "cpu_op", "name": name, "pid": 1, "tid": 1, "ts": t, "dur": d,
                    "args": {"External id": g, **shapes}})  # fmt: skip
        out.append({"ph": "X", "cat": "cpu_op", "name": name + "_impl", "pid": 1, "tid": 1, "ts": t + 1.0,
                    "dur": d - 2, "args": {"External id": g}})  # fmt: skip
        out.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": t + 2.0,
                    "dur": 5.0, "args": {"External id": g, "correlation": corr, "cbid": 211}})  # fmt: skip
        out.append({"ph": "X", "cat": "kernel", "name": kernel_names[g % 300], "pid": 0, "tid": 7 + g % 2,
                    "ts": t + 10.0, "dur": d * 0.8, "args": {"External id": g, "correlation": corr, "device": 0,
                    "stream": 7 + g % 2, "grid": [128, 1, 1], "block": [256, 1, 1], "registers per thread": 32,
                    "shared memory": 0, "est. achieved occupancy %": 50}})  # fmt: skip
        t += d + 3.0
    path.write_bytes(gzip.compress(orjson.dumps({"schemaVersion": 1, "traceEvents": out}), compresslevel=1))


def measure(label: str, path: Path, repeat: int, work: Path) -> None:
    raw_size = len(gzip.decompress(path.read_bytes()))
    best_ours = best_bare = (float("inf"), float("inf"))
    size = 0
    for i in range(repeat):
        for suffix in ("", "-wal", "-shm"):
            for name in (f"bare{i}.db", f"ours{i}.db"):
                Path(str(work / name) + suffix).unlink(missing_ok=True)
        bare, mine = timed_bare_minimum(path, work / f"bare{i}.db"), ours(path, work / f"ours{i}.db")
        best_bare = tuple(map(min, best_bare, bare))
        best_ours = tuple(map(min, best_ours, mine))
        db = work / f"ours{i}.db"
        size = db.stat().st_size + (Path(str(db) + "-wal").stat().st_size if Path(str(db) + "-wal").exists() else 0)
    window_queries(label, work / f"ours{repeat - 1}.db")
    print(
        f"{label}: import {best_ours[0]:.2f} s wall / {best_ours[1]:.2f} s CPU, bare minimum {best_bare[0]:.2f} s "
        f"wall / {best_bare[1]:.2f} s CPU, ratio {best_ours[0] / best_bare[0]:.2f} wall / "
        f"{best_ours[1] / best_bare[1]:.2f} CPU (target <= 1.5); database {size / 1e6:.1f} MB for "
        f"{raw_size / 1e6:.1f} MB of JSON, ratio {size / raw_size:.2f} (target <= 0.5)"
    )


def window_queries(label: str, db: Path) -> None:
    """Time ``store.events`` over the whole profile, 10% and 1% of it (max 2000 per lane), best of 3."""
    with Store(db) as store:
        pid = int(store.profiles().iloc[-1]["id"])
        duration = int(store.profile(pid)["duration_ns"])
        parts = []
        for share in (1.0, 0.1, 0.01):
            a = int(duration * (1 - share) / 2)
            b = a + int(duration * share)
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                frame = store.events(pid, a, b, max_items=2000)
                best = min(best, time.perf_counter() - started)
            parts.append(f"{share:.0%}: {best * 1e3:.0f} ms ({len(frame)} events)")
    print(f"{label}: events(window, max_items=2000) " + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        v100 = SHARED / "v100_train_rank0.json.gz"
        if v100.exists():
            measure("V100 trace", v100, max(args.repeat, 3), work)
        else:
            print(f"(no {v100}: skipping the V100 trace)")
        synthetic = work / "synthetic.json.gz"
        synthetic_trace(synthetic, args.events)
        measure(f"synthetic {args.events} events", synthetic, args.repeat, work)
    print(f"machine: {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
