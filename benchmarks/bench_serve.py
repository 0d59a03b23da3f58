"""Many readers: 20 concurrent clients replay the Dash callbacks a browser sends on the run, graph and timeline pages
of a 1M-event profile, against ``torchscope serve --workers N``, while a training process writes the same database.

    .venv/bin/python benchmarks/bench_serve.py                       # 1M events, workers 1 and 4, 30 s each
    .venv/bin/python benchmarks/bench_serve.py --events 200000 --seconds 15

1. The database (built once at ``--db``): the 1M-event Kineto trace of ``bench_timeline.py`` imported through the
   real importer.
2. A training process (this file with ``--train``) starts writing a live run into the same SQLite file: a watched
   MLP (graph and tensor statistics every 20 steps) and four scalars per step, after 20,000 steps of history.
3. Real payloads: headless Chromium opens the run and graph pages of the live run and the timeline (whole profile
   and three zoomed windows) on a served dashboard, and every POST to ``/_dash-update-component`` is recorded with
   its body: the page router, the live poll, the graph view's callbacks, the timeline's window callback.
4. For each ``--workers`` value: ``torchscope serve --workers N --auth-token ...`` (read-only store, gunicorn for
   N > 1, waitress for 1), ``--clients`` threads each with its own keep-alive connection replaying the payloads in
   turn for ``--seconds``. Prints requests/s and p50 / p95 / max latency and errors, overall and per page.

Every request goes to 127.0.0.1 only, and every loop is bounded by time and count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

import requests

import torchscope
from torchscope.dashboard import urls
from torchscope.dashboard.server import serve_in_subprocess
from torchscope.io.importing import import_path

TOKEN = "bench-serve-token"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
MAX_REQUESTS_PER_CLIENT = 100_000


# -- the training process ---------------------------------------------------------------------------------------------


def train(db: str, history: int) -> None:
    """Log ``history`` steps at once, then train a watched MLP and log every step until killed (``--train``)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 1))  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 32), torch.randn(64, 1)
    run = torchscope.init(name="live-under-load", db=db, config={"lr": 0.01}, system_metrics=1.0)
    for step in range(history):
        run.log({"train/loss": 1.0 / (step + 1), "train/acc": step / history, "val/loss": 1.2 / (step + 1),
                 "lr": 0.01}, step=step)  # fmt: skip
    run.watch(model, every=20)
    print(f"run {run.id}", flush=True)
    step = history
    while True:
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        run.log({"train/loss": float(loss.detach()), "train/acc": 0.5, "val/loss": float(loss.detach()), "lr": 0.01},
                step=step)  # fmt: skip
        step += 1
        time.sleep(0.005)


# -- building the database, capturing payloads ------------------------------------------------------------------------


def build(db: Path, events: int) -> None:
    from bench_timeline import write_trace  # benchmarks/ is this script's folder

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.pt.trace.json"
        write_trace(path, events)
        result = import_path(db, path, name=f"bench-{events // 1000}k")
    print(f"built {db}: {result.profiles[0]['events']} events in {time.perf_counter() - t0:.1f} s", flush=True)


def capture(url: str, pages: dict[str, list[str]]) -> list[tuple[str, bytes]]:
    """``(page, body)`` of every callback POST that headless Chromium sends while it opens ``pages``."""
    from playwright.sync_api import sync_playwright

    captured: list[tuple[str, bytes]] = []
    current = [""]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=os.environ.get("TORCHSCOPE_CHROMIUM", "/usr/bin/chromium"),
                                             args=CHROMIUM_ARGS)  # fmt: skip
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        tab.on("request", lambda r: captured.append((current[0], r.post_data_buffer or b""))
               if r.method == "POST" and urlparse(r.url).path == "/_dash-update-component" else None)  # fmt: skip
        tab.goto(f"{url}/?token={TOKEN}")  # the cookie for the rest
        tab.wait_for_selector(".ag-row")
        for page, paths in pages.items():
            for path in paths:
                current[0] = page
                tab.goto(url + path)
                tab.wait_for_load_state("networkidle")
                tab.wait_for_timeout(2500)  # the run page's live poll fires every second
        browser.close()
    return [(page, body) for page, body in captured if page]


