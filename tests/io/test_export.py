"""Exporting: Chrome traces that round-trip through our importer; TensorBoard files that TensorBoard reads."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import torchscope
from torchscope.cli.main import main
from torchscope.errors import ExportError
from torchscope.io.exporting import export_run
from torchscope.io.importing import import_path
from torchscope.storage.store import Store


def assert_same_profile(store: Store, a: int, b: int) -> None:
    """Profiles ``a`` and ``b`` hold identical events, lanes, details, other args and memory events (ids aside)."""
    pa, pb = store.profile(a), store.profile(b)
    for key in ("start_ns", "duration_ns", "event_count", "kernel_count", "step_first", "step_last", "device_name"):
        assert pa[key] == pb[key], key
    ea, eb = store.events(a), store.events(b)
    shift = int(eb["id"].min() - ea["id"].min())
    ea, eb = ea.reset_index(drop=True), eb.reset_index(drop=True)
    same = ["kind", "name", "start", "dur", "corr", "ext_id", "info"]
    pd.testing.assert_frame_equal(ea[same], eb[same])
    pd.testing.assert_series_equal(ea["parent"] + shift, eb["parent"])
    pd.testing.assert_series_equal(ea["link"] + shift, eb["link"])
    lane_cols = ["pid", "tid", "kind", "device", "stream", "label", "sort", "event_count", "max_level"]
    pd.testing.assert_frame_equal(store.lanes(a)[lane_cols], store.lanes(b)[lane_cols])
    da, db = store.event_details(a), store.event_details(b)
    da["event_id"] += shift
    pd.testing.assert_frame_equal(da, db)
    xa, xb = store.event_args(a), store.event_args(b)
    xa["event_id"] += shift
    pd.testing.assert_frame_equal(xa, xb)
    fa, fb = store.flows(a), store.flows(b)
    fa[["src", "dst"]] += shift
    pd.testing.assert_frame_equal(fa, fb)
    ma, mb = store.memory_timeline(a).drop(columns="lane_id"), store.memory_timeline(b).drop(columns="lane_id")
    pd.testing.assert_frame_equal(ma, mb)


@pytest.mark.parametrize("trace", ["mi250_rocm_train", "a100_alexnet", "cpu_only_rank34"])
def test_chrome_trace_export_round_trips_with_identical_events(trace, shared_data, tmp_path, db_path):
    first = import_path(db_path, shared_data / "kineto" / f"{trace}.json.gz")
    out = tmp_path / "out.json"
    lines = list(export_run(db_path, first.run_id, chrome_trace=out))
    assert lines == [f"wrote profile 1 ({first.profiles[0]['events']} events) as a Chrome trace to {out}"]
    second = import_path(db_path, out)
    with Store(db_path) as store:
        assert_same_profile(store, first.profiles[0]["id"], second.profiles[0]["id"])


def test_live_profile_with_memory_and_shapes_round_trips(tmp_path, db_path):
    run = torchscope.init("live", db=db_path)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*acc_events.*")
        with run.profile(wait=0, warmup=1, active=2, record_shapes=True, profile_memory=True) as prof:
            for _ in range(3):
                model(torch.randn(2, 8)).sum().backward()
                prof.step()
    run.finish()
    out = tmp_path / "live.json"
    list(export_run(db_path, run.id, chrome_trace=out))
    again = import_path(db_path, out)
    with Store(db_path) as store:
        assert len(store.memory_timeline(1)) > 0
        assert_same_profile(store, 1, again.profiles[0]["id"])


def test_tensorboard_export_is_read_back_by_tensorboard(shared_data, tmp_path, db_path):
    run = torchscope.init("tb", db=db_path)
    for step in range(5):
        run.log({"loss": 1.0 / (step + 1), "odd": float("nan") if step == 2 else step}, step=step)
    run.finish()
    logdir = tmp_path / "tb"
    lines = list(export_run(db_path, run.id, tensorboard_dir=logdir))
    assert lines == [f"wrote 10 scalars (2 tags) and 0 histograms of run {run.id} to {logdir}"]
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    loss = acc.Scalars("loss")
    assert [e.step for e in loss] == [0, 1, 2, 3, 4]
    assert [e.value for e in loss] == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2], rel=1e-6)
    odd = [e.value for e in acc.Scalars("odd")]
    assert math.isnan(odd[2]) and odd[:2] == [0.0, 1.0]


def test_imported_histograms_export_to_tensorboard_histograms(shared_data, tmp_path, db_path):
    result = import_path(db_path, shared_data / "tensorboard_keras" / "summary")
    logdir = tmp_path / "tb"
    list(export_run(db_path, result.run_id, tensorboard_dir=logdir))
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    with Store(db_path) as store:
        stored = store.histograms(result.run_id, tags=["demo/dist"])
    read = acc.Histograms("demo/dist")
    assert [e.step for e in read] == stored["step"].tolist()
    for event, buckets in zip(read, stored["buckets"]):
        assert list(event.histogram_value.bucket) == [b[2] for b in buckets]
        assert list(event.histogram_value.bucket_limit) == pytest.approx([b[1] for b in buckets])
    assert [e.value for e in acc.Scalars("demo/wave")][:2] == pytest.approx([2.0, 1.9701331556824833], rel=1e-6)


def test_export_of_a_profile_of_another_run_is_an_error(shared_data, tmp_path, db_path, capsys):
    import_path(db_path, shared_data / "kineto" / "cpu_only_rank34.json.gz")
    import_path(db_path, shared_data / "kineto" / "mi250_rocm_train.json.gz")
    with pytest.raises(ExportError, match="not a profile of run 1"):
        list(export_run(db_path, 1, chrome_trace=tmp_path / "x.json", profile_id=2))
    main(["export", "2", "--db", str(db_path), "--chrome-trace", str(tmp_path / "y.json")])
    assert "wrote profile 2" in capsys.readouterr().out
