"""The hparams page's and the run page's media builders, without a browser."""

from __future__ import annotations

import math

import pandas as pd

from torchscope.dashboard.views.hparams.figures import axis, parcoords_figure
from torchscope.dashboard.views.hparams.page import default_metric
from torchscope.dashboard.views.hparams.tables import hparams_columns, hparams_table
from torchscope.dashboard.views.run.header import header_parts
from torchscope.dashboard.views.run.media import image_children, text_section
from torchscope.storage.tensorboard.hparams import flatten, hparams_rows

RUNS = pd.DataFrame({
    "id": [1, 2, 3], "name": ["a", "b_[x]", "c"], "source": ["live", "live", "import"],
    "config": [{"lr": 0.1, "opt": {"name": "sgd", "betas": [0.9, 0.99]}}, {"lr": 0.01, "opt": {"name": "adam"}},
               {"imported_from": "/logs/c"}],
})  # fmt: skip
LAST = pd.DataFrame({"run_id": [1, 1, 2, 3], "tag": ["loss", "sys/cpu", "loss", "loss"],
                     "value": [0.5, 40.0, float("nan"), 0.1]})  # fmt: skip
METRICS = pd.DataFrame({"run_id": [2], "tag": ["hparam/acc"], "value": [0.75]})


def test_flatten_nests_dotted_keys_and_writes_lists_as_json():
    assert dict(flatten({"a": {"b": {"c": 1}}, "l": [1, 2], "s": "x", "n": None})) == {
        "a.b.c": 1, "l": "[1, 2]", "s": "x", "n": None,
    }  # fmt: skip


def test_hparams_rows_keep_runs_with_hparams_and_their_metrics():
    rows = hparams_rows(RUNS, LAST, METRICS)
    assert rows[["run_id", "kind", "key"]].values.tolist() == [
        [1, "hparam", "lr"], [1, "hparam", "opt.betas"], [1, "hparam", "opt.name"], [1, "metric", "loss"],
        [2, "hparam", "lr"], [2, "hparam", "opt.name"], [2, "metric", "hparam/acc"], [2, "metric", "loss"],
    ]  # run 3 has only where it came from: no hparams; sys/ tags are not metrics


def test_table_fields_are_plain_ids_and_cells_are_json_safe():
    table = hparams_table(hparams_rows(RUNS, LAST, METRICS), RUNS)
    assert table.hparams == ["lr", "opt.betas", "opt.name"] and table.metrics == ["hparam/acc", "loss"]
    assert [r["id"] for r in table.rows] == [2, 1]
    first = table.rows[0]
    assert first["run"] == "[b\\_\\[x\\]](/run/2)" and first["h0"] == 0.01 and first["m1"] is None  # NaN -> None
    columns = {c["field"]: c for c in hparams_columns(table)}
    assert columns["h1"]["headerName"] == "opt.betas" and "type" not in columns["h2"]  # text: text filter
    assert columns["m0"]["filter"] == "agNumberColumnFilter" and columns["m0"]["headerClass"] == "hparam-metric"
    assert default_metric(table, None) == "loss" and default_metric(table, "hparam/acc") == "hparam/acc"


def test_parcoords_axes_and_colour():
    table = hparams_table(hparams_rows(RUNS, LAST, METRICS), RUNS)
    figure = parcoords_figure(table, table.rows, "hparam/acc")
    trace = figure.data[0]
    assert [d.label for d in trace.dimensions] == ["lr", "opt.betas", "opt.name", "hparam/acc", "loss"]
    assert list(trace.dimensions[2].ticktext) == ["adam", "sgd"] and list(trace.dimensions[2].values) == [0, 1]
    assert trace.line.color[0] == 0.75 and math.isnan(trace.line.color[1])
    assert figure.layout.meta["runs"] == [2, 1]
    numbers = axis("x", [None, 1])
    assert math.isnan(numbers["values"][0]) and numbers["values"][1] == 1 and "ticktext" not in numbers
    texts = axis("y", ["b", None, "a"])
    assert texts == {"label": "y", "values": [1, -1, 0], "tickvals": [0, 1], "ticktext": ["a", "b"]}


def test_text_newest_first_and_images_of_one_step():
    texts = pd.DataFrame({"tag": ["t", "t"], "step": [0, 5], "wall_time": [0, 1], "text": ["old", "**new**"]})
    section = text_section(texts)
    items = section.children[1].children[1:]
    assert [i.children[1].children for i in items] == ["**new**", "old"]
    images = pd.DataFrame({"id": [7, 8, 9], "tag": ["i"] * 3, "step": [1, 1, 2], "sample": [1, 0, 0],
                           "width": [4, 4, 1000], "height": [2, 2, 2]})  # fmt: skip
    loaded = []
    out = image_children(images, 1, lambda i: (loaded.append(i), ("image/png", b"\x89PNG"))[1])
    assert loaded == [8, 7] and [img.width for img in out] == [256, 256]
    assert out[0].src == "data:image/png;base64,iVBORw=="


def test_an_imported_run_shows_no_rate():
    run = {"status": "finished", "duration_ns": 10**9, "last_step": 804, "source": "import"}
    assert header_parts(run, 805.0)["rate"] is None
    assert header_parts({**run, "source": "live"}, 805.0)["rate"] == "805 steps/s"
