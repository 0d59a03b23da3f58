"""Traces of any size: import throughput, peak memory, store size and view times at N events, from a real trace.

    .venv/bin/python benchmarks/scale.py --events 1000000 [--events 4000000 ...] [--keep DIR] [--recorded]

The input is a real Kineto trace tiled in time until it holds N events: the public V100 trace in
``../shared/data/kineto`` when present (it has no memory or module events), else, or with ``--recorded``, a trace
this script records with torch.profiler on the CPU with memory and Python stacks (so that the memory and modules
pages have content). Each tile is shifted past the previous one, with its correlation / External / flow ids and
``ProfilerStep#N`` numbers renumbered, so the result reads as one long profile. It is written as gzip, one event per
line, streamed (never held whole).

For each N it prints: ``torchscope import`` wall time, events/s and peak memory (PSS of the import's whole process
tree, sampled every 20 ms in a second run: sampling costs CPU, so the time comes from a run without it); at the
smallest N (up to 2M events: it holds the whole trace in memory) also the bare minimum (``bare_minimum.py``: gunzip
+ orjson + sqlite3 executemany of one tuple per event, in memory, in a subprocess, timed and sampled the same way)
and our ratio to it; the database size against the uncompressed JSON; and the server time of the store reads each
page's first paint makes (profile overview, operators, kernels, modules, memory; the timeline's first window), each
page in a fresh read-only process so nothing is cached.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import orjson
import psutil

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "kineto" / "v100_train_rank0.json.gz"
BARE_MAX = 2_000_000
"""The largest trace the bare minimum is run on: it holds the whole trace in memory."""
_STEP = re.compile(r"ProfilerStep#(\d+)")
_ID_ARGS = ("External id", "correlation", "Ev Idx", "Python id", "Python parent id")


def base_trace(work: Path, recorded: bool = False) -> dict:
    """The trace to tile: the V100 reference trace, else (or if ``recorded``) one recorded here on the CPU."""
    if SHARED.exists() and not recorded:
        return orjson.loads(gzip.decompress(SHARED.read_bytes()))
    import torch

    model = torch.nn.Sequential(*(torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU()) for _ in range(8)))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    path = work / "cpu.json"
    schedule = torch.profiler.schedule(wait=0, warmup=1, active=4, repeat=1)
    with torch.profiler.profile(schedule=schedule, record_shapes=True, profile_memory=True, with_stack=True,
                                on_trace_ready=lambda done: done.export_chrome_trace(str(path))) as prof:  # fmt: skip
        for _ in range(5):
            loss = model(torch.randn(32, 64)).sum()
            loss.backward()
            opt.step()
            opt.zero_grad()
            prof.step()
    return orjson.loads(path.read_bytes())


def tile(trace: dict, events: int, out: Path) -> int:
    """Write ``trace`` tiled in time to ``out`` (gzip) until it holds at least ``events`` events; returns the count."""
    evs = [e for e in trace["traceEvents"] if isinstance(e, dict)]
    timed = [e for e in evs if "ts" in e and e.get("ph") != "M"]
    t0 = min(e["ts"] for e in timed)
    span = max(e["ts"] + e.get("dur", 0) for e in timed) - t0 + 1000.0
    steps = [int(m.group(1)) for e in evs if (m := _STEP.fullmatch(str(e.get("name", ""))))]
    step_span = (max(steps) - min(steps) + 1) if steps else 0
    max_id = max([0] + [e["args"][k] for e in evs for k in _ID_ARGS
                        if isinstance(e.get("args"), dict) and type(e["args"].get(k)) is int])  # fmt: skip
    id_span = max_id + 1
    flow_span = max([0] + [e["id"] for e in evs if type(e.get("id")) is int]) + 1
    header = {k: v for k, v in trace.items() if k != "traceEvents"}
    meta = [e for e in evs if e.get("ph") == "M"]
    body = [e for e in evs if e.get("ph") != "M"]
    written = 0
    with gzip.open(out, "wb", compresslevel=1) as fh:
        head = orjson.dumps(header)[:-1]
        fh.write(head + (b", " if header else b"") + b'"traceEvents": [\n')
        first = True
        for e in meta:
            fh.write((b"" if first else b",\n") + orjson.dumps(e))
            first = False
        k = 0
        while written < events:
            lines = []
            for e in body:
                e2 = dict(e)
                e2["ts"] = round(e["ts"] + k * span, 3)
                args = e.get("args")
                if isinstance(args, dict):
                    a2 = dict(args)
                    for key in _ID_ARGS:
                        if type(a2.get(key)) is int:
                            a2[key] += k * id_span
                    e2["args"] = a2
                if type(e.get("id")) is int:
                    e2["id"] = e["id"] + k * flow_span
                if step_span and (m := _STEP.fullmatch(str(e.get("name", "")))):
                    e2["name"] = f"ProfilerStep#{int(m.group(1)) + k * step_span}"
                lines.append(orjson.dumps(e2))
            chunk = b",\n".join(lines)
            fh.write((b"" if first else b",\n") + chunk)
            first = False
            written += len(body)
            k += 1
        fh.write(b"\n]}\n")
    return written + len(meta)


def run_measured(cmd: list[str], memory: bool = False) -> tuple[float, int, str]:
    """Run ``cmd``; its wall seconds, with ``memory`` its peak memory (else 0), and its output.

    Memory is the proportional set size (PSS) summed over the process tree, sampled every 20 ms: a forked decode
    worker shares pages with the importer, which a sum of RSS would count twice. Reading a process's PSS walks its
    page tables (about 3.5 ms for 1 GB here), so the sampler takes a good share of a core: time a command in a run
    without it."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        if memory:
            try:
                total = sum(p.memory_full_info().pss for p in [root, *root.children(recursive=True)])
                peak = max(peak, total)
            except psutil.Error:
                pass
        time.sleep(0.02)
    out = proc.stdout.read().decode()  # type: ignore[union-attr]
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{out[-2000:]}")
    return time.perf_counter() - started, peak, out


