"""Parquet export: what DuckDB reads back equals what the store computes; re-exports replace; clear errors."""

from __future__ import annotations

import sqlite3
import sys

import duckdb
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from traces import reference

from torchscope.cli.main import cli, main
from torchscope.io.importing import import_path
from torchscope.io.parquet import export_parquet
from torchscope.storage.store import Store


def record_cpu_profile(path) -> None:
    """A real torch.profiler CPU trace of a few training steps of a tiny model, with input shapes."""
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        for step in range(2):
            with torch.profiler.record_function(f"ProfilerStep#{step}"):  # as a profiler schedule marks steps
                model(torch.randn(8, 16)).sum().backward()
    prof.export_chrome_trace(str(path))


def kernel_trace(path) -> None:
    """A small Kineto trace with two steps, runtime launches and the kernels they launched (correlation ids)."""
    events: list[dict] = []
    for step in range(2):
        t = 1000.0 * step
        events.append({"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{step}", "pid": 1, "tid": 1,
                       "ts": t, "dur": 900.0})  # fmt: skip
        kernels = [("volta_h884gemm_64x64", 120.0), ("elementwise_add", 30.5), ("elementwise_add", 41.25)]
        for i, (kernel, dur) in enumerate(kernels):
            corr = 100 * step + i
            ts = t + 10 + 200 * i
            events.append({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": ts, "dur": 50.0,
                           "args": {"External id": corr, "Input Dims": [[8, 8], [8, 8]], "Input type": ["float", "float"]}})  # fmt: skip
            events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
                           "ts": ts + 5, "dur": 8.0, "args": {"correlation": corr, "External id": corr}})  # fmt: skip
            events.append({"ph": "X", "cat": "kernel", "name": kernel, "pid": 0, "tid": 7, "ts": ts + 20, "dur": dur,
                           "args": {"correlation": corr, "External id": corr, "device": 0, "stream": 7,
                                    "registers per thread": 64 + i, "blocks per SM": 1.5,
                                    "est. achieved occupancy %": 25 + i}})  # fmt: skip
    path.write_bytes(orjson.dumps({"schemaVersion": 1, "traceEvents": events}))


def events_by_name_in_store(db_path, profile_id: int) -> list[tuple]:
    """Count and total duration per event name, straight from the SQLite file."""
    sql = (
        "SELECT n.name, COUNT(*), SUM(e.dur) FROM profile_events e JOIN names n ON n.id = e.name_id "
        "JOIN profile_lanes l ON l.id = e.lane_id WHERE l.profile_id = ? GROUP BY n.name ORDER BY n.name"
    )
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, (profile_id,)).fetchall()


def read(sql: str) -> pd.DataFrame:
    return duckdb.sql(sql).df()


def assert_same_kernel_table(exported: pd.DataFrame, stored: pd.DataFrame) -> None:
    """Equal values; a missing mean (None in the store's object column) reads back from Parquet as NULL -> NaN."""
    means = ["mean_occupancy", "mean_registers", "mean_blocks_per_sm"]
    pd.testing.assert_frame_equal(exported, stored.astype({c: "float64" for c in means}), check_dtype=False)


