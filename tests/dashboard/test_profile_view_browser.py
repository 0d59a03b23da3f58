"""The profile page in real headless Chromium: overview of an imported GPU trace, kernels grid (sort, search,
timeline link), and the memory and modules tabs of a live CPU profile. Expectations come from the trace JSON or
from the raw allocator events."""

from __future__ import annotations

import collections
import csv
import io
import re
import warnings
from pathlib import Path

import pytest
import torch

from doc_shots import doc_screenshot
from traces import load_trace, reference

import torchscope
from torchscope.io.importing import import_path

pytestmark = pytest.mark.browser
KINETO = "a100_alexnet.json.gz"


def _kernels(path: Path) -> dict[str, list[float]]:
    events = load_trace(path)["traceEvents"]
    durations: dict[str, list[float]] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "kernel":
            durations[e["name"]].append(e["dur"])
    return durations


def _first_cell(tab, col: str) -> str:
    return tab.locator(f"#prof-grid .ag-center-cols-container .ag-row[row-index='0'] [col-id='{col}']").inner_text()


@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("a100_alexnet")], indirect=True)
def test_overview_and_kernels_grid_of_an_imported_gpu_trace(db_path: Path, trace_file: Path, serve, page) -> None:
    kernels = _kernels(trace_file)
    device = load_trace(trace_file)["deviceProperties"][0]["name"]
    import_path(db_path, trace_file)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/profile/1")
    tab.wait_for_selector("#prof-breakdown .js-plotly-plot")
    meta = tab.locator(".meta").first.inner_text()
    assert f"{sum(len(v) for v in kernels.values())} kernels" in meta and device in meta
    doc_screenshot(tab, "profile")
    if trace_file.name == "a100_alexnet.json.gz":
        # CUDA runtime calls fill most of this trace, but they are CUDA start-up (context, streams, first launches
        # loading modules), not launches: the hint says so and does not call it launch bound
        hints = tab.locator("#prof-hints").inner_text()
        assert "Whole profile is mostly CUDA set-up" in hints and "launch bound" not in hints
    top = tab.evaluate("document.querySelector('#prof-top-kernels .js-plotly-plot')._fullData[0].customdata[0]")
    assert top == max(kernels, key=lambda n: sum(kernels[n]))

    tab.click("#tab-kernels")
    tab.wait_for_url(re.compile(r".*/profile/1\?tab=kernels$"))
    tab.wait_for_selector("#prof-grid .ag-row")
    assert tab.locator("#prof-rows").inner_text() == f"{len(kernels)} rows"
    assert _first_cell(tab, "name") == max(kernels, key=lambda n: sum(kernels[n]))  # sorted by total time
    header = tab.locator("#prof-grid .ag-header-cell[col-id='mean_us'] .ag-header-cell-label")
    header.click()  # ascending
    tab.wait_for_function(
        "document.querySelector(\"#prof-grid .ag-header-cell[col-id='mean_us']\").getAttribute('aria-sort') === 'ascending'"
    )
    assert _first_cell(tab, "name") == min(kernels, key=lambda n: sum(kernels[n]) / len(kernels[n]))
    header.click()  # descending
    tab.wait_for_function(
        "document.querySelector(\"#prof-grid .ag-header-cell[col-id='mean_us']\").getAttribute('aria-sort') === 'descending'"
    )
    longest = max(kernels, key=lambda n: sum(kernels[n]) / len(kernels[n]))
    assert _first_cell(tab, "name") == longest
    mean = sum(kernels[longest]) / len(kernels[longest])
    shown = float(_first_cell(tab, "mean_us").replace(",", ""))
    assert shown == pytest.approx(mean, abs=0.0005 + 1e-9)  # shown to 3 decimals: off by half a unit at most

    with tab.expect_download() as download:
        tab.click("#prof-csv")
    assert download.value.suggested_filename == "profile1_kernels.csv"
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert {r["kernel"]: int(r["Calls"]) for r in exported} == {n: len(d) for n, d in kernels.items()}
    assert exported[0]["kernel"] == longest  # in the grid's current order

    tab.fill("#prof-search", "gemm")
    expected = sum(1 for n in kernels if "gemm" in n.lower())
    tab.wait_for_function(f"document.querySelectorAll('#prof-grid .ag-center-cols-container .ag-row').length === {expected}")

    # a row's timeline link opens the timeline on every call of that kernel, highlighted
    tab.locator("#prof-grid .ag-row[row-index='0'] [col-id='links'] a", has_text="timeline").click()
    tab.wait_for_url(re.compile(r".*/timeline/1\?start=\d+&end=\d+&q=.+"))
    tab.wait_for_selector("#tl-graph .js-plotly-plot")
    first_gemm = [n for n in sorted(kernels, key=lambda n: -sum(kernels[n]) / len(kernels[n])) if "gemm" in n.lower()][0]
    assert tab.input_value("#tl-search") == first_gemm
    assert f"{len(kernels[first_gemm])} matches" in tab.locator("#tl-status").inner_text()
    doc_screenshot(tab, "timeline")
    assert not problems, problems


