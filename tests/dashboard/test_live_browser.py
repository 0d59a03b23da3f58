"""Live monitoring in real headless Chromium: a training subprocess logs, the open pages follow it."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import torchscope
from procs import PATH as PROCS_PATH
from procs import value_at
from torchscope.errors import TorchscopeWarning

pytestmark = pytest.mark.browser

PROCS = str(PROCS_PATH)
PROCS_DIR = PROCS_PATH.parent  # on PYTHONPATH after the caller's own: a worktree imports its own torchscope
CHART = ".chart-cell[data-tag='{tag}'] .js-plotly-plot"
LIVE_DEADLINE_S = 30.0
"""A logged value must be in the open page by then: a deadline for a busy CI machine, not the figure of merit (1 s,
measured by benchmarks/bench_live.py)."""
# The raw trace of a chart holds (step, exact value) pairs: x and customdata (what the hover shows).
HAS_POINT = """([selector, step, value]) => {
    const gd = document.querySelector(selector);
    if (!gd || !gd.data) return false;
    const xs = Array.from(gd.data[0].x), values = Array.from(gd.data[0].customdata);
    const i = xs.indexOf(step);
    return i >= 0 && values[i] === value;
}"""


class Lines:
    """The ``step wall_time`` lines a training subprocess prints, read on a thread (readline blocks)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.run_id = int(proc.stdout.readline().split()[1])
        self.last: tuple[int, float] | None = None
        self.got = threading.Event()
        self.reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            step, when = line.split()
            self.last = (int(step), float(when))
            self.got.set()

    def next_logged(self) -> tuple[int, float]:
        """A step logged from now on, and when ``run.log`` returned for it."""
        self.got.clear()
        assert self.got.wait(10), "the training process stopped logging"
        assert self.last is not None
        return self.last


@pytest.fixture
def training(db_path: Path):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [sys.executable, PROCS, "live", str(db_path)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(PROCS_DIR)]))},
    )  # fmt: skip
    lines = Lines(proc)
    yield proc, lines
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    lines.reader.join(10)  # it ends at the end of the killed process's output
    assert proc.stdout is not None
    proc.stdout.close()


def test_logged_values_appear_while_the_page_is_open_and_killed_run_turns_interrupted(
    db_path: Path, serve, page, training
) -> None:
    proc, lines = training
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/run/{lines.run_id}")
    loss = CHART.format(tag="train/loss")
    tab.wait_for_selector(loss)
    assert tab.locator("#run-status").inner_text() == "running"
    tab.evaluate(f"document.querySelector({loss!r}).dataset.probe = 'first-draw'")

    for _ in range(3):  # each value logged is drawn in the open page (how fast: benchmarks/bench_live.py)
        step, logged_at = lines.next_logged()
        budget_ms = (logged_at + LIVE_DEADLINE_S - time.time()) * 1000
        tab.wait_for_function(HAS_POINT, arg=[loss, step, value_at(step)], timeout=max(budget_ms, 1), polling=20)
    # extended in place: the chart drawn first is still there, holding every step logged so far in order
    assert tab.evaluate(f"document.querySelector({loss!r}).dataset.probe") == "first-draw"
    xs = tab.evaluate(f"Array.from(document.querySelector({loss!r}).data[0].x)")
    assert xs == list(range(xs[0], xs[0] + len(xs))) and xs[0] == 0

    # tags that appear later get their own charts (system metrics every second) without a redraw of the others
    tab.wait_for_selector(".chart-section[data-prefix='sys'] " + CHART.format(tag="sys/rss_gib"), timeout=10_000)
    assert tab.locator(".chart-section[data-prefix='sys'] h3").inner_text().lower() == "system"
    assert tab.evaluate(f"document.querySelector({loss!r}).dataset.probe") == "first-draw"
    # the NaN logged at step 40 is called out
    tab.wait_for_selector(".alert-nonfinite")
    assert "train/bad: NaN at step 40" in tab.locator(".alert-nonfinite").inner_text()
    assert tab.locator(".alert-nonfinite a").get_attribute("href") == f"/graph/{lines.run_id}?step=40"
    rate = tab.locator("#run-rate").inner_text()
    assert rate.endswith(" steps/s") and not rate.startswith("-")

    runs_tab = tab.context.new_page()
    runs_tab.goto(url + "/")
    status_cell = f".ag-row[row-id='{lines.run_id}'] [col-id='status']"
    runs_tab.wait_for_selector(status_cell)
    assert runs_tab.locator(status_cell).inner_text() == "running"

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    tab.wait_for_function("document.querySelector('#run-status').innerText === 'interrupted'", timeout=20_000)
    assert "status-interrupted" in tab.locator("#run-status").get_attribute("class")
    runs_tab.wait_for_function(
        f"document.querySelector(\"{status_cell}\").innerText === 'interrupted'", timeout=20_000
    )
    assert "status-interrupted" in runs_tab.locator(status_cell).get_attribute("class")  # coloured as such
    assert not problems, problems


