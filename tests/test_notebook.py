"""``run.show()`` / ``torchscope.show(db)``: a real notebook executed by nbclient shows the dashboard inline, and the
dashboard answers while the kernel lives; outside a notebook the URL is printed and answers."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import torchscope

TRAIN = """
import torch, torchscope
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
run = torchscope.init(name="in-a-notebook", db=DB, system_metrics=False)
run.watch(model, every=5)
x, y = torch.randn(64, 8), torch.randn(64, 1)
for step in range(10):
    loss = torch.nn.functional.mse_loss(model(x), y)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    run.log({"train/loss": loss.item()}, step=step)
"""
SHOW_RUN = "dashboard = run.show(height=500)\nprint(dashboard.url)"
SHOW_DB = "runs_page = torchscope.show(DB)\nrun.finish()\nrun.status"
READ = "store = torchscope.open(DB)\nstore.runs()[['id', 'name', 'status', 'last_step']]"


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


def _html(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs if o.output_type != "stream")


def test_notebook_shows_the_run_inline_and_the_dashboard_answers_while_the_kernel_lives(db_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    cells = [f"DB = {str(db_path)!r}", TRAIN, SHOW_RUN, SHOW_DB, READ]
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = NotebookClient(notebook, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(db_path.parent)}})  # fmt: skip
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        errors = [o for cell in notebook.cells for o in cell.outputs if o.output_type == "error"]
        assert errors == []
        run_id = int(torchscope.open(db_path).runs()["id"].iloc[0])

        # run.show(): an iframe on the run's live page, 500 px high, on a port of the kernel's server thread
        show_cell = notebook.cells[2]
        html = _html(show_cell)
        match = re.search(r'<iframe\s+width="100%"\s+height="500"\s+src="(http://127\.0\.0\.1:\d+/run/(\d+))"', html)
        assert match, html
        url = match[1]
        assert int(match[2]) == run_id
        printed = "".join(o.text for o in show_cell.outputs if o.output_type == "stream")
        assert printed == url + "\n"
        # the dashboard answers while the kernel is alive: the page, and its layout with the run's page behind it
        status, body = _get(url)
        assert status == 200 and "<title>torchscope</title>" in body
        base = url.rsplit("/run/", 1)[0]
        assert _get(base + "/_dash-layout")[0] == 200

        # torchscope.show(DB): the runs page, on another port
        runs_html = _html(notebook.cells[3])
        runs_url = re.search(r'src="(http://127\.0\.0\.1:\d+/)"', runs_html)
        assert runs_url and runs_url[1] != base + "/"
        assert _get(runs_url[1])[0] == 200
        assert notebook.cells[3].outputs[-1]["data"]["text/plain"] == "'finished'"

        # the read API's tables render as HTML tables with their column names
        table = _html(notebook.cells[4])
        assert "<table" in table
        assert all(f"<th>{c}</th>" in table for c in ("id", "name", "status", "last_step"))
        assert "<td>in-a-notebook</td>" in table and "<td>finished</td>" in table and "<td>9</td>" in table


def test_outside_a_notebook_show_prints_the_url_and_serves(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with torchscope.init(name="script", db=db_path, system_metrics=False) as run:
        run.log({"loss": 1.0}, step=0)
    dashboard = torchscope.show(db_path, run=run.id)
    try:
        assert not dashboard.inline
        assert dashboard.url.endswith(f"/run/{run.id}")
        assert capsys.readouterr().out == f"torchscope: dashboard of sqlite:///{db_path} at {dashboard.url}\n"
        status, body = _get(dashboard.url)
        assert status == 200 and "<title>torchscope</title>" in body
    finally:
        dashboard.stop()
    with pytest.raises(OSError):
        _get(dashboard.url)


def test_show_of_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(torchscope.StoreError, match="no torchscope database at"):
        torchscope.show(tmp_path / "missing.db")
