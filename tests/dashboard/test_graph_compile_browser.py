"""The graph page of a torch.compile'd run in headless Chromium: a break marker with its reason, the FX toggle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from compile_models import Chatty, record_break_run
from legend_check import nodes_under_legend
from models import line_of

import torchscope
from torchscope.dashboard.views.graph.model import captured_model

pytestmark = pytest.mark.browser

CY = (
    "[document.getElementById('{id}'), ...document.querySelectorAll('#{id} div')]"
    ".find(d => d._cyreg && d._cyreg.cy)._cyreg.cy"
)


def _cy(canvas: str) -> str:
    return CY.format(id=canvas)


def _soon(expression: str) -> str:
    return f"(() => {{ try {{ return {expression}; }} catch (e) {{ return false; }} }})()"


def _position(cy: str, node_id: int) -> str:
    """A page expression: where node ``node_id`` is drawn, in canvas pixels."""
    return f"(() => {{ const p = {cy}.getElementById('{node_id}').renderedPosition(); return [p.x, p.y]; }})()"


def _tap(tab: Any, cy: str, node_id: int, done: str) -> None:
    """Click a node until the page says ``done`` (a page expression): under load a click can land while
    Cytoscape still moves the view, so each try reads the node's position again (3 tries, 10 s each)."""
    from playwright.sync_api import TimeoutError as PageTimeout

    for _ in range(3):
        x, y = tab.evaluate(_position(cy, node_id))
        box = tab.locator("#graph-cy").bounding_box()
        tab.mouse.click(box["x"] + x, box["y"] + y)
        try:
            tab.wait_for_function(_soon(done), timeout=10_000)
            return
        except PageTimeout:
            continue
    raise AssertionError(f"node {node_id} did not answer a click: {done}")


def test_break_marker_reason_in_inspector_and_fx_toggle(
    db_path: Path, serve: Callable[[Path], str], page: tuple[Any, Any]
) -> None:
    run_id = record_break_run(db_path, backend="aot_eager")  # what Dynamo traced; no C++ to build here
    with torchscope.open(db_path) as store:
        model = captured_model(*store.graph(run_id, step=2))
    block, root = model.by_module["block"], model.by_module[""]
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/graph/{run_id}")
    cy = _cy("graph-cy")
    # drawn, and its tap handlers bound (dash-cytoscape sets window.cy once it has bound them)
    tab.wait_for_function(_soon(f"{cy}.getElementById('{block}').nonempty() && window.cy === {cy}"))
    assert tab.evaluate(f"{cy}.getElementById('{block}').hasClass('graph-break')")
    assert tab.evaluate(f"{cy}.getElementById('{block}').data('label')").startswith("⚡ block")
    assert tab.evaluate(f"{cy}.getElementById('{root}').hasClass('compiled')")
    assert not tab.evaluate(f"{cy}.getElementById('{model.by_module['head']}').hasClass('graph-break')")
    assert "2 graph breaks" in tab.locator("#graph-status").inner_text()
    # the block's break in the inspector: the print's line and Dynamo's reason
    _tap(tab, cy, block, "document.querySelector('#inspector-title')?.innerText === 'block'")
    tab.wait_for_selector(".compile-break")
    text = tab.locator(".compile-break").inner_text()
    assert f"compile_models.py:{line_of(Chatty.forward, '# <print>')}" in text
    assert "builtin operator `print`" in text
    # the toggle: the FX graphs Dynamo captured, coloured against the executed graph
    tab.get_by_text("FX (torch.compile)").click()
    tab.wait_for_function("getComputedStyle(document.getElementById('graph-fx')).display === 'flex'")
    fx = _cy("graph-fx-cy")
    tab.wait_for_function(_soon(f"{fx}.nodes('.fx-both').length > 0"))
    labels = tab.evaluate(f"{fx}.nodes('.fx-both').map(n => n.data('label').split('\\n')[0])")
    assert sorted(labels) == ["linear", "linear", "mul", "relu", "sum"]  # block.lin and relu, sum, x * 2, head
    assert "ran eagerly" in tab.locator("#graph-fx-counts-dynamo").inner_text()
    tab.evaluate(f"{fx}.fit(undefined, 30)")
    assert nodes_under_legend(tab, fx, "graph-fx-cy", "graph-fx-legend") == []
    tab.get_by_text("executed", exact=True).click()
    tab.wait_for_function("getComputedStyle(document.getElementById('graph-fx')).display === 'none'")
    tab.wait_for_function("document.getElementById('graph-fx-cy') === null")  # the FX canvas goes with the toggle
    head = model.by_module["head"]
    _tap(tab, cy, head, "document.querySelector('#inspector-title')?.innerText === 'head'")  # taps still work
    assert not problems, problems