def test_cpu_profile_exported_through_the_cli_reads_back_in_duckdb_as_the_store_has_it(tmp_path, db_path):
    record_cpu_profile(tmp_path / "cpu.json")
    result = import_path(db_path, tmp_path / "cpu.json")
    out = tmp_path / "pq"
    invoked = CliRunner().invoke(cli, ["export", str(result.run_id), "--db", str(db_path), "--parquet", str(out)])
    assert invoked.exit_code == 0, invoked.output
    pid = result.profiles[0]["id"]
    events = result.profiles[0]["events"]
    assert invoked.output == f"wrote profile {pid} ({events} events) as Parquet in {out}\n"

    count = duckdb.sql(f"SELECT COUNT(*) FROM '{out}/events/*/*.parquet' WHERE profile_id = {pid}").fetchall()
    assert count == [(events,)]
    by_name = duckdb.sql(
        f"SELECT name, COUNT(*), SUM(dur_ns) FROM '{out}/events/*/*.parquet' GROUP BY name ORDER BY name"
    ).fetchall()
    assert by_name == events_by_name_in_store(db_path, pid)
    with Store(db_path) as store:
        meta = store.profile(pid)
        ops = store.op_table(pid)
        steps = store.step_breakdown(pid)
        stored = store.events(pid).sort_values("id", ignore_index=True)
    got = read(f"SELECT * FROM '{out}/events/*/*.parquet' ORDER BY event_id")
    assert got["start_ns"].tolist() == (stored["start"] + meta["start_ns"]).tolist()
    assert got["parent_id"].astype("Int64").tolist() == stored["parent"].tolist()
    assert got["shapes"].notna().sum() == stored["info"].notna().sum() > 0  # record_shapes=True: ops carry shapes
    assert set(got["kind"]) == set(stored["kind"])
    pd.testing.assert_frame_equal(
        read(f"SELECT * EXCLUDE (profile_id) FROM '{out}/operators/*/*.parquet'"), ops, check_dtype=False
    )
    exported_steps = read(f"SELECT * EXCLUDE (profile_id) FROM '{out}/steps/*/*.parquet'")
    assert exported_steps["step"].tolist() == steps["step"].tolist() == [0, 1]
    assert (exported_steps["start_ns"] - meta["start_ns"]).tolist() == steps["start"].tolist()
    assert exported_steps["idle_ns"].tolist() == steps["idle_ns"].tolist()
    profile = read(f"SELECT * FROM '{out}/profiles/*/*.parquet'")
    assert profile[["profile_id", "run_id", "event_count", "start_ns"]].values.tolist() == [
        [pid, result.run_id, events, meta["start_ns"]]
    ]


def test_kernel_table_events_and_row_groups_of_a_gpu_trace(tmp_path, db_path):
    kernel_trace(tmp_path / "gpu.json")
    result = import_path(db_path, tmp_path / "gpu.json")
    pid = result.profiles[0]["id"]
    out = tmp_path / "pq"
    with Store(db_path) as store:
        lines = list(export_parquet(store, [pid], out, chunk_rows=3, row_group_rows=8))
        kernels = store.kernel_table(pid)
        n_events = store.profile(pid)["event_count"]
    assert lines == [f"wrote profile {pid} ({n_events} events) as Parquet in {out}"]
    assert kernels["name"].tolist() == ["volta_h884gemm_64x64", "elementwise_add"]  # the fixture has kernels
    exported = read(f"SELECT * EXCLUDE (profile_id) FROM '{out}/kernels/*/*.parquet'")
    assert_same_kernel_table(exported, kernels)
    layout = pq.ParquetFile(out / "events" / f"profile_id={pid}" / "part-0.parquet").metadata
    assert [layout.row_group(i).num_rows for i in range(layout.num_row_groups)] == [8, 8, 4] and n_events == 20
    launches = read(
        f"SELECT k.name, k.correlation, k.lane_kind, k.stream, r.name AS launch FROM '{out}/events/*/*.parquet' k "
        f"JOIN '{out}/events/*/*.parquet' r ON r.event_id = k.link_id WHERE k.kind = 'kernel' ORDER BY k.correlation"
    )
    assert launches["correlation"].tolist() == [0, 1, 2, 100, 101, 102]
    assert set(launches["launch"]) == {"cudaLaunchKernel"} and set(launches["lane_kind"]) == {"device"}
    assert launches["stream"].tolist() == [7] * 6
    assert read(f"SELECT * FROM '{out}/events/*/*.parquet'")["event_id"].tolist() == sorted(
        read(f"SELECT event_id FROM '{out}/events/*/*.parquet'")["event_id"]
    )


