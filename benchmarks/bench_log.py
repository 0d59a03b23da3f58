"""How fast is logging? Prints the time per ``run.log`` call in the training thread, and the background writer's
sustained rows/s next to bare ``sqlite3.executemany`` of the same rows, measured in the same run.

Targets (issue 2): ``run.log`` of a 4-scalar dict under 20 µs median; writer >= 50% of the bare executemany rate.

    .venv/bin/python benchmarks/bench_log.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import torchscope


def time_log_calls(db: Path, calls: int) -> list[float]:
    """Microseconds of each ``run.log`` call of a 4-scalar dict, timed one by one."""
    run = torchscope.init(name="bench-log-latency", db=db)
    clock = time.perf_counter_ns
    samples = []
    for step in range(calls):
        values = {"loss": 1.0 / (step + 1), "acc": 0.5, "lr": 3e-4, "grad_norm": 2.0}
        start = clock()
        run.log(values, step=step)
        samples.append((clock() - start) / 1e3)
    run.finish()
    return samples


def writer_rows_per_second(db: Path, calls: int) -> tuple[float, float]:
    """Rows/s from the first ``log`` until ``flush`` returns, and the seconds the training thread spent enqueuing."""
    run = torchscope.init(name="bench-log-throughput", db=db)
    values = {"loss": 0.1, "acc": 0.5, "lr": 3e-4, "grad_norm": 2.0}
    start = time.perf_counter()
    for step in range(calls):
        run.log(values, step=step)
    enqueued = time.perf_counter() - start
    assert run.flush(timeout=600), "writer did not finish"
    elapsed = time.perf_counter() - start
    run.finish()
    return calls * len(values) / elapsed, enqueued


def bare_rows_per_second(db: Path, calls: int) -> float:
    """Rows/s of plain sqlite3 executemany of the same rows into an indexed table, one transaction."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE scalars (run_id INTEGER, tag_id INTEGER, step INTEGER, value REAL, wall_time INTEGER)")
    conn.execute("CREATE INDEX ix ON scalars (run_id, tag_id, step)")
    wall = time.time_ns()
    rows = [(1, tag, step, 0.5, wall) for step in range(calls) for tag in range(4)]
    start = time.perf_counter()
    with conn:
        conn.executemany("INSERT INTO scalars VALUES (?, ?, ?, ?, ?)", rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        latencies = time_log_calls(tmp_path / "latency.db", args.calls)
        writer_rate, enqueue_s = writer_rows_per_second(tmp_path / "writer.db", args.calls)
        bare_rate = bare_rows_per_second(tmp_path / "bare.db", args.calls)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"run.log (4 scalars), {args.calls} calls: median {statistics.median(latencies):.2f} us, "
          f"p90 {p(0.90):.2f} us, p99 {p(0.99):.2f} us, max {latencies[-1]:.0f} us   (target: median < 20 us)")
    print(f"training thread enqueued {args.calls * 4} rows in {enqueue_s:.2f} s")
    print(f"writer sustained: {writer_rate:,.0f} rows/s; bare sqlite3.executemany: {bare_rate:,.0f} rows/s; "
          f"ratio {writer_rate / bare_rate:.2f}   (target: >= 0.50)")


if __name__ == "__main__":
    main()
