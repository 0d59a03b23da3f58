"""Every view is a URL, in real headless Chromium: controls set on a page are in the address bar, a reload and a
fresh page at that address show the same view, back and forward return to the views the user chose."""

from __future__ import annotations

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
        timeout=20_000,
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


GD = "document.querySelector('#tl-graph .js-plotly-plot')"


def address_is_share(condition: str) -> str:
    """A page function: the address bar holds the "link to this view" anchor's URL, and ``condition`` holds."""
    return ("() => { const a = document.querySelector('#tl-share'); return !!a && window.location.pathname + "
            f"window.location.search === a.getAttribute('href') && ({condition}); }}")


def timeline_view(tab) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The timeline's window (ms), search text and selected event."""
    tab.wait_for_selector("#tl-graph .js-plotly-plot")
    return tab.evaluate(
        f"""() => ({{
            range: {GD}.layout.xaxis.range.map(v => Math.round(Number(v) * 1e6)),
            q: document.querySelector('#tl-search').value,
            event: (document.querySelector('#tl-event') || {{dataset: {{}}}}).dataset.event || null,
        }})"""
    )


def click_widest_event(tab) -> str:  # type: ignore[no-untyped-def]
    """Click the middle of the visible part of the widest event bar drawn (retrying: a busy machine can drop a click on a redrawing
    plot); returns its event id."""
    target = tab.evaluate(
        f"""() => {{
            const gd = {GD}, L = gd._fullLayout, r = gd.getBoundingClientRect();
            const [lo, hi] = gd.layout.xaxis.range.map(Number);
            let best = null;
            gd._fullData.filter(t => t.type === 'bar' && t.base).forEach(t => (t.customdata || []).forEach((c, i) => {{
                const a = Math.max(t.base[i], lo), b = Math.min(t.base[i] + t.x[i], hi);  // its visible part
                if (Number(c[0]) >= 0 && b > a && (!best || b - a > best.w)) {{
                    best = {{id: String(c[0]), w: b - a, mid: (a + b) / 2, row: t.y[i]}};
                }}
            }}));
            return {{id: best.id, x: r.left + L._size.l + L.xaxis.l2p(best.mid),
                     y: r.top + L._size.t + L.yaxis.l2p(best.row)}};
        }}"""
    )
    for attempt in range(3):
        tab.mouse.click(target["x"], target["y"])
        try:
            tab.wait_for_selector(f"#tl-event[data-event='{target['id']}']", timeout=20_000)
            return str(target["id"])
        except Exception:  # Playwright's TimeoutError: a dropped click, retried, then raised
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_timeline_window_and_search_replace_and_a_selected_event_is_pushed(
    db_path: Path, cpu_trace: Path, serve, page, browser
) -> None:
    import_path(db_path, cpu_trace)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/timeline/1")
    tab.wait_for_selector("#tl-graph .js-plotly-plot")
    tab.wait_for_load_state("networkidle")
    start = tab.evaluate("() => window.history.length")
    tab.fill("#tl-search", "ProfilerStep")
    tab.press("#tl-search", "Enter")
    tab.wait_for_function(address_is_share("window.location.search.includes('q=ProfilerStep')"))
    # the search's figure is drawn (its matches are on the graph): a zoom sent while plotly redraws would be undone
    tab.wait_for_function(f"() => {GD}._fullData.some(t => t.name === 'search matches')")
    whole = timeline_view(tab)["range"]
    a, b = whole[0] + (whole[1] - whole[0]) // 4, whole[0] + (whole[1] - whole[0]) // 2
    for attempt in range(3):  # a zoom that meets a redraw of the graph can be undone by it: zoom again
        tab.evaluate(f"() => Plotly.relayout({GD}, {{'xaxis.range[0]': {a / 1e6}, 'xaxis.range[1]': {b / 1e6}}})")
        try:
            tab.wait_for_function(address_is_share(f"window.location.search.includes('start={a}&end={b}')"),
                                  timeout=10_000)  # fmt: skip
            break
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError; retried, then raised
            if attempt == 2:
                raise
    assert tab.evaluate("() => window.history.length") == start  # search and zoom replaced the entry
    tab.wait_for_load_state("networkidle")
    tab.wait_for_timeout(400)  # plotly takes a click within 300 ms of the last relayout for a double click
    event = click_widest_event(tab)
    tab.wait_for_function(address_is_share(f"window.location.search.includes('event={event}')"))
    assert tab.evaluate("() => window.history.length") == start + 1
    chosen = {"range": [a, b], "q": "ProfilerStep", "event": event}
    assert timeline_view(tab) == chosen

    tab.reload()
    tab.wait_for_selector(f"#tl-event[data-event='{event}']")
    assert timeline_view(tab) == chosen
    tab.go_back()
    tab.wait_for_function("() => !window.location.search.includes('event=') && !document.querySelector('#tl-event')")
    assert query_of(tab) == {"start": str(a), "end": str(b), "q": "ProfilerStep"}
    assert timeline_view(tab) == {**chosen, "event": None}
    tab.go_forward()
    tab.wait_for_selector(f"#tl-event[data-event='{event}']")

    fresh = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    fresh.goto(tab.url)
    fresh.wait_for_selector(f"#tl-event[data-event='{event}']")
    assert timeline_view(fresh) == chosen
    fresh.context.close()
    assert not problems, problems


