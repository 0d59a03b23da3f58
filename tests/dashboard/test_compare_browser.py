"""The compare page served by ``torchscope serve``, in real headless Chromium: runs, profiles, bad ids, the form."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from runs import train_pair_run as train
from doc_shots import doc_screenshot
from traces import gpu_shaped_trace, record_cpu_trace

from torchscope.io.importing import import_path

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def compare_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    db = tmp_path_factory.mktemp("compare-browser") / "torchscope.db"
    a, b = train(db, "two-layers", extra=False), train(db, "three-layers", extra=True)
    return db, a["id"], b["id"]


def _cell(tab, grid: str, row: int, col: str) -> str:
    return tab.locator(f"#{grid} .ag-center-cols-container .ag-row[row-index='{row}'] [col-id='{col}']").inner_text()


def test_run_comparison_shows_config_scalars_ops_and_the_added_layer(compare_db, serve, page) -> None:
    db, a, b = compare_db
    url = serve(db)
    tab, problems = page
    tab.goto(f"{url}/compare?a={a}&b={b}")
    tab.wait_for_selector("#compare-scalars .js-plotly-plot")
    assert tab.locator("#compare-side-a").inner_text().endswith(f"run {a} (two-layers)")
    assert tab.locator("#compare-side-b").inner_text().endswith(f"run {b} (three-layers)")
    config = [row.inner_text().split("\t") for row in tab.locator("#compare-config tbody tr").all()]
    assert config == [["extra_width", "only B", "-", "8"], ["layers", "changed", "2", "3"]]
    chart = tab.locator("#compare-scalars .chart-cell[data-tag='loss'] .js-plotly-plot")
    assert chart.locator(".gtitle").text_content() == "loss"
    assert tab.evaluate("(el) => el.data.map(t => t.name)", chart.element_handle()) == ["A", "B", "B - A"]
    assert tab.locator("#compare-modules-b").inner_text() == "modules only B: extra (Linear)"
    tab.wait_for_selector("#compare-graph-nodes .ag-row")
    keys = tab.locator("#compare-graph-nodes .ag-center-cols-container [col-id='key']").all_inner_texts()
    assert "module:extra" in keys and "op:extra/F.linear#0" in keys
    tab.wait_for_selector("#compare-ops .ag-row")
    # the grid pages 20 rows: narrow it to the row of interest as a user would, with the grid's quick filter
    tab.evaluate("dash_ag_grid.getApi('compare-ops').setGridOption('quickFilterText', 'aten::linear')")
    linear = tab.locator("#compare-ops .ag-center-cols-container .ag-row").first
    tab.wait_for_function("document.querySelectorAll('#compare-ops .ag-center-cols-container .ag-row').length === 1")
    assert linear.locator("[col-id='key']").inner_text() == "aten::linear"
    assert [linear.locator(f"[col-id='{c}']").inner_text() for c in ("calls_a", "calls_b", "calls_delta")] == ["4", "6", "+2"]
    tab.wait_for_selector("#compare-module-times .ag-row")
    extra = tab.locator("#compare-module-times .ag-center-cols-container .ag-row", has_text="extra").first
    assert [extra.locator(f"[col-id='{c}']").inner_text() for c in ("key", "status", "calls_a", "calls_b")] == [
        "extra", "only B", "0", "2"
    ]  # fmt: skip
    assert tab.locator("#compare-graph a", has_text="coloured by change").get_attribute("href") == f"/graph/{b}?compare={a}"
    assert not problems, problems


def test_profile_comparison_of_two_recorded_traces(compare_db, gpu_trace: Path, tmp_path: Path, serve, page) -> None:
    import torchscope

    db, _, _ = compare_db
    five = gpu_shaped_trace(record_cpu_trace(tmp_path / "b.json", steps=5), tmp_path / "five_steps.json.gz")
    pa = import_path(db, gpu_trace).profiles[0]["id"]
    pb = import_path(db, five).profiles[0]["id"]
    with torchscope.open(db) as store:
        kernels, ops = store.diffs.kernel_diff(pa, pb), store.diffs.op_diff(pa, pb)
    url = serve(db)
    tab, problems = page
    tab.goto(f"{url}/compare?a=p{pa}&b=profile:{pb}")
    tab.wait_for_selector("#compare-kernels .ag-row")
    assert "gpu_train" in tab.locator("#compare-side-a").inner_text()
    assert "five_steps" in tab.locator("#compare-side-b").inner_text()
    assert tab.locator("#compare-scalars").count() == 0  # two profiles: no run-level sections
    top = kernels.iloc[0]  # B trained 5 steps, A 4: every kernel ran more often in B, the largest change first
    assert [_cell(tab, "compare-kernels", 0, c) for c in ("key", "status", "calls_a", "calls_b")] == [
        top["name"], "both", str(top["calls_a"]), str(top["calls_b"])
    ]  # fmt: skip
    assert tab.locator("#compare-kernels-totals").inner_text().startswith(
        f"{len(kernels)} rows: 0 only in A, 0 only in B; total total_ns:"
    )
    tab.wait_for_selector("#compare-ops .ag-row")
    assert _cell(tab, "compare-ops", 0, "key") == ops["name"].iloc[0]
    doc_screenshot(tab, "compare")
    assert not problems, problems


def test_profile_comparison_of_the_reference_traces(compare_db, shared_data: Path, serve, page) -> None:
    db, _, _ = compare_db
    kineto = shared_data / "kineto"
    pa = import_path(db, kineto / "compare_base.json.gz").profiles[0]["id"]
    pb = import_path(db, kineto / "compare_test.json.gz").profiles[0]["id"]
    url = serve(db)
    tab, problems = page
    tab.goto(f"{url}/compare?a=p{pa}&b=profile:{pb}")
    tab.wait_for_selector("#compare-kernels .ag-row")
    assert "compare_base" in tab.locator("#compare-side-a").inner_text()
    assert tab.locator("#compare-scalars").count() == 0  # two profiles: no run-level sections
    assert "CUDAFunctor_add<int>" in _cell(tab, "compare-kernels", 0, "key")
    assert [_cell(tab, "compare-kernels", 0, c) for c in ("status", "calls_a", "calls_b", "time_delta", "change")] == [
        "both", "3", "2", "\u22124.0", "\u221233.3%"
    ]  # d3-format writes a typographic minus  # fmt: skip
    assert tab.locator("#compare-kernels-totals").inner_text().startswith(
        "3 rows: 0 only in A, 0 only in B; total total_ns: 432.0 µs → 428.0 µs (-4.0 µs"
    )
    tab.wait_for_selector("#compare-ops .ag-row")
    assert [_cell(tab, "compare-ops", i, "key") for i in range(3)] == ["All2All_Pooled_Req", "AddmmBackward0", "CatBackward0"]
    assert _cell(tab, "compare-ops", 0, "status") == "only B"
    row0 = "#compare-{} .ag-center-cols-container .ag-row[row-index='0'] [col-id='{}']"
    assert "status-only-b" in tab.locator(row0.format("ops", "status")).get_attribute("class")
    assert "delta-slower" in tab.locator(row0.format("ops", "time_delta")).get_attribute("class")
    assert "delta-faster" in tab.locator(row0.format("kernels", "time_delta")).get_attribute("class")
    bars = tab.locator("#compare-ops-bars .js-plotly-plot")
    bars.wait_for()
    y = tab.evaluate("(el) => el.data[0].y", bars.element_handle())
    assert y == ["CatBackward0", "AddmmBackward0", "All2All_Pooled_Req"]  # largest change drawn at the top
    assert "+0.000 ms" in tab.locator("#compare-step-delta").inner_text()
    tab.click("#compare-shapes")  # the op diff split by input shapes, as a shareable URL
    tab.wait_for_url(re.compile(r".*&shapes=1$"))
    tab.wait_for_function(
        "document.querySelector(\"#compare-ops .ag-row[row-index='0'] [col-id='key']\")?.innerText"
        " === 'All2All_Pooled_Req [[2048,34820]]'"
    )
    assert tab.locator("#compare-shapes").text_content() == "ungroup input shapes"
    assert not problems, problems


def test_bad_and_unknown_ids_and_the_form(compare_db, serve, page) -> None:
    db, a, b = compare_db
    url = serve(db)
    tab, problems = page
    tab.goto(f"{url}/compare?a={a}&b=zz")
    tab.wait_for_selector(".error-panel")
    assert tab.locator(".error-code").inner_text() == "400"
    assert "'zz' is not a run or profile id" in tab.locator(".error-message").inner_text()
    tab.goto(f"{url}/compare?a={a}&b=p999")
    tab.wait_for_selector(".error-panel")
    assert tab.locator(".error-code").inner_text() == "404"
    assert "no profile 999" in tab.locator(".error-message").inner_text()
    tab.goto(f"{url}/compare")
    tab.wait_for_selector("#compare-a")
    choices = tab.locator("#compare-choices option")
    offered = {choices.nth(i).get_attribute("value"): choices.nth(i).get_attribute("label") for i in range(choices.count())}
    assert (offered[str(a)], offered[str(b)]) == (f"run {a}: two-layers", f"run {b}: three-layers")
    runs = [int(v) for v in offered if v.isdigit()]
    assert runs == sorted(runs, reverse=True)  # newest first
    tab.fill("#compare-a", str(b))
    tab.fill("#compare-b", str(a))
    tab.click("#compare-go")
    tab.wait_for_url(re.compile(rf".*/compare\?a={b}&b={a}$"))
    tab.wait_for_selector("#compare-side-a")
    assert tab.locator("#compare-side-a").inner_text().endswith(f"run {b} (three-layers)")
    assert tab.locator("#compare-modules-a").inner_text() == "modules only A: extra (Linear)"
    assert not problems, problems
