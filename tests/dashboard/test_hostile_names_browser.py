"""Names are text on every page: run, model, module, tag, op, kernel and thread names that are markup
(``<img src=x onerror=__x=1>``, ``<b>bold</b>``) show literally and run nothing, in real headless Chromium.

Charts matter as much as HTML: plotly renders its own subset of HTML in titles, tick labels and hover text, so a
``<b>`` in a name must show as ``<b>``, not as bold. The dashboard is served with an access token, as on a shared
machine: the browser presents it once in the address and then rides on the cookie, callbacks included.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import HOSTILE, KERNEL, OP, RUN_A, RUN_B, TAG, THREAD, hostile_store

import torchscope
from torchscope.dashboard import urls
from torchscope.dashboard.server import serve_in_subprocess

pytestmark = pytest.mark.browser

NO_MARKUP_RAN = """() => typeof window.__x === 'undefined'
    && document.querySelectorAll('#page img').length === 0
    && document.querySelectorAll('svg text b, svg tspan[style*="bold"]').length === 0"""


def _texts(tab, selector: str) -> list[str]:
    return [t.text_content() for t in tab.locator(selector).all()]


TOKEN = "browser-token"


def test_hostile_names_render_as_text_on_every_page(db_path: Path, tmp_path: Path, page) -> None:
    ids = hostile_store(db_path, tmp_path)
    with torchscope.open(db_path) as store:
        events = store.events(ids["profile_imported"])
        kernel_id = int(events[events["kind"] == "kernel"]["id"].iloc[0])
    with serve_in_subprocess(db_path, auth_token=TOKEN) as url:
        _visit_every_page(url, ids, kernel_id, page)


def _visit_every_page(url: str, ids: dict[str, int], kernel_id: int, page) -> None:
    tab, problems = page
    assert tab.goto(url + urls.runs()).status == 401
    tab.goto(f"{url}{urls.runs()}?token={TOKEN}")
    assert tab.url == url + urls.runs()  # the token left the address; the cookie carries it from here
    problems.items.clear()  # the refused first visit; from here on any 401 is a problem
    visited = []

    def visit(path: str, ready: str) -> None:
        tab.goto(url + path)
        tab.wait_for_selector(ready)
        tab.wait_for_timeout(300)  # an image error handler, had one been rendered, fires right after it loads
        assert tab.evaluate(NO_MARKUP_RAN), path
        visited.append(path)

    visit(urls.runs(), f".ag-row[row-id='{ids['a']}']")
    assert tab.locator(f".ag-row[row-id='{ids['a']}'] [col-id='name']").inner_text() == RUN_A
    assert tab.locator(f".ag-row[row-id='{ids['b']}'] [col-id='name']").inner_text() == RUN_B

    visit(urls.run(ids["a"]), ".chart .gtitle")
    assert tab.locator("h1").inner_text().startswith(RUN_A)
    assert _texts(tab, ".chart .gtitle") == [TAG]

    visit(urls.graph(ids["a"], node=HOSTILE), "#inspector-title")
    assert tab.locator("h1 a").inner_text() == RUN_A
    assert tab.locator("#inspector-title").inner_text() == HOSTILE

    visit(urls.profile(ids["profile_imported"]), ".js-plotly-plot .ytick")
    ticks = _texts(tab, ".js-plotly-plot .ytick text")
    assert f"1. {OP}" in ticks
    assert f"1. {KERNEL}" in ticks
    visit(urls.profile(ids["profile_imported"], tab="kernels"), ".ag-row")
    assert _texts(tab, ".ag-center-cols-container [col-id='name']") == [KERNEL]

    visit(urls.timeline(ids["profile_imported"], event=kernel_id), "#tl-event")
    assert tab.locator(".tl-event-name").inner_text() == KERNEL
    assert f"process 1 · {THREAD}" in _texts(tab, "#tl-graph .ytick text")
    op_row = tab.locator(".tl-details-table tr", has_text="op").last
    assert op_row.locator("td").nth(1).inner_text() == OP

    visit(urls.compare(ids["a"], ids["b"]), "#compare-scalars .gtitle")
    assert tab.locator("#compare-side-a a").inner_text() == f"run {ids['a']} ({RUN_A})"
    assert tab.locator("#compare-side-b a").inner_text() == f"run {ids['b']} ({RUN_B})"
    assert _texts(tab, "#compare-scalars .gtitle") == [TAG]

    assert len(visited) == 7
    assert not problems, problems