def operator_rows(tab) -> list[str]:  # type: ignore[no-untyped-def]
    """The operator names the grid shows (after its quick search)."""
    tab.wait_for_selector("#prof-grid .ag-row")
    return sorted(set(tab.locator("#prof-grid .ag-center-cols-container .ag-row [col-id='name']").all_inner_texts()))


def test_profile_tab_is_a_history_entry_and_the_quick_search_is_in_the_url(
    db_path: Path, cpu_trace: Path, serve, page, browser
) -> None:
    import_path(db_path, cpu_trace)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/profile/1")
    tab.wait_for_selector("#prof-overview")
    tab.locator("#tab-operators").click()
    wait_query(tab, {"tab": "operators"})
    everything = operator_rows(tab)
    assert "aten::addmm" in everything and len(everything) > 3
    tab.locator("#prof-search").fill("addmm")
    wait_query(tab, {"tab": "operators", "q": "addmm"})
    tab.wait_for_function("() => Array.from(document.querySelectorAll(\"#prof-grid .ag-center-cols-container .ag-row "
                          "[col-id='name']\")).every(c => c.innerText.toLowerCase().includes('addmm'))")  # fmt: skip
    filtered = operator_rows(tab)
    assert "aten::addmm" in filtered and all("addmm" in name.lower() for name in filtered)  # case-insensitive

    tab.reload()
    tab.wait_for_selector("#prof-operators")
    assert tab.locator("#prof-search").input_value() == "addmm"
    assert operator_rows(tab) == filtered
    tab.go_back()
    tab.wait_for_selector("#prof-overview")
    assert query_of(tab) == {}
    tab.go_forward()
    tab.wait_for_selector("#prof-operators")
    assert tab.locator("#prof-search").input_value() == "addmm"

    fresh = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    fresh.goto(f"{url}/profile/1?tab=operators&q=addmm")
    assert operator_rows(fresh) == filtered
    fresh.context.close()
    assert not problems, problems


FX = "document.getElementById('graph-fx')"
FX_SHOWN = f"() => !!{FX} && getComputedStyle({FX}).display === 'flex' && !!document.getElementById('graph-fx-cy')"
FX_HIDDEN = f"() => !!{FX} && getComputedStyle({FX}).display === 'none'"


def test_graph_fx_toggle_is_a_history_entry_and_opens_from_the_url(db_path: Path, serve, page, browser) -> None:
    from compile_models import record_break_run

    run_id = record_break_run(db_path, backend="aot_eager")
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/graph/{run_id}")
    tab.wait_for_function(FX_HIDDEN)
    wait_query(tab, {"step": "2"})
    start = tab.evaluate("() => window.history.length")
    tab.get_by_text("FX (torch.compile)").click()
    tab.wait_for_function(FX_SHOWN)
    wait_query(tab, {"step": "2", "view": "fx"})
    assert tab.evaluate("() => window.history.length") == start + 1
    tab.reload()
    tab.wait_for_function(FX_SHOWN)
    assert tab.locator("#graph-mode input:checked").input_value() == "fx"
    tab.go_back()
    wait_query(tab, {"step": "2"})
    tab.wait_for_function(FX_HIDDEN)
    assert tab.locator("#graph-mode input:checked").input_value() == "executed"
    tab.go_forward()
    tab.wait_for_function(FX_SHOWN)

    fresh = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    fresh.goto(f"{url}/graph/{run_id}?step=2&view=fx")
    fresh.wait_for_function(FX_SHOWN)
    assert "ran eagerly" in fresh.locator("#graph-fx-counts-dynamo").inner_text()
    fresh.context.close()
    assert not problems, problems
