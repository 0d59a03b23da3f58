"""Timeline speed on a realistic 1M-event profile: first open, then zooms and pans (store queries and the callback).

    .venv/bin/python benchmarks/bench_timeline.py            # builds /tmp/torchscope_bench_timeline.db once
    .venv/bin/python benchmarks/bench_timeline.py --events 200000 --db /tmp/small.db
    .venv/bin/python benchmarks/bench_timeline.py --events 10000000 --db /tmp/10M.db   # the trace streams to disk
    .venv/bin/python benchmarks/bench_timeline.py --index     # force the in-memory index path (else SQL + pyramid
                                                              # above storage.timeline.reads.INDEX_MAX_EVENTS)

The profile is a Kineto trace as torch.profiler writes it for a deep model on one GPU (a main thread with
ProfilerStep / forward ops / kernel launches, an autograd thread with the backward, a compute and a copy stream,
correlation ids joining launches to kernels), written to JSON and stored through the real importer. Prints the
first-open time (index load + first window + first figure), then median / p95 server time of zoomed and panned
windows, for the store query alone and for the whole Dash callback (query + figure), and the size of the stored
timeline tables (the pyramid, depths, names) against the events table. The trace is written to disk as it is
generated, a step at a time, so generating 10M events needs little memory (importing them is the importer's matter).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from torchscope.io.importing import import_path
from torchscope.storage.store import Store

PID, MAIN, AUTOGRAD = 4242, 4242, 4243


class Trace:
    """Collects Kineto events (times in µs as in the files) and hands them on a step at a time (:meth:`take`)."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.corr = 1000
        self.written = 0

    def take(self) -> list[dict]:
        """The events added since the last call."""
        out, self.events = self.events, []
        self.written += len(out)
        return out

    def add(self, cat: str, name: str, ts: float, dur: float, tid: int, pid: int = PID, **args: object) -> None:
        event = {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": round(ts, 3), "dur": round(dur, 3)}
        if args:
            event["args"] = args
        self.events.append(event)

    def launch(self, ts: float, tid: int, kernel: str, gpu_ts: float, gpu_dur: float, stream: int = 7) -> float:
        """A cudaLaunchKernel on ``tid`` and its kernel on ``stream``; returns when the kernel ends."""
        self.corr += 1
        self.add("cuda_runtime", "cudaLaunchKernel", ts, 4.5, tid, correlation=self.corr)
        self.add("kernel", kernel, gpu_ts, gpu_dur, stream, pid=0, correlation=self.corr, stream=stream, device=0,
                 grid=[128, 1, 1], block=[256, 1, 1], **{"registers per thread": 32, "est. achieved occupancy %": 50})
        return gpu_ts + gpu_dur


def write_trace(path: Path, target_events: int, seed: int = 0) -> None:
    """Write a Kineto trace of about ``target_events`` events to ``path``: steps of a 400-layer MLP, forward,
    backward, optimizer; one step's events in memory at a time."""
    meta = [
        {"ph": "M", "name": "thread_name", "pid": PID, "tid": MAIN, "args": {"name": "pt_main_thread"}},
        {"ph": "M", "name": "thread_name", "pid": PID, "tid": AUTOGRAD, "args": {"name": "pt_autograd_0"}},
        {"ph": "M", "name": "process_name", "pid": 0, "tid": 0, "args": {"name": "GPU 0"}},
    ]
    head = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA A100-SXM4-80GB"}],
            "displayTimeUnit": "ms", "baseTimeNanoseconds": 0}  # fmt: skip
    with path.open("wb") as out:
        out.write(orjson.dumps(head)[:-1] + b',"traceEvents":[')
        out.write(b",".join(orjson.dumps(e) for e in meta))
        for chunk in _steps(target_events, seed):
            out.write(b"," + b",".join(orjson.dumps(e) for e in chunk))
        out.write(b"]}")


