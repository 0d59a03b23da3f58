"""Live monitoring speed, in a real headless Chromium against the real ``torchscope serve``.

1. Latency from ``run.log`` (in this process, the training side) to the value being in the open page's chart, over
   ``--values`` values logged at random moments (so they land anywhere in the page's poll period): median, p95, max.
   The moment of arrival is taken in the page (``Date.now()`` when the chart first holds the point, polled every
   animation frame), on the same clock as the log call.
2. First render of a run of ``--points`` points across ``--tags`` tags: the server time of the page's layout (store
   read with downsampling + figure building) and the time until every chart is drawn in the browser.

Targets (DESIGN.md, issue 7; "Traces of any size"): a value drawn within 1 s; a 1M-point / 50-tag run shows every
chart in <= 1 s.

    .venv/bin/python benchmarks/bench_live.py [--values 50] [--points 1000000] [--tags 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import torchscope
from torchscope.dashboard import routes
from torchscope.dashboard.server import serve_in_subprocess
from torchscope.storage.store import Store

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
ARRIVED = """([step, value]) => {
    const gd = document.querySelector(".chart-cell[data-tag='v'] .js-plotly-plot");
    if (!gd || !gd.data) return false;
    const i = Array.from(gd.data[0].x).lastIndexOf(step);
    return i >= 0 && gd.data[0].customdata[i] === value ? Date.now() : false;
}"""


def serve(db: Path) -> tuple[ExitStack, str]:
    """``torchscope serve DB`` on a free port, answering; close the stack to stop it."""
    stack = ExitStack()
    return stack, stack.enter_context(serve_in_subprocess(db))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_latency(browser, tmp: Path, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds from ``run.log`` to the value in the page, per value."""
    db = tmp / "latency.db"
    run = torchscope.init(name="latency", db=db, system_metrics=False)
    run.log({"v": 0.0}, step=0)
    run.flush()
    server, url = serve(db)
    page = browser.new_page()
    try:
        page.goto(f"{url}/run/{run.id}")
        page.wait_for_selector(".chart-cell[data-tag='v'] .js-plotly-plot")
        rng = random.Random(7)
        latencies = []
        for step in range(1, count + 1):
            time.sleep(rng.uniform(0.05, 1.0))  # log at a random phase of the page's poll
            value = step / 3
            logged_ms = time.time() * 1000
            run.log({"v": value}, step=step)
            arrived_ms = page.wait_for_function(ARRIVED, arg=[step, value], polling="raf", timeout=30_000).json_value()
            latencies.append((arrived_ms - logged_ms) / 1000)
        return latencies
    finally:
        page.close()
        run.finish()
        server.close()


def bench_first_render(  # type: ignore[no-untyped-def]
    browser, tmp: Path, points: int, tags: int, repeats: int = 5
) -> None:
    """Prints the write time, the server render time and the browser time to every chart of a big run."""
    db = tmp / "big.db"
    steps = points // tags
    names = [f"{['train', 'val', 'opt', 'grad', 'act'][i % 5]}/metric{i:02d}" for i in range(tags)]
    start = time.perf_counter()
    with torchscope.init(name="big", db=db, system_metrics=False) as run:
        for step in range(steps):
            values = {name: 1.0 / (step + 1) + 0.01 * i for i, name in enumerate(names)}
            if step == steps // 2:
                values[names[0]] = float("nan")
            run.log(values, step=step)
    print(f"  wrote {steps * tags:,} points ({tags} tags x {steps:,} steps) in {time.perf_counter() - start:.1f} s")

    cold, warm, read = [], [], []
    for _ in range(3):
        store = Store(db)  # a fresh store: nothing cached, the whole run is read
        start = time.perf_counter()
        routes.render(store, f"/run/{run.id}", "", refresh_ms=1000)
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        routes.render(store, f"/run/{run.id}", "", refresh_ms=1000)
        warm.append(time.perf_counter() - start)
        start = time.perf_counter()
        store.scalars(run.id, max_items=1500)
        read.append(time.perf_counter() - start)
        store.close()
    print(f"  server, median of 3: page layout {statistics.median(cold):.2f} s on first open "
          f"(store read + downsampling alone {statistics.median(read):.2f} s), "
          f"{statistics.median(warm):.2f} s when opened again (cached series)")  # fmt: skip

    server, url = serve(db)
    navigation, drawing, payload = [], [], 0
    try:
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            sizes: list[int] = []
            page.on("requestfinished", lambda r: sizes.append(r.sizes()["responseBodySize"])
                    if "_dash-update-component" in r.url else None)  # fmt: skip
            start = time.perf_counter()
            page.goto(f"{url}/run/{run.id}")
            page.wait_for_function(
                "Array.from(document.querySelectorAll('.chart-cell .js-plotly-plot'))"
                f".filter(gd => gd.querySelector('.scatterlayer .trace path')).length === {tags}",
                polling="raf", timeout=60_000,
            )  # fmt: skip
            navigation.append(time.perf_counter() - start)
            # the page's content arrives in the first Dash callback (the URL router); after it, only drawing is left
            drawing.append(page.evaluate(
                "performance.now() - performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('_dash-update-component'))[0].responseEnd"
            ) / 1000)  # fmt: skip
            payload = max(sizes, default=0)
            page.close()
    finally:
        server.close()
    print(f"  browser, first open (server reads the run): every chart drawn {navigation[0]:.2f} s after navigation, "
          f"{drawing[0]:.2f} s after the page content arrived")  # fmt: skip
    print(f"  browser, median of {repeats - 1} later opens: every chart drawn {statistics.median(navigation[1:]):.2f} s "
          f"after navigation, {statistics.median(drawing[1:]):.2f} s after the page content arrived "
          f"(page content {payload / 1e6:.1f} MB)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=50)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--tags", type=int, default=50)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("TORCHSCOPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; chart poll 250 ms after each answer, header 1000 ms, "
          "writer flush 250 ms")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        latencies = bench_latency(browser, Path(tmp), args.values)
        print(f"log -> visible in the page, over {len(latencies)} values: median {statistics.median(latencies):.2f} s, "
              f"p95 {percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s  (target: within 1 s)")  # fmt: skip
        if args.points:  # --points 0: the latency alone
            print(f"first render of {args.points:,} points across {args.tags} tags (target: <= 1 s):")
            bench_first_render(browser, Path(tmp), args.points, args.tags)
        browser.close()


if __name__ == "__main__":
    main()