_VIEWS = """
import sys, time
from torchscope.storage.store import Store
store = Store(sys.argv[1], read_only=True)
pid = int(store.profiles().iloc[-1]["id"])
started = time.perf_counter()
for read in sys.argv[2].split(","):
    if read == "timeline_window":
        store.timeline_window(pid, px=1500)
    elif read == "op_table_shapes":
        store.op_table(pid, group_by_shape=True)
    else:
        getattr(store, read)(pid)
print(f"{time.perf_counter() - started:.3f}")
"""

_PANS = """
import random, statistics, sys, time
from torchscope.storage.store import Store
store = Store(sys.argv[1], read_only=True)
pid = int(store.profiles().iloc[-1]["id"])
duration = int(store.profile(pid)["duration_ns"])
store.timeline_window(pid, px=1500)
rng = random.Random(0)
times = []
for share in (0.3, 0.1, 0.03, 0.01, 0.001, 0.0001) * 5:  # zooms to random windows, then a pan of half a window
    width = max(int(duration * share), 1000)
    a = rng.randrange(0, max(duration - width, 1))
    for start in (a, a + width // 2):
        t = time.perf_counter()
        store.timeline_window(pid, start, start + width, px=1500)
        times.append(time.perf_counter() - t)
times.sort()
print(f"{statistics.median(times) * 1e3:.0f} {times[int(len(times) * 0.95)] * 1e3:.0f} {len(times)}")
"""

VIEWS = {  # each profile page (and the timeline's first window): the store reads its first paint makes
    "overview": "profile,step_breakdown,device_utilization,op_table,kernel_table,name_spans",
    "operators": "op_table,op_table_shapes,op_modules,name_spans",
    "kernels": "kernel_table,name_spans",
    "modules": "module_table,name_spans",
    "memory": "memory_peak,memory_curve,memory_by_op,name_spans",
    "timeline": "timeline_lanes,timeline_window,timeline_minimap",
}


def db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def raw_size(path: Path) -> int:
    size = 0
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            size += len(chunk)
    return size


def measure(n: int, trace: dict, work: Path, bare: bool) -> None:
    src = work / f"trace_{n}.json.gz"
    done = work / f"trace_{n}.count"
    if src.exists() and done.exists():  # kept from an earlier run (--keep)
        count = int(done.read_text())
    else:
        count = tile(trace, n, src)
        done.write_text(str(count))
    raw = raw_size(src)
    db = work / f"scale_{n}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    exe = str(Path(sys.executable).with_name("torchscope"))
    command = [exe, "import", str(src), "--db", str(db), "--no-progress"]
    _, rss, _ = run_measured(command, memory=True)  # the memory of one run, the time of another (see run_measured)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    wall, _, _ = run_measured(command)
    line = (f"{count:>10,} events: import {wall:6.1f} s = {count / wall / 1e3:5.0f}k events/s, peak memory "
            f"{rss / 2**30:4.2f} GiB; store {db_size(db) / 1e6:7.1f} MB = {db_size(db) / raw:.2f} of "
            f"{raw / 1e6:.0f} MB JSON")  # fmt: skip
    if bare:
        bare_db = work / "bare.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{bare_db}{suffix}").unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).with_name("bare_minimum.py")), str(src), str(bare_db)]
        _, brss, _ = run_measured(command, memory=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{bare_db}{suffix}").unlink(missing_ok=True)
        bwall, _, _ = run_measured(command)
        line += f"\n{'':>18}bare minimum {bwall:6.1f} s (peak {brss / 2**30:.2f} GiB): ours / bare = {wall / bwall:.2f}"
    print(line, flush=True)
    times = []
    for view, reads in VIEWS.items():
        _, _, out = run_measured([sys.executable, "-c", _VIEWS, str(db), reads])
        times.append(f"{view} {float(out.strip().splitlines()[-1]):.2f} s")
    print(textwrap.indent("server reads of each page, cold process: " + ", ".join(times), " " * 18), flush=True)
    _, _, out = run_measured([sys.executable, "-c", _PANS, str(db)])
    median, p95, count = out.strip().splitlines()[-1].split()
    print(f"{'':>18}timeline zoom/pan, {count} windows: median {median} ms, p95 {p95} ms (server)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, action="append", help="events in the tiled trace (repeatable)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep the traces and databases")
    parser.add_argument("--recorded", action="store_true", help="tile a CPU trace recorded here, not the V100 one")
    args = parser.parse_args()
    sizes = sorted(args.events or [1_000_000])
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        trace = base_trace(work, args.recorded)
        print(f"base trace: {'V100 reference' if SHARED.exists() and not args.recorded else 'CPU, recorded here'}, "
              f"{len(trace['traceEvents'])} events; machine: {os.cpu_count()} CPUs, "
              f"{psutil.virtual_memory().total / 2**30:.0f} GiB")  # fmt: skip
        for i, n in enumerate(sizes):
            measure(n, trace, work, bare=i == 0 and n <= BARE_MAX)


if __name__ == "__main__":
    main()