def _steps(target_events: int, seed: int):  # type: ignore[no-untyped-def]
    """The events of the trace, one training step per chunk."""
    rng = random.Random(seed)
    tr = Trace()
    layers = 400
    t, gpu = 1_000.0, 1_000.0
    step = 0
    while tr.written < target_events:
        step_start = t
        t += 5
        tr.add("user_annotation", "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", t, 300, MAIN)
        t += 310
        tr.corr += 1
        tr.add("cuda_runtime", "cudaMemcpyAsync", t, 12, MAIN, correlation=tr.corr)
        tr.add("gpu_memcpy", "Memcpy HtoD (Pageable -> Device)", max(gpu, t + 2), 40, 20, pid=0, correlation=tr.corr,
               stream=20, device=0, bytes=1 << 20)
        gpu = max(gpu, t + 2) + 40
        t += 15
        fwd_start = t
        for layer in range(layers):
            lin = 18 + rng.random() * 6
            tr.add("cpu_op", "aten::linear", t, lin + 12, MAIN, **{"Input Dims": [[64, 512], [512, 512], [512]]})
            tr.add("cpu_op", "aten::t", t + 1, 2, MAIN)
            tr.add("cpu_op", "aten::addmm", t + 4, lin, MAIN)
            gpu = tr.launch(t + 6, MAIN, "ampere_sgemm_64x64_nn", max(gpu, t + 10), 30 + rng.random() * 20)
            t += lin + 13
            tr.add("cpu_op", "aten::relu", t, 9, MAIN)
            gpu = tr.launch(t + 2, MAIN, "at::native::vectorized_elementwise_kernel<relu>", max(gpu, t + 6), 6)
            t += 10
        tr.add("user_annotation", "## forward ##", fwd_start, t - fwd_start, MAIN)
        for layer in range(layers):
            b = t
            tr.add("cpu_op", "autograd::engine::evaluate_function: AddmmBackward0", b, 40, AUTOGRAD)
            tr.add("cpu_op", "AddmmBackward0", b + 1, 37, AUTOGRAD)
            for k in range(2):
                tr.add("cpu_op", "aten::mm", b + 2 + 17 * k, 15, AUTOGRAD)
                gpu = tr.launch(b + 4 + 17 * k, AUTOGRAD, "ampere_sgemm_128x64_tn", max(gpu, b + 8), 35)
            tr.add("cpu_op", "ThresholdBackward0", b + 41, 10, AUTOGRAD)
            gpu = tr.launch(b + 43, AUTOGRAD, "at::native::threshold_backward_kernel", max(gpu, b + 46), 5)
            t += 53
        for layer in range(layers):
            tr.add("cpu_op", "aten::add_", t, 8, MAIN)
            gpu = tr.launch(t + 2, MAIN, "at::native::multi_tensor_apply_kernel", max(gpu, t + 5), 4)
            t += 9
        t = max(t, gpu) + 20
        tr.add("user_annotation", f"ProfilerStep#{step}", step_start, t - step_start, MAIN)
        step += 1
        yield tr.take()


