"""The hyperparameters page and an imported run's text and images, in real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

import torchscope
from torchscope.io.importing import import_path

pytestmark = pytest.mark.browser

RUNS = [  # name, lr, optimizer, final loss, accuracy
    ("sgd-fast", 0.1, "sgd", 0.9, 0.6),
    ("adam-slow", 0.001, "adam", 0.3, 0.85),
    ("adam-fast", 0.01, "adam", 0.5, 0.7),
]
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def make_store(db: Path, logdir: Path) -> dict[str, int]:
    """Three torchscope runs with a config and two metrics, and an imported SummaryWriter log with add_hparams,
    add_text and add_image (a solid colour per step)."""
    ids = {}
    for name, lr, optim, loss, acc in RUNS:
        config = {"lr": lr, "optim": {"name": optim}}
        with torchscope.init(name=name, db=db, config=config, system_metrics=False) as run:
            run.log({"loss": 2.0, "acc": 0.1}, step=0)
            run.log({"loss": loss, "acc": acc}, step=1)
        ids[name] = run.id
    with SummaryWriter(str(logdir)) as writer:
        for step, colour in enumerate(COLOURS):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_text("notes", f"## Epoch {step}\n\n**loss** is `{1.0 / (step + 1):.2f}`", step)
            image = torch.tensor(colour, dtype=torch.float32).view(3, 1, 1).expand(3, 6, 8) / 255
            writer.add_image("samples", image, step * 10)
        writer.add_hparams({"lr": 0.05, "optim.name": "rmsprop"}, {"loss": 0.4, "acc": 0.8})
    result = import_path(db, logdir, name="tb")
    ids["tb"], ids["tb-hparams"] = (r["id"] for r in result.runs)
    return ids


def grid_ids(tab) -> list[int]:
    return tab.evaluate(
        "Array.from(document.querySelectorAll('#hparams-grid .ag-center-cols-container .ag-row'))"
        ".sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)"
        ".map(r => Number(r.getAttribute('row-id')))"
    )


FIGURE = "document.querySelector('#hparams-parcoords .js-plotly-plot')"


def wait_for_lines(tab, runs: list[int]) -> None:
    """Wait until the figure draws one line per run of ``runs``, in that order."""
    tab.wait_for_function(f"(() => {{ const f = {FIGURE}; return f && f.layout && f.layout.meta && "
                          f"JSON.stringify(f.layout.meta.runs) === '{runs}'.replace(/ /g, ''); }})()")  # fmt: skip


def test_hparams_page_sorts_filters_and_colours_by_a_metric(db_path: Path, tmp_path: Path, serve, page) -> None:
    ids = make_store(db_path, tmp_path / "tb")
    url = serve(db_path)
    tab, problems = page
    tab.goto(url + "/")
    tab.locator("#runs-hparams").click()
    tab.wait_for_url(re.compile(r".*/hparams$"))
    tab.wait_for_selector("#hparams-grid .ag-row")
    tab.wait_for_function(f"{FIGURE} && {FIGURE}.data && {FIGURE}.data.length === 1")
    everyone = [ids["tb-hparams"], ids["adam-fast"], ids["adam-slow"], ids["sgd-fast"]]
    assert grid_ids(tab) == everyone  # newest first; the imported log's own run has no hparams
    assert tab.locator("#hparams-count").inner_text() == "4 runs · 2 hparams · 2 metrics"
    imported = tab.locator(f"#hparams-grid .ag-row[row-id='{ids['tb-hparams']}']")
    assert imported.locator("[col-id='m0']").inner_text() == "0.8"  # float32 0.800000011920929, shown to 4 digits
    assert imported.locator("[col-id='h1']").inner_text() == "rmsprop"
    labels = tab.evaluate(f"{FIGURE}.data[0].dimensions.map(d => d.label)")
    assert labels == ["lr", "optim.name", "acc", "loss"]
    assert tab.evaluate(f"{FIGURE}.data[0].line.colorbar.title.text") == "loss"  # a loss by default
    assert tab.evaluate(f"{FIGURE}.data[0].line.color") == pytest.approx([0.4, 0.5, 0.3, 0.9], rel=1e-7)  # float32
    optim = tab.evaluate(f"{FIGURE}.data[0].dimensions[1]")
    assert optim["ticktext"] == ["adam", "rmsprop", "sgd"] and optim["values"] == [1, 0, 0, 2]

    # sort by lr (click its header): the grid and the figure's lines follow
    tab.locator("#hparams-grid .ag-header-cell[col-id='h0'] .ag-header-cell-label").click()
    tab.wait_for_selector("#hparams-grid .ag-header-cell[col-id='h0'][aria-sort='ascending']")
    by_lr = [ids["adam-slow"], ids["adam-fast"], ids["tb-hparams"], ids["sgd-fast"]]
    wait_for_lines(tab, by_lr)
    assert grid_ids(tab) == by_lr

    # filter optim.name to "adam" in the column's floating filter: two runs left, in the figure too
    box = tab.locator("#hparams-grid .ag-floating-filter[aria-colindex='4'] input")
    box.fill("adam")
    adams = [ids["adam-slow"], ids["adam-fast"]]
    wait_for_lines(tab, adams)
    assert grid_ids(tab) == adams
    assert tab.evaluate(f"{FIGURE}.data[0].dimensions[0].values") == [0.001, 0.01]

    # colour by accuracy: the lines take its values and the URL keeps the choice
    tab.locator("#hparams-color").click()
    tab.get_by_role("option", name="acc", exact=True).click()
    tab.wait_for_function(f"(() => {{ const f = {FIGURE}; return f && f.data && f.data[0].line.colorbar && "
                          "f.data[0].line.colorbar.title.text === 'acc'; })()")  # fmt: skip
    assert tab.evaluate(f"{FIGURE}.data[0].line.color") == [0.85, 0.7]
    tab.wait_for_url(re.compile(r".*/hparams\?color=acc$"))
    tab.reload()
    tab.wait_for_function(f"(() => {{ const f = {FIGURE}; return f && f.data && f.data[0].line.colorbar && "
                          "f.data[0].line.colorbar.title.text === 'acc'; })()")  # fmt: skip
    assert not problems, problems


def test_imported_run_page_shows_text_images_by_step_and_no_rate(db_path: Path, tmp_path: Path, serve, page) -> None:
    ids = make_store(db_path, tmp_path / "tb")
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/run/{ids['tb']}")
    tab.wait_for_selector("#run-texts .run-text-item")
    steps = tab.locator("#run-texts .run-text-item").evaluate_all("els => els.map(e => e.dataset.step)")
    assert steps == ["2", "1", "0"]  # newest first
    newest = tab.locator("#run-texts .run-text-item").first
    assert newest.locator("h2").inner_text() == "Epoch 2"  # markdown rendered, not shown as text
    assert newest.locator("strong").inner_text() == "loss" and newest.locator("code").inner_text() == "0.33"
    assert tab.locator("#run-rate").inner_text() == ""  # no steps/s for an imported log
    assert tab.locator("#run-imported").count() == 0  # this log has no graph

    frame = "#run-images .run-image-tag[data-tag='samples']"
    tab.wait_for_selector(f"{frame} img.run-image[data-step='20']")  # the last step first
    assert tab.locator(f"{frame} .run-image-step").inner_text() == "step 20"
    pixel = """(img) => new Promise(done => {
        const draw = () => { const c = document.createElement('canvas'); c.width = 8; c.height = 6;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            done(Array.from(g.getImageData(3, 3, 1, 1).data.slice(0, 3))); };
        img.complete ? draw() : img.onload = draw; })"""
    assert tab.locator(f"{frame} img.run-image").evaluate(pixel) == list(COLOURS[2])
    handle = tab.locator(f"{frame} .rc-slider-handle, {frame} [role='slider']").first
    handle.focus()
    for expected_step, colour in ((10, COLOURS[1]), (0, COLOURS[0])):
        tab.keyboard.press("ArrowLeft")
        tab.wait_for_selector(f"{frame} img.run-image[data-step='{expected_step}']")
        assert tab.locator(f"{frame} .run-image-step").inner_text() == f"step {expected_step}"
        assert tab.locator(f"{frame} img.run-image").evaluate(pixel) == list(colour)

    # add_hparams' own session: its hparams and metrics as values, not as one-point charts
    tab.goto(f"{url}/run/{ids['tb-hparams']}")
    tab.wait_for_selector("#run-hparam-metrics")
    assert tab.locator("#run-hparam-metrics").inner_text().split() == [
        "hparam", "metrics", "acc", "0.8", "loss", "0.4", "all", "runs'", "hyperparameters"
    ]
    assert tab.locator(".chart").count() == 0
    assert "rmsprop" in tab.locator(".config").text_content()
    assert not problems, problems


def test_imported_graphs_and_profiles_are_linked_from_their_run(
    db_path: Path, tmp_path: Path, cpu_trace: Path, serve, page
) -> None:
    with SummaryWriter(str(tmp_path / "g")) as writer:
        writer.add_graph(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()), torch.randn(1, 2))
    run_id = import_path(db_path, tmp_path / "g").run_id
    traced = import_path(db_path, cpu_trace)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/run/{traced.run_id}")
    profile_link = tab.locator(f"#run-artifacts a[href='/profile/{traced.profiles[0]['id']}']")
    profile_link.wait_for()
    assert tab.locator("#run-rate").inner_text() == ""
    tab.goto(f"{url}/run/{run_id}")
    link = tab.locator("#run-imported a")
    link.wait_for()
    assert link.inner_text().startswith("graph graph_def (graph_def, ")
    link.click()
    tab.wait_for_url(re.compile(rf".*/graph/{run_id}\?graph=\d+$"))
    tab.wait_for_selector("#graph-cy")
    assert not problems, problems
