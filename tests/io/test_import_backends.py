"""The profile tables, import and analyses on both backends (SQLite file and PostgreSQL)."""

from __future__ import annotations


import pytest

from tb_logs import write_logs
from traces import load_trace, reference

from torchscope.errors import TraceImportError
from torchscope.io.exporting import export_run
from torchscope.io.importing import import_path
from torchscope.storage.store import Store


@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("mi250_rocm_train")], indirect=True)
def test_trace_import_analyses_and_round_trip_on_each_backend(any_db, trace_file, tmp_path):
    path = trace_file
    events = load_trace(path)["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel"]
    first = import_path(any_db, path)
    with Store(any_db) as store:
        pid = first.profiles[0]["id"]
        table = store.kernel_table(pid)
        assert int(table["calls"].sum()) == len(kernels) > 0
        assert int(table["total_ns"].sum()) == sum(round(e["dur"] * 1000) for e in kernels)
        breakdown = store.step_breakdown(pid)
        parts = [c for c in breakdown.columns if c.endswith("_ns") and c != "wall_ns"]
        assert (breakdown[parts].sum(axis=1) == breakdown["wall_ns"]).all()
        assert len(store.events(pid, max_items=5)) <= 5 * len(store.lanes(pid))
        assert store.op_table(pid)["calls"].sum() == sum(1 for e in events if e.get("cat") == "cpu_op")
    out = tmp_path / "again.json"
    list(export_run(any_db, first.run_id, chrome_trace=out))
    second = import_path(any_db, out)
    with Store(any_db) as store:
        a, b = store.events(first.profiles[0]["id"]), store.events(second.profiles[0]["id"])
        cols = ["kind", "name", "start", "dur", "corr", "ext_id"]
        assert a[cols].reset_index(drop=True).equals(b[cols].reset_index(drop=True))


def test_tensorboard_import_and_failed_import_on_each_backend(any_db, tmp_path):
    written = write_logs(tmp_path / "written")
    result = import_path(any_db, tmp_path / "written" / "fit")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"traceEvents": [')
    with pytest.raises(TraceImportError):
        import_path(any_db, bad)
    with Store(any_db) as store:
        assert len(store.runs()) == 2
        nodes, edges = store.imported_graph(result.run_id)
        assert len(nodes) == 4 and len(edges) == 3
        assert len(store.histograms(result.run_id)) == len(written["weights"]) * written["epochs"]


def test_live_profile_window_is_stored_on_each_backend(any_db):
    import warnings

    import torch

    import torchscope

    run = torchscope.init("live", db=any_db)
    model = torch.nn.Linear(4, 4)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*acc_events.*")
        with run.profile(wait=0, warmup=1, active=2, record_shapes=True) as prof:
            for _ in range(3):
                model(torch.randn(2, 4)).sum().backward()
                prof.step()
    run.finish()
    with Store(any_db) as store:
        frame = store.profiles(run.id)
        assert frame[["source", "step_first", "step_last"]].values.tolist() == [["live", 1, 2]]
        ops = store.op_table(int(frame.iloc[0]["id"]))
        assert ops.set_index("name").loc["aten::linear", "calls"] == 2
