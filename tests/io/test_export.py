"""Exporting: Chrome traces that round-trip through our importer (TensorBoard: test_export_tensorboard.py)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
import torch

from traces import reference

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


@pytest.mark.parametrize(
    "trace_file",
    ["cpu_trace", "gpu_trace", "rank0_trace", *reference("mi250_rocm_train", "a100_alexnet", "cpu_only_rank34")],
    indirect=True,
)
def test_chrome_trace_export_round_trips_with_identical_events(trace_file, tmp_path, db_path):
    first = import_path(db_path, trace_file)
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


def test_export_of_a_profile_of_another_run_is_an_error(cpu_trace, gpu_trace, tmp_path, db_path, capsys):
    import_path(db_path, cpu_trace)
    import_path(db_path, gpu_trace)
    with pytest.raises(ExportError, match="not a profile of run 1"):
        list(export_run(db_path, 1, chrome_trace=tmp_path / "x.json", profile_id=2))
    main(["export", "2", "--db", str(db_path), "--chrome-trace", str(tmp_path / "y.json")])
    assert "wrote profile 2" in capsys.readouterr().out