def _live_profile(db: Path) -> int:
    run = torchscope.init("live", db=db)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        with run.profile(wait=1, warmup=1, active=2, record_shapes=True, profile_memory=True, with_stack=True) as prof:
            for _ in range(4):
                model(torch.randn(4, 8)).sum().backward()
                opt.step()
                opt.zero_grad()
                prof.step()
    run.finish()
    return run.id


def test_memory_modules_and_operators_tabs_of_a_live_profile(db_path: Path, serve, page) -> None:
    run_id = _live_profile(db_path)
    with torchscope.open(db_path) as store:
        pid = int(store.profiles(run_id)["id"].iloc[0])
        raw = store.memory_timeline(pid)
    peak = int(raw["allocated"].max())
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/profile/{pid}?tab=memory")
    tab.wait_for_selector("#prof-memory .js-plotly-plot")
    assert f"peak CPU: {peak / 2**20:.3f} MiB" in tab.locator("#prof-peaks").inner_text()
    tab.wait_for_selector("#prof-grid .ag-row")
    # every allocation and free is attributed to exactly one row
    totals = tab.evaluate(
        "(() => { let a = 0, f = 0, b = 0; dash_ag_grid.getApi('prof-grid').forEachNode(n => { a += n.data.allocations;"
        " f += n.data.frees; b += n.data.allocated_bytes; }); return [a, f, b]; })()"
    )
    assert totals[:2] == [int((raw["bytes"] > 0).sum()), int((raw["bytes"] < 0).sum())]
    assert totals[2] == int(raw.loc[raw["bytes"] > 0, "bytes"].sum())
    assert _first_cell(tab, "op").startswith("aten::")

    tab.goto(f"{url}/profile/{pid}?tab=modules")
    tab.wait_for_selector("#prof-grid .ag-row")
    modules = sorted(tab.locator("#prof-grid .ag-center-cols-container [col-id='module']").all_inner_texts())
    assert modules == ["Sequential_0", "Sequential_0/Linear_0", "Sequential_0/Linear_1", "Sequential_0/ReLU_0"]
    graph = tab.locator("#prof-grid a", has_text="graph").first.get_attribute("href")
    assert re.fullmatch(rf"/graph/{run_id}\?node=Sequential_0(%2F\w+)?", graph)

    tab.goto(f"{url}/profile/{pid}?tab=operators&shapes=1")
    tab.wait_for_selector("#prof-grid .ag-row")
    tab.fill("#prof-search", "aten::linear")
    tab.wait_for_function("document.querySelectorAll('#prof-grid .ag-center-cols-container .ag-row').length === 2")
    shapes = sorted(tab.locator("#prof-grid .ag-center-cols-container [col-id='input_shapes']").all_inner_texts())
    assert shapes == ["[[4,16],[2,16],[2]]", "[[4,8],[16,8],[16]]"]
    tab.goto(f"{url}/profile/{pid}?tab=nope")
    tab.wait_for_selector(".error-panel")
    assert tab.locator(".error-code").inner_text() == "400"
    tab.goto(f"{url}/profile/{pid + 1}")
    tab.wait_for_function("document.querySelector('.error-code')?.innerText === '404'")
    assert f"no profile {pid + 1}" in tab.locator(".error-message").inner_text()
    assert not problems, problems


