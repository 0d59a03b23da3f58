"""Profile overview paint, in a real headless Chromium against the real ``torchscope serve``.

For a profile of N events (the realistic generator of bench_timeline.py, stored through the real importer), opens
``/profile/<id>`` and measures, in the page (``performance.now()``, ms since navigation start), when every chart of
the overview has painted its bars or bands (polled every animation frame). Reports, per size:

- the first open after the server started (its store has cached nothing: the analyses are read or computed), and
  the median of later opens (a fresh browser context each time: nothing cached in the browser either);
- where the time goes in a later open: the page's JavaScript loaded, the Dash callbacks sent before the overview
  arrives (round trips), the server time and JSON size of the request that carries the overview (a callback, or Dash's
  layout request when the page comes with the layout), the drawing after, and
  the browser's main-thread time (Chrome's ``TaskDuration`` / ``ScriptDuration``: less sensitive than wall time to
  other processes on a busy machine).

    .venv/bin/python benchmarks/bench_paint.py [--events 200000 1000000] [--repeats 5]

Databases are built once as ``$TMPDIR/torchscope_bench_paint_<N>.db``.

With ``--store PATH`` (a database such as ``scale.py --keep DIR`` leaves, with its 10M-event profile) it measures
every page of that profile instead, the same way: overview, operators, kernels, modules, memory (to the charts'
drawn bars or lines and the grid's first row, or the tab's message when the profile has nothing to show there) and
the timeline's first window, and says what each page showed.

    .venv/bin/python benchmarks/bench_paint.py --store /tmp/scale/scale_10000000.db [--profile 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_timeline import write_trace  # noqa: E402

from torchscope.dashboard.server import serve_in_subprocess  # noqa: E402
from torchscope.io.importing import import_path  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
PAINTED = """(expected) => {
    const charts = Array.from(document.querySelectorAll('#prof-overview .js-plotly-plot'));
    const drawn = '.main-svg .barlayer .trace path, .main-svg .scatterlayer .trace path';  // bars, or bands
    const painted = charts.filter(gd => gd.querySelector(drawn));
    return charts.length >= expected && painted.length === charts.length ? performance.now() : false;
}"""
CONTENT = """(alternatives) => {
    const holds = ([each, inner]) => {  // every element matching `each` (at least one) holds `inner`
        const all = Array.from(document.querySelectorAll(each));
        return all.length > 0 && all.every(el => !inner || el.querySelector(inner));
    };
    const found = alternatives.find(parts => parts.every(holds));
    return found ? [performance.now(), found.map(p => p.join(' ')).join(' + ')] : false;
}"""
"""Resolves, polled every animation frame, once each part of one alternative holds: ``[each, inner]``, every element
matching ``each`` (at least one) holds one matching ``inner`` (``""``: just there)."""
GRID_ROW = ["#prof-grid .ag-row", ""]
EMPTY = ["#prof-empty", ""]
DRAWN = ".main-svg .trace path"
PAGES = {
    "overview": ("", [[["#prof-overview .dash-graph", DRAWN]]]),
    "operators": ("?tab=operators", [[GRID_ROW], [EMPTY]]),
    "kernels": ("?tab=kernels", [[GRID_ROW], [EMPTY]]),
    "modules": ("?tab=modules", [[GRID_ROW], [EMPTY]]),
    "memory": ("?tab=memory", [[["#prof-memory", DRAWN], GRID_ROW], [EMPTY]]),
    "timeline": (None, [[["#tl-graph", DRAWN], ["#tl-minimap", ".main-svg image"]]]),
}
"""Each page of a profile: its query (the timeline: its own path), and what shows that its content is drawn (every
chart of the overview, the grid's first row, the memory chart and grid, the timeline's bars and minimap)."""
TIMINGS = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const resources = performance.getEntriesByType('resource');
    const scripts = resources.filter(e => e.initiatorType === 'script' || e.name.endsWith('.js'));
    const calls = resources.filter(e => e.name.includes('_dash-update-component'));
    const layout = resources.filter(e => e.name.endsWith('/_dash-layout'));
    return {
        html_ms: nav.responseEnd,
        scripts_ms: Math.max(0, ...scripts.map(e => e.responseEnd)),
        script_bytes: scripts.reduce((sum, e) => sum + (e.encodedBodySize || 0), 0),
        calls: calls.map(e => ({start: e.startTime, server: e.responseStart - e.requestStart, end: e.responseEnd,
                                bytes: e.encodedBodySize, decoded: e.decodedBodySize})),
        layout: layout.map(e => ({start: e.startTime, server: e.responseStart - e.requestStart, end: e.responseEnd,
                                  bytes: e.encodedBodySize, decoded: e.decodedBodySize, layout: true})),
    };
}"""


