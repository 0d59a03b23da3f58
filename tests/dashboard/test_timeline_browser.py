"""The timeline page in real headless Chromium, on the imported A100 trace: URL window, mouse zoom, click, search.

Expected values come from the trace JSON itself (the longest kernel, the runtime call with its correlation id).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from traces import load_trace, reference

import torchscope
from torchscope.io.importing import import_path

pytestmark = pytest.mark.browser


def _trace(path: Path) -> dict:
    events = load_trace(path)["traceEvents"]
    t0 = min(e["ts"] for e in events if e.get("ph") == "X")
    kernels = [e for e in events if e.get("cat") == "kernel"]
    longest = max(kernels, key=lambda e: e["dur"])
    launch = next(e for e in events if e.get("cat") == "cuda_runtime" and e["args"].get("correlation") == longest["args"]["correlation"])
    return {
        "t0": t0, "kernel": longest, "launch": launch, "events": sum(1 for e in events if e.get("ph") == "X" or (e.get("ph") == "i" and e.get("name") != "[memory]")),
        "launch_calls": sum(1 for e in events if e.get("name") == "cudaLaunchKernel"),
        "duration_ms": (max(e["ts"] + e.get("dur", 0) for e in events if e.get("ph") in ("X", "i")) - t0) / 1e3,
    }  # fmt: skip


def _ns(us: float) -> int:
    return round(us * 1000)


def _at(ts: float, t0: float) -> int:
    """ns from ``t0`` to ``ts`` (both µs) as the importer counts them: each in integer ns, then subtracted."""
    def whole(us: float) -> int:
        return math.floor(us) * 1000 + round((us - math.floor(us)) * 1000)

    return whole(ts) - whole(t0)


def _graph_js(tab, expr: str):
    return tab.evaluate(f"(() => {{ const gd = document.querySelector('#tl-graph .js-plotly-plot'); return {expr}; }})()")


def _pixel(tab, x_ms: float, row: float) -> tuple[float, float]:
    """Page coordinates of a point in the timeline's data coordinates."""
    return tuple(
        _graph_js(
            tab,
            f"(() => {{ const r = gd.getBoundingClientRect(), L = gd._fullLayout; return [r.left + L._size.l + "
            f"L.xaxis.l2p({x_ms}), r.top + L._size.t + L.yaxis.l2p({row})]; }})()",
        )
    )


def _click_until(tab, x_ms: float, row: float, selector: str, tries: int = 3) -> None:
    """Click a point of the timeline until ``selector`` shows (a busy machine can drop a click on a redrawing plot)."""
    for attempt in range(tries):
        tab.mouse.click(*_pixel(tab, x_ms, row))
        try:
            tab.wait_for_selector(selector, timeout=10_000)
            return
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError; retried, then raised below
            if attempt == tries - 1:
                raise
            tab.wait_for_timeout(400)


