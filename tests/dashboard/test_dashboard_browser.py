"""The dashboard served by ``torchscope serve``, driven by real headless Chromium."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pytest
from doc_shots import doc_screenshot

import torchscope

pytestmark = pytest.mark.browser


def _make_runs(db: Path) -> tuple[int, int]:
    with torchscope.init(name="baseline", db=db, config={"lr": 0.001}) as good:
        for step in range(300):
            good.log({"train/loss": 2.0 / (step + 1), "train/accuracy": step / 300, "val/loss": 1.5 / (step + 1)}, step=step)
        good.log({"train/loss": math.nan}, step=300)
    with pytest.raises(ZeroDivisionError):
        with torchscope.init(name="diverged", db=db) as bad:
            bad.log({"train/loss": 9.0}, step=0)
            1 / 0  # noqa: B018
    return good.id, bad.id


def test_runs_page_lists_runs_and_links_to_run_charts(db_path: Path, serve, page) -> None:
    good, bad = _make_runs(db_path)
    url = serve(db_path)
    tab, problems = page
    tab.goto(url + "/")
    tab.wait_for_selector(f".ag-row[row-id='{good}']")
    grid = tab.locator("#runs-grid")
    assert grid.locator(f".ag-row[row-id='{good}'] [col-id='name']").inner_text() == "baseline"
    assert grid.locator(f".ag-row[row-id='{good}'] [col-id='status']").inner_text() == "finished"
    assert grid.locator(f".ag-row[row-id='{bad}'] [col-id='status']").inner_text() == "failed"
    assert grid.locator(f".ag-row[row-id='{good}'] [col-id='steps']").inner_text() == "301"
    assert grid.locator(f".ag-row[row-id='{good}'] [col-id='train/loss']").inner_text() == "NaN"
    assert grid.locator(f".ag-row[row-id='{bad}'] [col-id='train/loss']").inner_text() == "9"
    assert tab.locator("#runs-count").inner_text() == "2 runs"

    grid.get_by_role("link", name="baseline").click()
    tab.wait_for_url(re.compile(rf".*/run/{good}$"))
    tab.wait_for_selector(".chart .js-plotly-plot")
    tab.wait_for_function("document.querySelectorAll('.chart .js-plotly-plot').length === 3")
    assert tab.locator("#run-status").inner_text() == "finished"
    assert "steps 301" in tab.locator("#run-steps").inner_text()
    titles = sorted(t.text_content() for t in tab.locator(".chart .gtitle").all())
    assert titles == ["train/accuracy", "train/loss", "val/loss"]
    doc_screenshot(tab, "run")
    assert not problems, problems


def test_run_page_url_reloads_and_unknown_run_is_404(db_path: Path, serve, page) -> None:
    good, _ = _make_runs(db_path)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/run/{good}")
    tab.wait_for_function("document.querySelectorAll('.chart .js-plotly-plot').length === 3")
    assert tab.locator("h1").first.inner_text().startswith("baseline")
    tab.goto(f"{url}/run/999")
    tab.wait_for_selector(".error-panel")
    assert tab.locator(".error-code").inner_text() == "404"
    assert "no run 999" in tab.locator(".error-message").inner_text()
    assert not problems, problems


def test_run_page_says_what_was_not_stored(db_path: Path, serve, page) -> None:
    run = torchscope.init(name="unwritable", db=db_path, system_metrics=False)
    assert run.flush()
    with pytest.warns(torchscope.TorchscopeWarning, match="replaced by a directory"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        db_path.mkdir()  # the database is replaced by a directory: these three values cannot be stored
        run.log({"loss": 1.0, "acc": 0.5, "lr": 0.1}, step=0)
        assert run.flush()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        db_path.rmdir()  # moved away: the run goes on in a new file
        run.log({"loss": 0.5}, step=1)
        run.finish()
    said = [str(w.message) for w in seen]
    assert "created it again" in said[0] and "again; 3 records were dropped" in said[1]
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/run/{run.id}")
    tab.wait_for_selector("#run-dropped")
    assert tab.locator("#run-dropped").inner_text().startswith("not stored: 3 scalar values (")
    assert not problems, problems


def test_new_run_appears_on_open_runs_page(db_path: Path, serve, page) -> None:
    _make_runs(db_path)
    url = serve(db_path)
    tab, problems = page
    tab.goto(url + "/")
    tab.wait_for_selector(".ag-row")
    with torchscope.init(name="late-arrival", db=db_path) as late:
        late.log({"train/loss": 0.5}, step=0)
    tab.wait_for_selector(f".ag-row[row-id='{late.id}']", timeout=10_000)
    assert tab.locator("#runs-count").inner_text() == "3 runs"
    assert not problems, problems


def test_ticking_two_runs_links_to_their_comparison(db_path: Path, serve, page) -> None:
    good, bad = _make_runs(db_path)
    url = serve(db_path)
    tab, problems = page
    tab.goto(url + "/")
    tab.wait_for_selector(f".ag-row[row-id='{good}']")
    assert not tab.locator("#runs-compare").is_visible()
    for run_id in (bad, good):
        tab.locator(f".ag-row[row-id='{run_id}'] input[type='checkbox']").first.check()
    link = tab.locator("#runs-compare")
    link.wait_for(state="visible")
    assert link.inner_text() == f"Compare #{good} and #{bad}"
    link.click()
    tab.wait_for_url(re.compile(rf".*/compare\?a={good}&b={bad}$"))
    assert not problems, problems
