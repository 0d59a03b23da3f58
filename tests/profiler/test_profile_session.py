"""run.profile on a real tiny model: windows stored as profiles, ops with shapes, modules, memory."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import pytest
import torch

import torchscope
from torchscope.errors import ProfilerError, TorchscopeWarning
from torchscope.profiler.session import trace_loader
from torchscope.storage.profile.records import ProfileWindow


def train(run, steps: int, **options):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*acc_events.*")
        with run.profile(**options) as prof:
            for _ in range(steps):
                loss = model(torch.randn(4, 8)).sum()
                loss.backward()
                opt.step()
                opt.zero_grad()
                prof.step()
    return prof


def test_each_finished_window_becomes_a_profile_with_its_steps(db_path):
    run = torchscope.init("p", db=db_path)
    prof = train(run, 9, wait=1, warmup=1, active=2, repeat=2)
    run.finish()
    assert prof.windows == 2
    with torchscope.open(db_path) as store:
        frame = store.profiles(run.id)
        assert frame["source"].tolist() == ["live", "live"]
        assert frame[["step_first", "step_last", "step_count"]].values.tolist() == [[2, 3, 2], [6, 7, 2]]
        breakdown = store.step_breakdown(int(frame.iloc[0]["id"]))
        assert breakdown["step"].tolist() == [2, 3]
        parts = [c for c in breakdown.columns if c.endswith("_ns") and c != "wall_ns"]
        assert (breakdown[parts].sum(axis=1) == breakdown["wall_ns"]).all()
        assert (breakdown["cpu_ns"] > 0).all() and (breakdown["kernel_ns"] == 0).all()


def test_ops_shapes_modules_and_memory_of_a_window(db_path):
    run = torchscope.init("p", db=db_path)
    train(run, 4, wait=1, warmup=1, active=2, record_shapes=True, profile_memory=True, with_stack=True)
    run.finish()
    with torchscope.open(db_path) as store:
        pid = int(store.profiles(run.id).iloc[0]["id"])
        ops = store.op_table(pid, group_by_shape=True)
        linear = ops[ops["name"] == "aten::linear"].set_index("input_shapes")
        assert linear.loc["[[4,8],[16,8],[16]]", "calls"] == 2
        assert linear.loc["[[4,16],[2,16],[2]]", "calls"] == 2
        assert (ops["host_self_ns"] <= ops["host_total_ns"]).all()
        modules = store.module_table(pid).set_index("module")
        assert list(modules.index) == ["Sequential_0", "Sequential_0/Linear_0", "Sequential_0/Linear_1",
                                       "Sequential_0/ReLU_0"]  # fmt: skip
        assert (modules["calls"] == 2).all()
        assert modules.loc["Sequential_0", "host_total_ns"] >= modules.drop("Sequential_0")["host_total_ns"].sum()
        memory = store.memory_timeline(pid)
        assert len(memory) > 0 and (memory["device"] == -1).all()
        peak = store.memory_peak(pid).iloc[0]
        assert peak["peak_allocated"] == memory["allocated"].max() > 0


def test_cuda_activities_only_when_a_gpu_is_present(db_path):
    run = torchscope.init("p", db=db_path)
    session = run.profile(active=1)
    names = {a.name for a in session.activities}
    assert names == ({"CPU", "CUDA"} if torch.cuda.is_available() else {"CPU"})
    run.finish()


def test_bad_schedule_is_a_profiler_error(db_path):
    run = torchscope.init("p", db=db_path)
    with pytest.raises(ProfilerError, match="active"):
        run.profile(active=0)
    run.finish()


def test_a_window_that_cannot_be_stored_warns_and_training_goes_on(tmp_path, db_path):
    run = torchscope.init("p", db=db_path)
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"traceEvents": [')
    run.writer.put(ProfileWindow(run.id, "broken", trace_loader(str(broken))))
    run.log({"loss": 1.0}, step=0)
    with pytest.warns(RuntimeWarning, match="not stored"):
        run.flush()
    run.finish()
    with torchscope.open(db_path) as store:
        assert store.profiles(run.id).empty
        assert store.scalars(run.id)["value"].tolist() == [1.0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_window_stores_kernels_joined_to_their_ops(db_path):
    run = torchscope.init("p", db=db_path)
    model = torch.nn.Linear(64, 64).cuda()
    with run.profile(wait=0, warmup=1, active=2) as prof:
        for _ in range(3):
            model(torch.randn(32, 64, device="cuda")).sum().backward()
            prof.step()
    run.finish()
    with torchscope.open(db_path) as store:
        pid = int(store.profiles(run.id).iloc[0]["id"])
        assert store.kernel_table(pid)["calls"].sum() > 0
        joined = store.kernel_ops(pid)
        assert joined.loc[joined["kind"] == "kernel", "op"].notna().all()


def test_window_files_are_removed_once_stored(db_path, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    run = torchscope.init("p", db=db_path)
    prof = train(run, 5, wait=0, warmup=1, active=2, repeat=2)
    run.finish()
    assert prof.windows == 2
    assert list(tmp_path.glob("torchscope-*")) == []


def test_names_of_a_rolled_back_window_are_not_reused_from_the_cache(db_path, tmp_path, monkeypatch):
    from torchscope.storage.profile import writes as write_profile
    from torchscope.storage.profile.live_writes import write_profile_windows

    run = torchscope.init("p", db=db_path)
    trace = b'{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::fresh", "pid": 1, "tid": 1, "ts": 1, "dur": 2}]}'
    real_insert = write_profile.insert_columns
    failures = [1]

    def failing_once(conn, table, columns, values, nulls):  # the disk fills up while the events go in, once
        if table.name == "profile_events" and failures:
            failures.pop()
            raise OSError("disk full")
        real_insert(conn, table, columns, values, nulls)

    monkeypatch.setattr(write_profile, "insert_columns", failing_once)

    def store(name: str) -> None:
        path = tmp_path / f"{name}.json"
        path.write_bytes(trace)
        window = ProfileWindow(run.id, name, trace_loader(str(path)))
        run.writer.call(lambda conn: write_profile_windows(conn, run.writer.interner, [window]))

    with pytest.warns(RuntimeWarning, match="not stored"):
        store("bad")
    store("good")
    run.finish()
    with torchscope.open(db_path) as reader:
        frame = reader.profiles(run.id)
        assert frame["name"].tolist() == ["good"]
        assert reader.events(int(frame.iloc[0]["id"]))["name"].tolist() == ["aten::fresh"]


def test_a_retried_writer_batch_interns_its_names_again(db_path):
    from torchscope.storage.bulk import insert_rows
    from torchscope.storage.handlers import HANDLERS
    from torchscope.storage.runs.schema import scalars

    attempts = []

    class InternThenFail(NamedTuple):
        run_id: int

    def intern_then_fail(conn, interner, records):  # a batch that fails once after interning a new name
        tag_id = interner.ids(conn, {"late/tag"})["late/tag"]
        attempts.append(tag_id)
        if len(attempts) == 1:
            raise OSError("transient")
        row = (records[0].run_id, tag_id, 0, 1.5, 1)
        insert_rows(conn, scalars, ("run_id", "tag_id", "step", "value", "wall_time"), [row])

    HANDLERS[InternThenFail] = intern_then_fail
    try:
        run = torchscope.init("p", db=db_path)
        run.writer.put(InternThenFail(run.id))
        run.finish()
    finally:
        del HANDLERS[InternThenFail]
    assert len(attempts) == 2
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        joined = conn.execute("SELECT n.name, s.value FROM scalars s JOIN names n ON n.id = s.tag_id").fetchall()
    assert joined == [("late/tag", 1.5)]


def test_a_window_that_cannot_be_exported_warns_and_training_goes_on(db_path, monkeypatch):
    def disk_full(self: object, path: str) -> None:
        raise OSError(28, "No space left on device")

    # (a missing temporary directory no longer fails: this torch's profiler creates it)
    monkeypatch.setattr(torch.profiler.profile, "export_chrome_trace", disk_full)
    run = torchscope.init("p", db=db_path)
    with pytest.warns(TorchscopeWarning, match="could not be exported"):
        prof = train(run, 4, wait=0, warmup=1, active=1, repeat=2)
    run.log({"after": 1.0}, step=0)
    run.finish()
    assert prof.windows == 0 and run.dropped == 2
    with torchscope.open(db_path) as store:
        assert store.profiles(run.id).empty
        assert store.scalars(run.id)["tag"].tolist() == ["after"]
