"""Every view is a URL, in real headless Chromium: controls set on a page are in the address bar, a reload and a
fresh page at that address show the same view, back and forward return to the views the user chose."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from torchscope.io.importing import import_path

pytestmark = pytest.mark.browser


def query_of(tab) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: v[-1] for k, v in parse_qs(urlsplit(tab.url).query).items()}


def wait_query(tab, expected: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Poll (with Playwright's deadline) until the address bar's query is exactly ``expected``."""
    tab.wait_for_function(
        """(want) => {
            const got = Object.fromEntries(new URLSearchParams(window.location.search));
            const keys = Object.keys(want);
            return Object.keys(got).length === keys.length && keys.every(k => got[k] === want[k]);
        }""",
        arg=expected,
        timeout=10_000,
    )


def logged_run(tmp_path: Path) -> Path:
    """An imported TensorBoard log: scalars under two prefixes and two histogram tags over three steps."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "logs"))
    rng = np.random.default_rng(0)
    for step in range(3):
        writer.add_scalar("train/loss", 1.0 / (step + 1), step)
        writer.add_scalar("eval/acc", 0.5 + 0.1 * step, step)
        writer.add_histogram("layer1/weight", rng.normal(step, 1.0, 200), step)
        writer.add_histogram("layer2/weight", rng.normal(0.0, 1.0 + step, 200), step)
    writer.close()
    db = tmp_path / "u.db"
    import_path(db, tmp_path / "logs")
    return db


def run_view(tab) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What the run page shows: its controls, the charts left visible and the histogram drawn."""
    tab.wait_for_selector("#hist-chart .js-plotly-plot")
    return tab.evaluate(
        """() => ({
            log: document.querySelector('#run-log input').checked,
            filter: document.querySelector('#run-tags').value,
            visible: Array.from(document.querySelectorAll('.chart-cell[data-tag]'))
                .filter(c => c.style.display !== 'none').map(c => c.dataset.tag).sort(),
            mode: document.querySelector('#hist-mode input:checked').value,
            title: document.querySelector('#hist-chart .js-plotly-plot').layout.title.text,
            traces: document.querySelector('#hist-chart .js-plotly-plot').data.length,
        })"""
    )


def test_run_page_controls_survive_reload_back_forward_and_a_fresh_page(tmp_path: Path, serve, page, browser) -> None:
    db = logged_run(tmp_path)
    url = serve(db)
    tab, problems = page
    tab.goto(f"{url}/run/1")
    first = run_view(tab)
    assert first == {"log": False, "filter": "", "visible": ["eval/acc", "train/loss"], "mode": "ridge",
                     "title": "layer1/weight", "traces": 6}  # fmt: skip
    tab.locator("#run-log input").check()
    wait_query(tab, {"log": "1"})
    tab.locator("#run-tags").fill("^train")
    wait_query(tab, {"log": "1", "tags": "^train"})
    tab.wait_for_function("() => document.querySelector(\"[data-tag='eval/acc']\").style.display === 'none'")
    history_before = tab.evaluate("() => window.history.length")
    tab.locator("#hist-mode input[value='distribution']").check()  # a deliberate step: pushed
    wait_query(tab, {"log": "1", "tags": "^train", "hmode": "distribution"})
    tab.locator("#hist-tag").click()
    tab.get_by_role("option", name="layer2/weight (TensorBoard)").click()
    wait_query(tab, {"log": "1", "tags": "^train", "hmode": "distribution", "hist": "tb:layer2/weight"})
    assert tab.evaluate("() => window.history.length") == history_before + 2  # the replaced ones added nothing
    chosen = {"log": True, "filter": "^train", "visible": ["train/loss"], "mode": "distribution",
              "title": "layer2/weight", "traces": 9}  # fmt: skip
    tab.wait_for_function("() => document.querySelector('#hist-chart .js-plotly-plot').layout.title.text "
                          "=== 'layer2/weight'")  # fmt: skip
    assert run_view(tab) == chosen

    tab.reload()
    assert run_view(tab) == chosen

    tab.go_back()
    wait_query(tab, {"log": "1", "tags": "^train", "hmode": "distribution"})
    tab.wait_for_function("() => document.querySelector('#hist-chart .js-plotly-plot') && "
                          "document.querySelector('#hist-chart .js-plotly-plot').layout.title.text === 'layer1/weight'")
    assert run_view(tab) == {**chosen, "title": "layer1/weight"}
    tab.go_back()
    wait_query(tab, {"log": "1", "tags": "^train"})
    tab.wait_for_function("() => document.querySelector('#hist-mode input:checked').value === 'ridge'")
    assert run_view(tab) == {**chosen, "title": "layer1/weight", "mode": "ridge", "traces": 6}
    tab.go_forward()
    tab.wait_for_function("() => document.querySelector('#hist-mode input:checked').value === 'distribution'")
    assert run_view(tab) == {**chosen, "title": "layer1/weight"}

    shared = tab.url
    fresh = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    fresh.goto(shared)
    assert run_view(fresh) == {**chosen, "title": "layer1/weight"}
    fresh.context.close()
    assert not problems, problems


