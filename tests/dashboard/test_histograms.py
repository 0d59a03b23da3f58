"""The run page's histograms: TensorBoard logs written here with ``SummaryWriter.add_histogram`` and a watched model,
turned into TensorBoard's histogram (offset) and distribution (bands) views by pure builders (no browser)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from models import TinyMLP
from tensorboard.plugins.distribution.compressor import compress_histogram

import torchscope
from torchscope.dashboard import routes
from torchscope.dashboard.views.run.histogram_section import figure_for, series_for, tag_options
from torchscope.dashboard.views.run.histograms import (
    BASIS_POINTS, distribution_figure, grid, imported_series, percentiles, rebin, ridge_figure, watched_series,
)  # fmt: skip
from torchscope.io.importing import import_path
from torchscope.storage.store import Store

EDGES = np.array([0.0, 1.0, 2.0, 3.0, 4.0])


def write_histogram_log(logs: Path) -> None:
    """Two steps of one tag with fixed bins: [0,0,1,1,1,2,3,3] at step 0, [1,2,2,2,3,3] at step 5."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(logs))
    writer.add_histogram("layer/w", np.array([0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 3.0, 3.0]), 0, bins=EDGES)
    writer.add_histogram("layer/w", np.array([1.0, 2.0, 2.0, 2.0, 3.0, 3.0]), 5, bins=EDGES)
    writer.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Run 1: the imported log; run 2: a TinyMLP watched every step whose fc1.weight is 0, 1, ..., 31."""
    root = tmp_path_factory.mktemp("hist")
    write_histogram_log(root / "logs")
    import_path(root / "h.db", root / "logs")
    with torchscope.init(name="watched", db=root / "h.db") as run:
        model = TinyMLP()
        with torch.no_grad():
            model.fc1.weight.copy_(torch.arange(32.0).reshape(8, 4))
        run.watch(model, every=1)
        for step in range(3):
            model(torch.randn(2, 4)).sum().backward()
            run.log({"loss": 1.0}, step=step)
    return torchscope.open(root / "h.db")


def test_imported_histograms_become_one_series_of_buckets_per_step(store: Store) -> None:
    series = imported_series(store.histograms(1, ["layer/w"]))
    assert series["step"].tolist() == [0, 5]
    assert series["lo"].tolist() == [0.0, 1.0] and series["hi"].tolist() == [4.0, 4.0]
    # add_histogram keeps an empty bucket in front of the first full one (its left edge is the minimum)
    assert series["buckets"].iloc[0] == [[0, 0, 0], [0, 1, 2], [1, 2, 3], [2, 3, 1], [3, 4, 2]]
    assert series["buckets"].iloc[1] == [[1, 1, 0], [1, 2, 1], [2, 3, 3], [3, 4, 2]]


def test_rebinning_spreads_a_bucket_over_the_bins_it_overlaps() -> None:
    assert rebin([[0, 2, 4], [2, 2, 1], [3, 4, 2]], np.array([0.0, 1.0, 2.0, 3.0, 4.0])).tolist() == [2, 2, 1, 2]
    assert rebin([[0, 1, 3]], np.array([0.0, 0.5, 1.0])).tolist() == [1.5, 1.5]


def test_percentiles_are_tensorboards_distribution_values(store: Store) -> None:
    series = imported_series(store.histograms(1))
    assert percentiles(series["buckets"].iloc[0]) == pytest.approx(
        [0.0, 0.2672, 0.6348, 1.156, 5 / 3, 2.532, 3.3652, 3.7328, 4.0])  # fmt: skip
    for buckets in series["buckets"]:  # the very numbers TensorBoard's own compressor gives
        assert percentiles(buckets) == pytest.approx([v for _bp, v in compress_histogram(buckets, BASIS_POINTS)])
    assert percentiles([]) == [0.0] * len(BASIS_POINTS)


def test_ridge_figure_offsets_each_step_on_a_common_grid(store: Store) -> None:
    series = imported_series(store.histograms(1))
    assert grid(series, 4).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    figure = ridge_figure(series, "layer/w", bins=4)
    baseline0, step0, baseline5, step5 = figure["data"]
    assert baseline0["y"] == [1.0] * 4 and baseline5["y"] == [0.0] * 4  # the first step at the back, on top
    assert step0["x"] == [0.5, 1.5, 2.5, 3.5] and step0["fill"] == "tonexty"
    assert step0["y"] == pytest.approx([1 + 2 * 2 / 3, 1 + 2 * 3 / 3, 1 + 2 * 1 / 3, 1 + 2 * 2 / 3])  # tallest = 3
    assert step5["y"] == pytest.approx([0.0, 2 / 3, 2.0, 4 / 3])
    assert step5["customdata"][2] == [5, 3.0, 2.0, 3.0]  # step, count, bin
    assert figure["layout"]["yaxis"]["ticktext"] == ["5", "0"] and figure["layout"]["yaxis"]["tickvals"] == [0, 1]
    assert ridge_figure(series.iloc[:0], "none")["data"] == []


def test_distribution_figure_draws_nested_bands_around_the_median(store: Store) -> None:
    series = imported_series(store.histograms(1))
    figure = distribution_figure(series, "layer/w")
    traces = figure["data"]
    assert len(traces) == 9  # four bands (a lower and an upper edge each) and the median
    low, high = traces[0], traces[1]
    assert low["x"] == [0, 5] and low["y"] == [0.0, 1.0] and high["y"] == [4.0, 4.0] and high["fill"] == "tonexty"
    assert traces[7]["name"] == "30.85–69.15%"
    assert traces[6]["y"] == pytest.approx([1.156, 2.283667], abs=1e-6)
    assert traces[8]["name"] == "median" and traces[8]["y"] == pytest.approx([5 / 3, 8 / 3])


def test_watched_tensors_give_the_same_views_from_their_captured_histograms(store: Store) -> None:
    rows = store.tensor_stats(2, "fc1.weight")
    series = watched_series(rows)
    assert series["step"].tolist() == [0, 1, 2]
    buckets = series["buckets"].iloc[0]
    assert len(buckets) == 32 and buckets[0] == [0.0, 31 / 32, 1.0]
    assert [b[2] for b in buckets] == [1.0] * 32  # 0..31 over 32 equal bins of [0, 31]: one value each
    assert buckets[-1][1] == 31.0
    assert percentiles(buckets)[4] == pytest.approx(15.5)  # the median of 0..31 spread evenly
    assert watched_series(rows.iloc[:0]).empty


def test_the_section_lists_imported_and_watched_tags_and_reads_each(store: Store) -> None:
    assert tag_options(store, 1) == [{"label": "layer/w (TensorBoard)", "value": "tb:layer/w"}]
    watched = [o["value"] for o in tag_options(store, 2)]
    assert watched[:3] == ["tensor:input[0]", "tensor:fc1.weight", "tensor:fc1.bias"] and "tensor:grad:fc1.weight" in watched
    assert series_for(store, 2, "tensor:grad:fc1.weight")["step"].tolist() == [0, 1, 2]
    assert figure_for(store, 1, "tb:layer/w", "distribution")["data"][8]["name"] == "median"


def test_the_run_page_shows_the_histogram_the_url_asks_for(store: Store) -> None:
    page = str(routes.render(store, "/run/2", "?hist=tensor:fc1.bias&hmode=distribution", refresh_ms=1000))
    assert "id='hist-tag'" in page and "value='tensor:fc1.bias'" in page and "value='distribution'" in page
    assert "display" not in page.split("id='run-histograms'")[1][:80]
    for search, text in (("?hist=tensor:nope", "404"), ("?hmode=pie", "400")):
        assert text in str(routes.render(store, "/run/2", search, refresh_ms=1000))


def test_keras_reference_histograms_draw_as_tensorboard_does(shared_data: Path, tmp_path: Path) -> None:
    """Conformance on the Keras fit() logs: every weight histogram of every epoch keeps its count when re-binned and
    has TensorBoard's own distribution values."""
    result = import_path(tmp_path / "k.db", shared_data / "tensorboard_keras" / "keras")
    train = next(r["id"] for r in result.runs if r["name"].endswith("/train"))
    with torchscope.open(tmp_path / "k.db") as opened:
        options = tag_options(opened, train)
        assert [o["value"] for o in options] == [f"tb:sequential/{layer}/{part}/histogram"
                                                 for layer in ("encoder", "logits") for part in ("bias", "kernel")]
        rows = opened.histograms(train)
        for value in (o["value"] for o in options):
            series = series_for(opened, train, value)
            tagged = rows[rows["tag"] == value[3:]]
            assert series["step"].tolist() == sorted(tagged["step"]) == [0, 1, 2, 3, 4]
            edges = grid(series)
            for buckets, num in zip(series["buckets"], tagged.sort_values("step")["num"]):
                assert rebin(buckets, edges).sum() == pytest.approx(num)
                assert percentiles(buckets) == pytest.approx([v for _bp, v in compress_histogram(buckets)])
            figure = figure_for(opened, train, value, "ridge")
            assert len(figure["data"]) == 10 and figure["layout"]["yaxis"]["ticktext"] == ["4", "3", "2", "1", "0"]