# -- the load ---------------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def load(url: str, payloads: list[tuple[str, bytes]], clients: int, seconds: float) -> dict[str, list]:
    """Replay ``payloads`` from ``clients`` threads for ``seconds``: ``{page: [(ms, ok), ...]}``."""
    results: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    lock = threading.Lock()
    start = threading.Barrier(clients)
    deadline = [0.0]

    def client(k: int) -> None:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        order = list(range(len(payloads)))
        random.Random(k).shuffle(order)
        mine: list[tuple[str, float, bool]] = []
        if start.wait() == 0:
            deadline[0] = time.monotonic() + seconds
        while not deadline[0]:
            time.sleep(0.001)
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() > deadline[0]:
                break
            page, body = payloads[order[i % len(order)]]
            t0 = time.perf_counter()
            try:
                response = session.post(url + "/_dash-update-component", data=body, timeout=60)
                ok = response.status_code in (200, 204)
            except requests.RequestException:
                ok = False
            mine.append((page, (time.perf_counter() - t0) * 1e3, ok))
        with lock:
            for page, ms, ok in mine:
                results[page].append((ms, ok))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def report(label: str, results: dict[str, list], seconds: float) -> None:
    everything = [r for rows in results.values() for r in rows]
    for name, rows in [("all", everything), *sorted(results.items())]:
        ms = [m for m, _ in rows]
        errors = sum(1 for _, ok in rows if not ok)
        print(f"{label:<10} {name:<9} {len(rows) / seconds:7.1f} req/s   p50 {percentile(ms, 0.5):7.1f} ms   "
              f"p95 {percentile(ms, 0.95):7.1f} ms   max {max(ms, default=float('nan')):7.1f} ms   "
              f"errors {errors}/{len(rows)}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="default: a file in the temp folder named by --events")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--history", type=int, default=20_000, help="steps the live run has logged before the load")
    parser.add_argument("--train", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        train(args.train, args.history)
        return
    db = Path(args.db or Path(tempfile.gettempdir()) / f"torchscope_bench_serve_{args.events}.db")
    if not db.exists():
        build(db, args.events)
    with torchscope.open(db) as store:
        profile_id = int(store.profiles()["id"].min())  # the imported one: the training process profiles nothing
        duration = int(store.profile(profile_id)["duration_ns"])
    trainer = subprocess.Popen([sys.executable, __file__, "--train", str(db), "--history", str(args.history)],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = trainer.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("run "):
            raise RuntimeError(f"the training process did not start: {line!r}")
        run_id = int(line.split()[1])
        deadline = time.monotonic() + 60
        while torchscope.open(db).graph_steps(run_id).empty:
            if time.monotonic() > deadline:
                raise RuntimeError("the training process captured no graph within 60 s")
            time.sleep(0.2)
        windows = [(duration // 2, duration // 2 + duration // d) for d in (10, 100, 1000)]
        pages = {
            "run": [urls.run(run_id)],
            "graph": [urls.graph(run_id)],
            "timeline": [urls.timeline(profile_id)] + [urls.timeline(profile_id, start=a, end=b) for a, b in windows],
        }
        with serve_in_subprocess(db, auth_token=TOKEN) as url:
            payloads = capture(url, pages)
        counts = {page: sum(1 for p, _ in payloads if p == page) for page in pages}
        if not all(counts.values()):
            raise RuntimeError(f"a page sent no callback while Chromium opened it: {counts}")
        outputs = sorted({json.loads(body)["output"][:60] for _, body in payloads})
        print(f"captured {len(payloads)} callback requests {counts}: {len(outputs)} distinct outputs", flush=True)
        print(f"{args.clients} clients, {args.seconds:.0f} s per server; training writes run {run_id} meanwhile; "
              f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
        for workers in args.workers:
            with serve_in_subprocess(db, auth_token=TOKEN, workers=workers, timeout_s=120) as url:
                load(url, payloads, args.clients, min(args.seconds, 5.0))  # warm every worker's caches
                load_before = os.getloadavg()[0]
                results = load(url, payloads, args.clients, args.seconds)
                report(f"workers={workers}", results, args.seconds)
                print(f"(load average {load_before:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        trainer.terminate()
        trainer.wait(30)
        with torchscope.open(db) as store:
            runs = store.runs()
            print(f"training run {runs.iloc[0]['id']}: last step {runs.iloc[0]['last_step']}, "
                  f"dropped {runs.iloc[0]['dropped']}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