def table_sizes(db: Path) -> None:
    """Bytes of the events table (with its index) and of the timeline tables, from SQLite's dbstat when compiled in."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        rows = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    except sqlite3.OperationalError:
        print("(this SQLite has no dbstat: table sizes not measured)")
        return
    finally:
        conn.close()
    events = rows.get("profile_events", 0) + rows.get("ix_profile_events_lane_level", 0)
    prefixes = ("timeline_", "sqlite_autoindex_timeline", "ix_timeline")
    timeline = {k: v for k, v in rows.items() if k.startswith(prefixes)}
    total = sum(timeline.values())
    parts = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(timeline.items()))
    print(f"events table + index {events / 1e6:.0f} MB; timeline tables {total / 1e6:.1f} MB "
          f"({100 * total / max(events, 1):.1f}% of it: {parts}); whole database {db.stat().st_size / 1e6:.0f} MB")


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def summary(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    print(f"{label:<38} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ms)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", default=os.path.join(tempfile.gettempdir(), "torchscope_bench_timeline.db"))
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--index", action="store_true", help="read through the in-memory index at any size")
    args = parser.parse_args()
    db = Path(args.db)
    if not db.exists():
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.pt.trace.json"
            write_trace(path, args.events)
            written = time.perf_counter() - t0
            json_mb = path.stat().st_size / 1e6
            result = import_path(db, path, name=f"bench-{args.events}")
        print(f"built {db}: {result.profiles[0]['events']} events, {result.profiles[0]['kernels']} kernels, "
              f"{result.profiles[0]['steps']} steps in {time.perf_counter() - t0:.1f} s (trace JSON {json_mb:.0f} MB "
              f"written in {written:.1f} s; database {db.stat().st_size / 1e6:.0f} MB)")  # fmt: skip
    if args.index:
        from torchscope.storage.timeline import reads

        reads.INDEX_MAX_EVENTS = 1 << 62
    table_sizes(db)

    from torchscope.dashboard.views.timeline import page as timeline_page

    store = Store(db)
    profile_id = int(store.profiles()["id"].iloc[-1])
    meta = store.profile(profile_id)
    print(f"profile {profile_id}: {meta['event_count']} events, {meta['duration_ns'] / 1e9:.2f} s of trace")
    t0 = time.perf_counter()
    store.timeline_lanes(profile_id)
    t_index = time.perf_counter() - t0
    first = timeline_page.window_figure(store, profile_id, None, None, "", None, 1200)
    store.timeline_minimap(profile_id)
    t_first = time.perf_counter() - t0
    print(f"first open (lanes + window + figure + minimap) {t_first * 1e3:6.0f} ms  (lanes {t_index * 1e3:.0f} ms; "
          f"{sum(len(tr['x']) for tr in first['figure']['data'] if tr['type'] == 'bar')} drawn items)")  # fmt: skip

    duration = int(meta["duration_ns"])
    rng = random.Random(1)
    zooms, pans = [], []
    for width in (duration // 4, duration // 40, duration // 400, duration // 40_000):
        a = rng.randrange(0, duration - width)
        zooms.append((a, a + width))
        for k in range(1, 4):
            pans.append((a + k * width // 3, a + width + k * width // 3))
    # every measured call differs in width (px) by a pixel: the store remembers the last views it answered, and
    # these figures are for views it has not seen (a repeated view costs ~0)
    px = iter(range(1201, 10**6))
    store_q = lambda a, b: store.timeline_window(profile_id, a, b, px=next(px))  # noqa: E731
    cb = lambda a, b, q="": timeline_page.window_figure(store, profile_id, a, b, q, None, next(px))  # noqa: E731
    n = args.repeat
    summary("store: whole profile", timed(lambda: store_q(0, duration + 1), n))
    zoom_ms = [m for a, b in zooms for m in timed(lambda: store_q(a, b), n // 3)]
    summary("store: zoomed windows (1/4 .. 1/40000)", zoom_ms)
    summary("store: panned windows", [m for a, b in pans for m in timed(lambda: store_q(a, b), n // 10)])
    summary("callback: whole profile", timed(lambda: cb(0, duration + 1), n // 3))
    summary("callback: zoomed", [m for a, b in zooms for m in timed(lambda: cb(a, b), n // 10)])
    summary("callback: panned", [m for a, b in pans for m in timed(lambda: cb(a, b), n // 10)])
    summary("callback: zoomed + search 'addmm'", [m for a, b in zooms for m in timed(lambda: cb(a, b, "addmm"), 3)])
    repeat = timed(lambda: store.timeline_window(profile_id, 0, duration + 1, px=1200), n)
    summary("store: whole profile, view seen before", repeat)
    print(f"(machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    store.close()


if __name__ == "__main__":
    main()