def profile_db(events: int) -> tuple[Path, int]:
    """The benchmark database of about ``events`` events (built on first use) and the id of its profile."""
    db = Path(tempfile.gettempdir()) / f"torchscope_bench_paint_{events}.db"
    if not db.exists():
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.pt.trace.json"
            write_trace(path, events)
            result = import_path(db, path, name=f"paint-{events}")
        print(f"  built {db}: {result.profiles[0]['events']:,} events in {time.perf_counter() - started:.0f} s")
    return db, 1


def open_overview(browser, url: str, charts: int) -> tuple[float, dict]:  # type: ignore[no-untyped-def]
    """Open the overview in a fresh browser context; ms from navigation start to every chart painted, and timings."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    try:
        page.goto(url, wait_until="commit")
        painted = page.wait_for_function(PAINTED, arg=charts, polling="raf", timeout=120_000).json_value()
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        timing = page.evaluate(TIMINGS)
        timing["script_s"], timing["task_s"] = metrics["ScriptDuration"], metrics["TaskDuration"]
        return float(painted), timing
    finally:
        context.close()


def open_page(browser, url: str, selectors: list[list[list[str]]]) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    """Open ``url`` in a fresh browser context; ms from navigation start to :data:`CONTENT`, and what was found."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(url, wait_until="commit")
        painted, found = page.wait_for_function(CONTENT, arg=selectors, polling="raf", timeout=120_000).json_value()
        return float(painted), found
    finally:
        context.close()


def bench_store(browser, db: Path, profile_id: int, repeats: int) -> None:  # type: ignore[no-untyped-def]
    """Every page of one profile of ``db``: first open after the server started and the median of later opens."""
    with ExitStack() as stack:
        base = stack.enter_context(serve_in_subprocess(db))
        print(f"{db} profile {profile_id}: navigation -> content drawn, fresh browser context each open")
        for name, (query, selectors) in PAGES.items():
            url = f"{base}/timeline/{profile_id}" if query is None else f"{base}/profile/{profile_id}{query}"
            first, _ = open_page(browser, url, selectors)
            later = [open_page(browser, url, selectors) for _ in range(repeats)]
            times = [t for t, _ in later]
            shown = "its message (nothing to show)" if later[0][1] == " ".join(EMPTY) else later[0][1]
            print(f"  {name:9s} first {first / 1e3:.2f} s, median {statistics.median(times) / 1e3:.2f} s "
                  f"(min {min(times) / 1e3:.2f}, max {max(times) / 1e3:.2f}) over {repeats}: {shown}")  # fmt: skip


def bench_size(browser, events: int, repeats: int) -> None:  # type: ignore[no-untyped-def]
    db, profile_id = profile_db(events)
    with ExitStack() as stack:
        url = stack.enter_context(serve_in_subprocess(db)) + f"/profile/{profile_id}"
        first, _ = open_overview(browser, url, 4)
        later = [open_overview(browser, url, 4) for _ in range(repeats)]
    painted = [p for p, _ in later]
    timing = sorted(later, key=lambda item: item[0])[len(later) // 2][1]  # the median open's breakdown
    calls = timing["calls"]
    carriers = calls + timing["layout"]  # the overview comes with a callback's answer, or with Dash's layout
    overview = max(carriers, key=lambda c: c["decoded"]) if carriers else None
    print(f"{events:,} events: overview painted {first / 1e3:.2f} s after navigation on the first open, "
          f"median {statistics.median(painted) / 1e3:.2f} s (min {min(painted) / 1e3:.2f}, max {max(painted) / 1e3:.2f}) "
          f"over {repeats} later opens")  # fmt: skip
    if overview is not None:
        before = [c for c in calls if c["start"] <= overview["start"]]
        carrier = " (with Dash's layout)" if overview.get("layout") else ""
        print(f"  median later open: HTML {timing['html_ms']:.0f} ms, scripts loaded {timing['scripts_ms']:.0f} ms "
              f"({timing['script_bytes'] / 1e6:.1f} MB on the wire); {len(calls)} callback requests, "
              f"{len(before)} up to the overview's; the overview's{carrier}: sent at {overview['start']:.0f} ms, "
              f"server {overview['server']:.0f} ms, {overview['bytes'] / 1e3:.0f} kB on the wire "
              f"({overview['decoded'] / 1e3:.0f} kB JSON), arrived {overview['end']:.0f} ms; drawn "
              f"{statistics.median(painted) - overview['end']:.0f} ms after it arrived; main thread busy "
              f"{timing['task_s'] * 1e3:.0f} ms in all, {timing['script_s'] * 1e3:.0f} ms of it running scripts")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", type=Path, help="measure every page of a profile of this database instead")
    parser.add_argument("--profile", type=int, default=1, help="the profile of --store (default 1)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("TORCHSCOPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        if args.store is not None:
            bench_store(browser, args.store, args.profile, args.repeats)
        for events in [] if args.store is not None else args.events:
            bench_size(browser, events, args.repeats)
        browser.close()


if __name__ == "__main__":
    main()