def test_exporting_again_replaces_the_profile_and_a_second_profile_is_added(tmp_path, db_path):
    kernel_trace(tmp_path / "gpu.json")
    first = import_path(db_path, tmp_path / "gpu.json")
    second = import_path(db_path, tmp_path / "gpu.json")
    out = tmp_path / "pq"
    with Store(db_path) as store:
        n = store.profile(1)["event_count"]
        list(export_parquet(store, [1], out))
        assert list(export_parquet(store, [1, 2], out)) == [
            f"replaced profile 1 ({n} events) as Parquet in {out}",
            f"wrote profile 2 ({n} events) as Parquet in {out}",
        ]
    counts = duckdb.sql(f"SELECT profile_id, COUNT(*) FROM '{out}/events/*/*.parquet' GROUP BY 1 ORDER BY 1")
    assert counts.fetchall() == [(1, n), (2, n)]
    runs = duckdb.sql(f"SELECT profile_id, run_id FROM '{out}/profiles/*/*.parquet' ORDER BY 1").fetchall()
    assert runs == [(1, first.run_id), (2, second.run_id)]
    assert sorted(p.name for p in out.iterdir()) == ["_torchscope_export.json", "events", "kernels", "operators",
                                                     "profiles", "steps"]  # fmt: skip


def test_bad_requests_are_one_line_errors(tmp_path, db_path, capsys, monkeypatch):
    kernel_trace(tmp_path / "gpu.json")
    import_path(db_path, tmp_path / "gpu.json")
    out = tmp_path / "pq"
    args = ["export", "1", "--db", str(db_path), "--parquet", str(out)]
    with pytest.raises(SystemExit):
        main([*args, "--profile", "9"])
    assert capsys.readouterr().err == "torchscope: error: profile 9 is not a profile of run 1 (it has [1])\n"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        main([*args[:-1], str(tmp_path / "other")])
    assert "is not a torchscope Parquet export; choose a new or empty directory" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["notes.txt"]
    other_db = tmp_path / "other.db"
    import_path(other_db, tmp_path / "gpu.json")
    main(args)
    with pytest.raises(SystemExit):
        main(["export", "1", "--db", str(other_db), "--parquet", str(out)])
    assert "holds profiles exported from another database" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    with pytest.raises(SystemExit):
        main(args)
    assert capsys.readouterr().err == "torchscope: error: writing Parquet needs pyarrow: pip install 'torchscope[parquet]'\n"


def test_iter_events_reads_every_event_once_in_bounded_chunks(tmp_path, any_db):
    kernel_trace(tmp_path / "gpu.json")
    import_path(any_db, tmp_path / "gpu.json")
    import_path(any_db, tmp_path / "gpu.json")
    with Store(any_db) as store:
        chunks = list(store.iter_events(2, chunk_rows=5))
        whole = store.events(2).sort_values("id", ignore_index=True)
    assert [len(c) for c in chunks] == [5] * (len(whole) // 5) + ([len(whole) % 5] if len(whole) % 5 else [])
    joined = pd.concat(chunks, ignore_index=True)
    cols = ["id", "lane_id", "kind", "name", "start", "dur", "parent", "corr", "link", "ext_id"]
    pd.testing.assert_frame_equal(joined[cols], whole[cols], check_dtype=False)
    assert joined["info"].fillna("").tolist() == whole["info"].fillna("").tolist()


@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("a100_alexnet", "mi250_rocm_train")], indirect=True)
def test_reference_trace_kernel_table_survives_the_export(trace_file, tmp_path, db_path):
    result = import_path(db_path, trace_file)
    out = tmp_path / "pq"
    with Store(db_path) as store:
        list(export_parquet(store, [1], out, chunk_rows=256))
        kernels = store.kernel_table(1)
    assert len(kernels) > 5
    exported = read(f"SELECT * EXCLUDE (profile_id) FROM '{out}/kernels/*/*.parquet'")
    assert_same_kernel_table(exported, kernels)
    by_name = duckdb.sql(f"SELECT name, COUNT(*), SUM(dur_ns) FROM '{out}/events/*/*.parquet' GROUP BY 1 ORDER BY 1")
    assert by_name.fetchall() == events_by_name_in_store(db_path, 1)
    assert result.profiles[0]["id"] == 1