def graph_view(tab) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The graph page's node in the inspector and its colour mode."""
    tab.wait_for_selector("#graph-cy")
    return tab.evaluate(
        """() => ({
            node: (document.querySelector('#inspector-title') || {}).innerText || '',
            colour: document.querySelector('#graph-colour').innerText.trim(),
        })"""
    )


def test_graph_page_nodes_are_history_entries_and_colour_replaces(db_path: Path, serve, page, browser) -> None:
    from models import record_nan_run

    run_id = record_nan_run(db_path)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/graph/{run_id}")
    wait_query(tab, {"step": "9"})  # the page writes the step it shows
    start = tab.evaluate("() => window.history.length")
    tab.locator("#graph-search").fill("log_0")
    tab.locator("#graph-search").press("Enter")
    wait_query(tab, {"step": "9", "node": "log_0"})
    tab.locator("#graph-colour").click()
    tab.get_by_role("option", name="activation RMS").click()
    wait_query(tab, {"step": "9", "node": "log_0", "color": "magnitude"})
    tab.locator("#graph-search").fill("abs_0")
    tab.locator("#graph-search").press("Enter")
    wait_query(tab, {"step": "9", "node": "abs_0", "color": "magnitude"})
    assert tab.evaluate("() => window.history.length") == start + 2  # two nodes gone to; the colour replaced
    tab.wait_for_function("() => document.querySelector('#inspector-title')?.innerText === 'abs_0'")
    assert graph_view(tab) == {"node": "abs_0", "colour": "activation RMS"}

    tab.reload()
    tab.wait_for_function("() => document.querySelector('#inspector-title')?.innerText === 'abs_0'")
    assert graph_view(tab) == {"node": "abs_0", "colour": "activation RMS"}
    tab.go_back()
    wait_query(tab, {"step": "9", "node": "log_0", "color": "magnitude"})
    tab.wait_for_function("() => document.querySelector('#inspector-title')?.innerText === 'log_0'")
    assert graph_view(tab) == {"node": "log_0", "colour": "activation RMS"}
    tab.go_back()
    wait_query(tab, {"step": "9"})
    tab.wait_for_function("() => document.querySelector('#graph-colour').innerText.trim() === 'op type'")
    assert graph_view(tab)["colour"] == "op type"
    tab.go_forward()
    tab.wait_for_function("() => document.querySelector('#inspector-title')?.innerText === 'log_0'")

    fresh = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    fresh.goto(tab.url)
    fresh.wait_for_function("() => document.querySelector('#inspector-title')?.innerText === 'log_0'")
    assert graph_view(fresh) == {"node": "log_0", "colour": "activation RMS"}
    fresh.context.close()
    assert not problems, problems
