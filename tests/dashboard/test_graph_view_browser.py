"""The graph page in real headless Chromium: open, expand a module, inspect a node, search, jump to the first NaN."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from legend_check import nodes_under_legend
from models import LogBlock, NanNet, line_of, record_nan_run
from doc_shots import doc_screenshot

import torchscope
from torchscope.dashboard.views.graph.model import captured_model

pytestmark = pytest.mark.browser
Serve = Callable[[Path], str]
Page = tuple[Any, Any]

CY = (
    "[document.getElementById('graph-cy'), ...document.querySelectorAll('#graph-cy div')]"
    ".find(d => d._cyreg && d._cyreg.cy)._cyreg.cy"
)  # the Cytoscape instance dash-cytoscape draws with (cytoscape.js registers it on its container)
LOG_LINE = line_of(LogBlock.forward, "# <log>")


def _ids(db: Path, run_id: int, step: int) -> dict[str, int]:
    with torchscope.open(db) as store:
        model = captured_model(*store.graph(run_id, step=step))
    return {**model.by_name, **model.by_module}


def _soon(expression: str) -> str:
    """A page function for ``wait_for_function``: ``expression``, false while the graph is not drawn yet."""
    return f"(() => {{ try {{ return {expression}; }} catch (e) {{ return false; }} }})()"


def _top_centre(tab: Any, node_id: int) -> list[float]:
    """Where a node or box is drawn: the middle of its top edge, in canvas pixels."""
    box = f"{CY}.getElementById('{node_id}').renderedBoundingBox({{includeLabels: false, includeOverlays: false}})"
    return tab.evaluate(f"(() => {{ const b = {box}; return [(b.x1 + b.x2) / 2, b.y1]; }})()")


def _click_node(tab: Any, node_id: int) -> None:
    tab.wait_for_function(_soon(f"{CY}.getElementById('{node_id}').nonempty()"))
    box = tab.locator("#graph-cy").bounding_box()
    # an open box is clicked in its left padding (where none of its children is), halfway down its visible part
    x, y = tab.evaluate(
        f"(() => {{ const n = {CY}.getElementById('{node_id}'); if (!n.isParent()) {{ const p = n.renderedPosition(); "
        "return [p.x, p.y]; } const b = n.renderedBoundingBox({includeLabels: false, includeOverlays: false}); "
        "const h = n.cy().height(); return [b.x1 + 6, (Math.max(b.y1, 0) + Math.min(b.y2, h)) / 2]; })()"
    )
    tab.mouse.click(box["x"] + x, box["y"] + y)


def _wait_count(tab: Any, n: int) -> None:
    tab.wait_for_function(_soon(f"{CY}.nodes().length === {n}"))


def test_open_expand_a_module_and_inspect_an_op(db_path: Path, serve: Serve, page: Page) -> None:
    run_id = record_nan_run(db_path)
    ids = _ids(db_path, run_id, 9)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/graph/{run_id}")
    _wait_count(tab, 6)  # the root box, input, two closed modules, sum, output
    assert tab.locator("#graph-step").inner_text().strip() == "step 9 (v1)"
    before = _top_centre(tab, ids["encoder.block.act"])
    _click_node(tab, ids["encoder.block.act"])
    _wait_count(tab, 11)  # act opened: its closed proj and four ops, inside a second box
    # the opened box is drawn where the closed module was: same top edge, same centre line
    act = ids["encoder.block.act"]
    tab.wait_for_function(f"document.getElementById('graph-cy').dataset.focused?.startsWith('{act}:')")
    after = _top_centre(tab, act)
    assert after == pytest.approx(before, abs=6)  # a closed module and a box have borders of different widths
    assert tab.evaluate(f"{CY}.getElementById('{ids['encoder.block.act']}').isParent()")
    assert tab.locator("#graph-crumbs").inner_text().split() == ["NanNet", "›", "encoder.block.act"]
    _click_node(tab, ids["log_0"])
    tab.wait_for_function("document.querySelector('#inspector-title')?.innerText === 'log_0'")
    assert tab.locator(".fact-op").inner_text() == "torch.log"
    assert tab.locator(".fact-module-path").inner_text() == "encoder.block.act"
    assert tab.locator(".fact-source").inner_text() == f"models.py:{LOG_LINE}"
    tab.wait_for_url(f"{url}/graph/{run_id}?step=9&node=log_0")  # the address bar follows: a shareable link
    rows = tab.locator(".stats-table tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).inner_text().split()[:5] == ["value", "[8,", "4]", "float32", "cpu"]
    assert rows.nth(1).inner_text().split()[0] == "grad"
    tab.wait_for_selector("#inspector-history .js-plotly-plot")
    titles = sorted(t.text_content() for t in tab.locator("#inspector-history .annotation-text").all())
    assert titles == ["L2 norm", "NaN / Inf count", "mean", "std"]
    tab.wait_for_selector("#inspector-histogram .js-plotly-plot")
    doc_screenshot(tab, "graph")
    # hovering an edge shows the shapes it carries
    box = tab.locator("#graph-cy").bounding_box()
    edge = f"{CY}.getElementById('e{ids['abs_0']}-{ids['add_0']}')"
    mx, my = tab.evaluate(f"(() => {{ const m = {edge}.renderedMidpoint(); return [m.x, m.y]; }})()")
    tab.mouse.move(box["x"] + mx, box["y"] + my)
    tab.wait_for_function("document.getElementById('graph-hover').innerText === 'tensor [8, 4]'")
    # closing the module again shows the first view
    _click_node(tab, ids["encoder.block.act"])
    _wait_count(tab, 6)
    assert not problems, problems


def test_jump_to_first_anomaly_names_the_planted_log(db_path: Path, serve: Serve, page: Page) -> None:
    run_id = record_nan_run(db_path)
    ids = _ids(db_path, run_id, 7)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/graph/{run_id}?color=anomaly")
    _wait_count(tab, 6)
    tab.locator("#graph-jump").click()
    tab.wait_for_function("document.querySelector('#inspector-title')?.innerText === 'log_0'")
    assert tab.locator(".fact-op").inner_text() == "torch.log"
    assert tab.locator(".fact-module-path").inner_text() == "encoder.block.act"
    assert tab.locator(".fact-source").inner_text() == f"models.py:{LOG_LINE}"
    assert tab.locator("#inspector-anomaly").inner_text() == (
        f"First NaN of step 7 (forward) comes from torch.log in encoder.block.act at models.py:{LOG_LINE}"
    )
    tab.wait_for_function("document.querySelector('#graph-step').innerText.trim() === 'step 7 (v2)'")
    tab.wait_for_url(f"{url}/graph/{run_id}?step=7&node=log_0&color=anomaly")
    tab.reload()  # the link reloads to the same view
    tab.wait_for_function("document.querySelector('#inspector-title')?.innerText === 'log_0'")
    assert tab.locator("#inspector-anomaly").is_visible()
    log = ids["log_0"]
    tab.wait_for_function(f"{CY}.getElementById('{log}').hasClass('origin')")
    assert tab.evaluate(f"{CY}.getElementById('{log}').data('color')") == "#ef4444"
    assert tab.evaluate(f"{CY}.getElementById('{ids['encoder.block.act']}').hasClass('anomaly')")
    # the NaN row of the statistics table
    cells = tab.locator(".stats-table tbody tr").nth(0).locator("td").all_inner_texts()
    assert cells[0] == "value" and cells[10] == "32"
    # centred on the origin: the client reports what it focused
    tab.wait_for_function(f"document.getElementById('graph-cy').dataset.focused?.startsWith('{log}:')")
    assert not problems, problems


def test_url_node_search_expand_all_collapse_all_and_new_steps(db_path: Path, serve: Serve, page: Page) -> None:
    torch.manual_seed(0)
    run = torchscope.init(name="still-training", db=db_path)  # stays open: the page must follow new steps
    model = NanNet()
    run.watch(model, every=1)
    for _ in range(4):
        model(torch.randn(8, 4)).backward()
    assert run.flush()
    run_id = run.id
    ids = _ids(db_path, run_id, 3)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/graph/{run_id}?step=3&node=encoder.block.act.proj")
    tab.wait_for_function("document.querySelector('#inspector-title')?.innerText === 'encoder.block.act.proj'")
    _wait_count(tab, 11)  # the boxes around proj open (root, act); proj itself selected, closed
    # selection is applied by the client after the elements are drawn: wait for it rather than race it
    tab.wait_for_function(f"{CY}.getElementById('{ids['encoder.block.act.proj']}').selected()")
    assert tab.evaluate(f"{CY}.getElementById('{ids['linear_0']}').empty()")
    tab.locator("#graph-search").fill("head")
    tab.locator("#graph-search").press("Enter")
    tab.wait_for_function("document.querySelector('#inspector-title')?.innerText === 'head'")
    tab.wait_for_function(f"document.getElementById('graph-cy').dataset.focused === '{ids['head']}:1'")
    tab.locator("#graph-expand-all").click()
    _wait_count(tab, 17)  # every box open: 4 boxes and 13 nodes
    tab.evaluate(f"{CY}.fit(undefined, 30)")  # the whole open graph, as the page fits it
    assert nodes_under_legend(tab, CY, "graph-cy", "graph-legend") == []  # the legend is beside, never over
    tab.locator("#graph-hide input").check()
    _wait_count(tab, 13)  # without the four weights
    tab.locator("#graph-collapse-all").click()
    _wait_count(tab, 6)
    tab.locator("#graph-search").fill("no-such-thing")
    tab.locator("#graph-search").press("Enter")
    tab.wait_for_function("document.querySelector('#graph-message').innerText.includes('nothing named')")
    for _ in range(2):
        model(torch.randn(8, 4)).backward()
    run.finish()
    tab.locator("#graph-step").click()
    tab.get_by_text("step 5 (v1)").wait_for()
    assert not problems, problems


@pytest.mark.parametrize(
    ("logs", "tag"), [("written", "op_graph"), pytest.param("reference", "op_graph/0", marks=pytest.mark.conformance)]
)
def test_imported_op_graph_is_grouped_by_name_scope(
    logs: str, tag: str, db_path: Path, serve: Serve, page: Page, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from tb_logs import write_logs

    from torchscope.dashboard.views.graph.state import toggle, visible_view
    from torchscope.dashboard.views.graph.model import imported_model
    from torchscope.io.importing import import_path

    if logs == "written":  # a TF op graph written here in the format tf.summary.trace_export uses
        write_logs(tmp_path / "logs")
        source = tmp_path / "logs" / "opgraph"
    else:
        source = request.getfixturevalue("shared_data") / "tensorboard_keras" / "opgraph"
    run_id = import_path(db_path, source).runs[0]["id"]
    with torchscope.open(db_path) as store:
        nodes, edges = store.imported_graph(run_id)
    first = int(nodes["graph_id"].min())
    model = imported_model(nodes[nodes["graph_id"] == first], edges[edges["graph_id"] == first])
    block1 = model.by_module["block1"]
    closed, opened = visible_view(model, set()), visible_view(model, toggle(model, block1, set()))
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/graph/{run_id}")
    _wait_count(tab, len(closed.nodes))
    assert tab.locator("#graph-step").inner_text().strip() == f"op_graph {tag}"
    _click_node(tab, block1)
    _wait_count(tab, len(opened.nodes) + len(opened.boxes))
    _click_node(tab, model.by_name["block1/Relu"])
    tab.wait_for_function("document.querySelector('#inspector-title')?.innerText === 'block1/Relu'")
    assert tab.locator(".fact-op").inner_text() == "Relu"
    assert tab.locator(".fact-name-scope").inner_text() == "block1"
    assert not problems, problems