def test_runs_page_keeps_sort_and_filter_while_runs_appear_and_finish(db_path: Path, serve, page) -> None:
    for name in ("b-first", "c-second"):
        with torchscope.init(name=name, db=db_path, system_metrics=False) as run:
            run.log({"loss": 1.0}, step=0)
    url = serve(db_path)
    tab, problems = page
    tab.goto(url + "/")
    tab.wait_for_selector(".ag-row")
    tab.locator(".ag-header-cell[col-id='name'] .ag-header-cell-label").click()  # sort by name, ascending
    tab.wait_for_selector(".ag-header-cell[col-id='name'][aria-sort='ascending']")
    tab.evaluate(
        "dash_ag_grid.getApi('runs-grid').setFilterModel("
        "{status: {filterType: 'text', type: 'equals', filter: 'finished'}})"
    )

    late = torchscope.init(name="a-late", db=db_path, system_metrics=False)
    late.log({"loss": 0.5}, step=0)
    late.flush()
    tab.wait_for_function("document.querySelector('#runs-count').innerText === '3 runs'", timeout=10_000)
    assert tab.locator(f".ag-row[row-id='{late.id}']").count() == 0  # running: filtered out, filter kept
    late.finish()
    tab.wait_for_selector(f".ag-row[row-id='{late.id}']", timeout=10_000)
    names = tab.evaluate(
        "Array.from(document.querySelectorAll('.ag-center-cols-container .ag-row'))"
        ".sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)"
        ".map(r => r.querySelector(\"[col-id='name']\").innerText)"
    )
    assert names == ["a-late", "b-first", "c-second"]
    assert tab.locator(".ag-header-cell[col-id='name'][aria-sort='ascending']").count() == 1
    assert not problems, problems


def test_controls_redraw_charts_and_hover_shows_the_exact_logged_value(db_path: Path, serve, page) -> None:
    with torchscope.init(name="controls", db=db_path, system_metrics=False) as run:
        for step in range(50):
            run.log({"train/loss": 1 / (step + 3), "val/loss": 2 / (step + 3)}, step=step)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/run/{run.id}?smoothing=0.6")
    loss = CHART.format(tag="train/loss")
    tab.wait_for_selector(loss)
    assert [s.get_attribute("data-prefix") for s in tab.locator(".chart-section").all()] == ["train", "val"]
    assert tab.evaluate(f"document.querySelector({loss!r}).data[1].visible") is True  # smoothed trace from the URL

    tab.evaluate(f"Plotly.Fx.hover(document.querySelector({loss!r}), {{xval: 4}}, ['xy'])")
    assert "0.14285714285714285" in tab.locator(f"{loss} .hoverlayer").text_content()  # 1/7 to the last digit

    tab.get_by_text("log scale").click()
    tab.wait_for_function(f"document.querySelector({loss!r}).layout.yaxis.type === 'log'")
    tab.get_by_text("wall time").click()
    tab.wait_for_function(f"document.querySelector({loss!r}).layout.xaxis.title.text === 'seconds'")
    xs = tab.evaluate(f"Array.from(document.querySelector({loss!r}).data[0].x)")
    assert len(xs) == 50 and 0 < xs[0] < xs[-1] < 60  # seconds since the run started
    assert tab.evaluate(f"document.querySelector({loss!r}).layout.yaxis.type") == "log"
    assert not problems, problems


def test_a_one_point_series_shows_a_marker_then_a_line_once_its_second_point_arrives(db_path: Path, serve, page) -> None:
    run = torchscope.init(name="one-point", db=db_path, system_metrics=False)
    run.log({"val/acc": 0.25}, step=10)
    run.flush()
    url = serve(db_path)
    tab, problems = page
    try:
        tab.goto(f"{url}/run/{run.id}")
        acc = CHART.format(tag="val/acc")
        tab.wait_for_selector(f"{acc} .scatterlayer .trace .points path")  # the lone point, drawn
        assert tab.locator(f"{acc} .scatterlayer .trace").first.locator(".points path").count() == 1
        run.log({"val/acc": 0.5}, step=20)
        tab.wait_for_function(
            f"document.querySelector({acc!r}).data[0].mode === 'lines' && "
            f"Array.from(document.querySelector({acc!r}).data[0].x).join() === '10,20'",
            timeout=10_000,
        )  # fmt: skip
        line = tab.locator(f"{acc} .scatterlayer .trace").first.locator("path.js-line")
        assert line.count() == 1 and "L" in line.get_attribute("d")  # a segment from the first point to the second
        assert tab.locator(f"{acc} .scatterlayer .trace").first.locator(".points path").count() == 0
    finally:
        run.finish()
    assert not problems, problems


def test_captured_graph_and_its_nan_anomaly_appear_on_the_open_page(db_path: Path, serve, page) -> None:
    import torch

    run = torchscope.init(name="capture", db=db_path, system_metrics=False)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/run/{run.id}")  # nothing logged yet: no charts
    tab.wait_for_selector("#run-status")
    assert tab.locator(".chart-section").count() == 0
    assert tab.locator(".artifacts").count() == 0 and tab.locator(".alert-nonfinite").count() == 0

    model = torch.nn.Linear(3, 2)
    with run.watch(model, every=1), pytest.warns(TorchscopeWarning, match="first NaN"):
        for step in (1, 2):
            x = torch.ones(2, 3)
            x[0, 0] = math.nan if step == 2 else 1.0
            model(x).sum().backward()
            run.log({"train/loss": 1.0 / step}, step=step)
    run.flush()
    tab.wait_for_selector(CHART.format(tag="train/loss"))  # the first chart, into the empty page
    tab.wait_for_selector(".artifacts a", timeout=10_000)
    # run.watch counts its own steps, one per forward call: the two forwards are capture steps 0 and 1
    assert tab.locator(".artifacts a").first.get_attribute("href") == f"/graph/{run.id}?step=0"
    tab.wait_for_selector(".alert-nonfinite")
    assert "NaN/Inf produced inside the model" in tab.locator(".alert-nonfinite").inner_text()
    assert tab.locator(".alert-nonfinite li a").first.get_attribute("href") == f"/graph/{run.id}?step=1"
    run.finish()
    tab.wait_for_function("document.querySelector('#run-status').innerText === 'finished'")
    assert not problems, problems