def _served_live_profile(db_path: Path, serve) -> tuple[str, int]:
    """The server's URL and the profile id of a live run's profile."""
    run_id = _live_profile(db_path)
    with torchscope.open(db_path) as store:
        pid = int(store.profiles(run_id)["id"].iloc[0])
    return serve(db_path), pid


def _plotly_scripts(tab) -> list[str]:
    """The plotly.js bundles and the component libraries loaded on demand that the page has loaded."""
    names = tab.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    kinds = {"/plotly-basic.": "basic", "/plotly.min.js": "full", "/dash_ag_grid/dash_ag_grid.": "ag-grid",
             "/dash_cytoscape/dash_cytoscape.": "cytoscape"}  # fmt: skip
    return sorted({kind for n in names for part, kind in kinds.items() if part in n})


def test_every_profile_tab_is_drawn_by_plotlys_basic_bundle_and_the_overview_comes_with_the_layout(
    db_path: Path, serve, page
) -> None:
    url, pid = _served_live_profile(db_path, serve)
    tab, problems = page
    answers: list[tuple[str, int]] = []
    tab.on("response", lambda r: answers.append((r.url, r.status)) if "/_dash-update-component" in r.url else None)
    tab.goto(f"{url}/profile/{pid}")
    tab.wait_for_selector("#prof-breakdown .js-plotly-plot .barlayer .trace path", state="attached")
    # the page came with Dash's layout: the router's first callback (if answered yet) found it shown, and did nothing
    assert [status for _, status in answers] in ([], [204])
    assert _plotly_scripts(tab) == ["basic"]
    # the memory chart is an SVG line of at most 5,000 points a device: the basic bundle draws it, no other loads
    tab.click("#tab-memory")
    tab.wait_for_selector("#prof-memory .js-plotly-plot .scatterlayer .trace path", state="attached")
    assert tab.evaluate("document.querySelector('#prof-memory .js-plotly-plot')._fullData[0].type") == "scatter"
    assert _plotly_scripts(tab) == ["ag-grid", "basic"]  # the memory tab has a grid: AG Grid loaded
    tab.click("#tab-overview")
    tab.wait_for_selector("#prof-breakdown .js-plotly-plot .barlayer .trace path", state="attached")
    assert tab.evaluate("!!document.querySelector('#prof-top-ops .barlayer path')")
    assert not problems, problems


def test_a_grid_tab_loads_no_plotly_until_a_chart_asks_and_the_timeline_needs_only_the_basic_bundle(
    db_path: Path, serve, page
) -> None:
    url, pid = _served_live_profile(db_path, serve)
    tab, problems = page
    tab.goto(f"{url}/profile/{pid}?tab=operators")
    tab.wait_for_selector("#prof-grid .ag-row", state="attached")
    tab.wait_for_load_state("networkidle")
    assert _plotly_scripts(tab) == ["ag-grid"]  # no chart on the tab: plotly.js is not even fetched
    assert tab.evaluate("typeof window.Plotly.newPlot") == "undefined"  # a promise-like, until a chart asks
    tab.click("#tab-overview")  # the overview's charts ask for it, and draw
    tab.wait_for_selector("#prof-breakdown .js-plotly-plot .barlayer .trace path", state="attached")
    assert _plotly_scripts(tab) == ["ag-grid", "basic"]
    assert tab.evaluate("typeof window.Plotly.newPlot") == "function"

    tab.goto(f"{url}/timeline/{pid}")  # bars, an image for the density and the minimap: the basic bundle draws all
    tab.wait_for_selector("#tl-graph .js-plotly-plot .barlayer .trace path", state="attached")
    tab.wait_for_selector("#tl-minimap .js-plotly-plot image", state="attached")
    tab.wait_for_load_state("networkidle")
    assert _plotly_scripts(tab) == ["basic"]
    assert not problems, problems