@pytest.mark.parametrize("trace_file", reference("a100_alexnet"), indirect=True)  # its windows and clicks fit this trace
def test_timeline_zooms_with_the_mouse_and_shows_a_clicked_kernel_with_its_launch(
    db_path: Path, trace_file: Path, serve, page
) -> None:
    facts = _trace(trace_file)
    import_path(db_path, trace_file)
    kernel, launch = facts["kernel"], facts["launch"]
    k_start = _at(kernel["ts"], facts["t0"])
    with torchscope.open(db_path) as store:
        found = store.events(1, k_start, k_start + 1)
        kernel_id = int(found[(found["kind"] == "kernel") & (found["start"] == k_start)]["id"].iloc[0])
    url = serve(db_path)
    tab, problems = page

    # the whole profile first: every event is drawn or merged into a density block
    tab.goto(f"{url}/timeline/1")
    tab.wait_for_selector("#tl-graph .js-plotly-plot")
    assert f"{facts['events']:,} events" in tab.locator("#tl-status").inner_text()

    # a URL window around the kernel (up to 200 ms, inside the profile), then a mouse drag zooms into 3 ms around it
    half = int(min(100_000_000, k_start, facts["duration_ms"] * 1e6 - k_start - _ns(kernel["dur"])))
    a, b = k_start - half, k_start + half
    tab.goto(f"{url}/timeline/1?start={a}&end={b}")
    tab.wait_for_selector("#tl-graph .js-plotly-plot")
    tab.wait_for_load_state("networkidle")  # the graph's first relayout (autosize) has been answered
    assert _graph_js(tab, "gd.layout.xaxis.range") == pytest.approx([a / 1e6, b / 1e6])
    row = _graph_js(tab, "gd._fullData.find(t => t.name === 'kernel').y[0]")
    x0, y = _pixel(tab, (k_start - 1_000_000) / 1e6, row)
    x1, _ = _pixel(tab, (k_start + _ns(kernel["dur"]) + 1_000_000) / 1e6, row)
    tab.mouse.move(x0, y)
    tab.mouse.down()
    tab.mouse.move((x0 + x1) / 2, y, steps=4)
    tab.mouse.move(x1, y, steps=4)
    tab.mouse.up()
    tab.wait_for_function("document.querySelector('#tl-status').innerText.startsWith('3ms window')")
    lo, hi = _graph_js(tab, "gd.layout.xaxis.range")
    assert lo * 1e6 < k_start and hi * 1e6 > k_start + _ns(kernel["dur"]) and (hi - lo) < 3.5
    ids = _graph_js(tab, "Array.from(gd._fullData.find(t => t.name === 'kernel').customdata, c => Number(c[0]))")
    assert kernel_id in ids  # drawn as its own bar now, not merged
    tab.wait_for_load_state("networkidle")

    # click the kernel's bar: its details, its launching runtime call, and the arrow between them
    i = ids.index(kernel_id)
    row = _graph_js(tab, f"gd._fullData.find(t => t.name === 'kernel').y[{i}]")
    # plotly counts a click within 300 ms of the drag's mouse-up as a double click (which resets the zoom)
    tab.wait_for_timeout(400)
    _click_until(tab, (k_start + _ns(kernel["dur"]) / 2) / 1e6, row, f"#tl-event[data-event='{kernel_id}']")
    details = tab.locator("#tl-details").inner_text()
    assert kernel["name"] in details
    assert f"{kernel['dur']:.3f} µs" in details
    assert f"grid\t{','.join(str(g) for g in kernel['args']['grid'])}" in details
    launched_by = tab.locator("#tl-details .tl-link").first.inner_text()
    assert launched_by.startswith(f"cudaLaunchKernel (cuda_runtime, {launch['dur']:.3f} µs at {_ns(launch['ts'] - facts['t0']) / 1e6:.6f} ms")
    arrow = _graph_js(tab, "gd.layout.annotations.map(a => [a.ax, a.x])")
    assert arrow == [[pytest.approx(_at(launch["ts"], facts["t0"]) / 1e6), pytest.approx(k_start / 1e6)]]
    assert re.search(rf"event={kernel_id}", tab.locator("#tl-share").get_attribute("href"))
    assert not problems, problems


@pytest.mark.parametrize("trace_file", reference("a100_alexnet"), indirect=True)  # its windows and clicks fit this trace
def test_timeline_search_from_the_url_highlights_every_match(db_path: Path, trace_file: Path, serve, page) -> None:
    facts = _trace(trace_file)
    import_path(db_path, trace_file)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/timeline/1?q=cudaLaunchKernel")
    tab.wait_for_selector("#tl-graph .js-plotly-plot")
    tab.wait_for_load_state("networkidle")  # a search typed before the first callbacks settle can be overwritten
    assert f"{facts['launch_calls']} matches" in tab.locator("#tl-status").inner_text()
    marks = _graph_js(tab, "gd._fullData.find(t => t.name === 'search matches').x.length")
    assert marks == facts["launch_calls"]
    tab.fill("#tl-search", "no such event anywhere")
    tab.press("#tl-search", "Enter")
    tab.locator("#tl-search").blur()  # the debounced box also commits on blur, should Enter beat React to the text
    tab.wait_for_function("document.querySelector('#tl-status').innerText.endsWith(' 0 matches')")

    # a click on a grey density block zooms into it
    tab.goto(f"{url}/timeline/1")
    tab.wait_for_selector("#tl-graph .js-plotly-plot")
    tab.wait_for_load_state("networkidle")
    blocks = _graph_js(tab, "gd._fullData.find(t => t.name === 'merged (< 1 px)')")
    widest = max(range(len(blocks["customdata"])), key=lambda i: blocks["customdata"][i][3] - blocks["customdata"][i][2])
    _, count, lo, hi = blocks["customdata"][widest]
    tab.mouse.click(*_pixel(tab, (lo + hi) / 2e6, blocks["y"][widest]))
    tab.wait_for_function(f"document.querySelector('#tl-share').getAttribute('href').includes('start={lo}&end={hi}')")
    assert _graph_js(tab, "gd.layout.xaxis.range") == pytest.approx([lo / 1e6, hi / 1e6])

    # a click on the minimap centres the view there, keeping its width
    mini = tab.locator("#tl-minimap .nsewdrag").bounding_box()
    tab.mouse.click(mini["x"] + mini["width"] * 0.75, mini["y"] + mini["height"] / 2)
    tab.wait_for_function(f"!document.querySelector('#tl-share').getAttribute('href').includes('start={lo}&')")
    a, b = _graph_js(tab, "gd.layout.xaxis.range")
    assert (b - a) * 1e6 == pytest.approx(hi - lo, abs=2)
    assert (a + b) / 2 == pytest.approx(0.75 * facts["duration_ms"], rel=0.02)

    tab.goto(f"{url}/timeline/99")
    tab.wait_for_selector(".error-panel")
    assert tab.locator(".error-code").inner_text() == "404"
    assert not problems, problems
