"""Profile summaries are computed once when a profile is stored, and are exactly what the events give."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from torchscope.io.importing import import_path
from torchscope.storage.profile.reads import ProfileReads
from torchscope.storage.profile.summary_store import decode, encode
from torchscope.storage.store import Store
from torchscope.storage.summaries import SUMMARIES
from torchscope.storage.timeline.reads import TimelineReads
from traces import reference, trace_events


def _assert_stored_equal_computed(store: Store, profile_id: int) -> None:
    fresh = ProfileReads(store._engine, stored_summaries=False)  # frames read back from the stored events
    reads = (fresh, TimelineReads(store._engine, fresh), None)  # the host summaries from the timeline's index
    with store._engine.connect() as conn:
        stored = {n for (n,) in conn.exec_driver_sql(
            f"SELECT name FROM profile_summaries WHERE profile_id = {profile_id:d}")}  # fmt: skip
    assert stored == set(SUMMARIES)
    for name, compute in SUMMARIES.items():
        expected = compute(reads, profile_id)
        pd.testing.assert_frame_equal(store._profiles.summaries.get(profile_id, name, lambda: None), expected)


@pytest.mark.parametrize(
    "trace_file", ["gpu_trace", *reference("a100_alexnet", "mi250_rocm_train", "gpu_sampled_rank0")], indirect=True
)
def test_summaries_of_gpu_traces_equal_the_computation_from_events(trace_file, tmp_path):
    import_path(tmp_path / "g.db", trace_file)
    with Store(tmp_path / "g.db") as store:
        assert len(store.kernel_table(1)) > 0
        _assert_stored_equal_computed(store, 1)


def test_every_summary_is_stored_and_equals_the_computation_from_events(cpu_trace, db_path):
    import_path(db_path, cpu_trace)
    with Store(db_path) as store:
        _assert_stored_equal_computed(store, 1)
        ops = store.op_table(1)
        modules = store.module_table(1)
        op_modules, memory_by_op = store.op_modules(1), store.memory_by_op(1)
    assert len(modules) > 0  # with_stack=True: the module table has rows to compare
    # the summaries of the host events (from the importer's frame) have rows, which equal the timeline index's
    assert len(op_modules) > 5 and op_modules["module"].str.contains("/").any()
    assert len(memory_by_op) > 5 and (memory_by_op["op"] != "(no op)").sum() > 5
    # the operator table against a direct count over the raw JSON: calls and host time per cpu_op name
    _, events = trace_events(cpu_trace)
    calls: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "cpu_op":
            calls[e["name"]] += 1
            total[e["name"]] += int(round(e["dur"] * 1000))
    by_name = ops.set_index("name")
    assert set(by_name.index) == set(calls)
    assert by_name["calls"].to_dict() == dict(calls)
    assert by_name["host_total_ns"].to_dict() == dict(total)


def test_a_frame_survives_storage_with_its_dtypes_and_missing_values():
    frame = pd.DataFrame({
        "name": ["a", None, "c"], "n": np.array([1, 2, 3], dtype=np.int64), "share": [0.5, np.nan, np.inf],
        "maybe": pd.array([1, None, 3], dtype="Int64"), "flag": [True, False, True],
    })  # fmt: skip
    pd.testing.assert_frame_equal(decode(encode(frame)), frame)


_EVENT_COLUMNS = "lane_id, kind, name_id, level, start, dur, parent, corr, link, ext_id, info_id"


def _events_from_base(store: Store, profile_id: int) -> list[tuple]:
    """A profile's events and kernel details, with ids, parents and links counted from its first event and lanes
    from its first lane."""
    with store._engine.connect() as conn:
        base, lane0 = conn.exec_driver_sql(
            f"SELECT p.first_event_id, MIN(l.id) FROM profiles p JOIN profile_lanes l ON l.profile_id = p.id "
            f"WHERE p.id = {profile_id:d}"
        ).one()
        rows = conn.exec_driver_sql(
            f"SELECT id - {base}, lane_id - {lane0}, kind, name_id, level, start, dur, parent - {base}, corr, "
            f"link - {base}, ext_id, info_id FROM profile_events WHERE id >= {base} ORDER BY id"
        ).all()
        details = conn.exec_driver_sql(
            f"SELECT event_id - {base}, grid, block, registers FROM profile_event_details WHERE event_id >= {base} "
            "ORDER BY event_id"
        ).all()
    assert details  # the GPU-shaped trace's kernels have details: their event ids are checked too
    return [tuple(r) for r in rows] + [tuple(r) for r in details]


def test_a_profile_whose_event_ids_pass_int32_is_stored_and_summarised_the_same(gpu_trace, tmp_path):
    # ids that fit int32 are handled as int32 while importing (half the memory); beyond, as int64: same profile
    import_path(tmp_path / "small.db", gpu_trace)
    import_path(tmp_path / "large.db", gpu_trace)
    with Store(tmp_path / "large.db") as store, store._engine.begin() as conn:  # push the next event id near 2**31
        conn.exec_driver_sql(
            f"INSERT INTO profile_events ({_EVENT_COLUMNS}, id) SELECT {_EVENT_COLUMNS}, {2**31 - 100} "
            "FROM profile_events ORDER BY id LIMIT 1"
        )
    import_path(tmp_path / "large.db", gpu_trace)
    with Store(tmp_path / "small.db") as small, Store(tmp_path / "large.db") as large:
        assert int(large.profile(2)["first_event_id"]) == 2**31 - 99
        assert int(large.profile(2)["event_count"]) > 100  # so its last ids are beyond int32
        assert _events_from_base(large, 2) == _events_from_base(small, 1)
        for name in SUMMARIES:
            stored = large._profiles.summaries.get(2, name, lambda: None)
            pd.testing.assert_frame_equal(stored, small._profiles.summaries.get(1, name, lambda: None))
        _assert_stored_equal_computed(large, 2)
        ops_small, ops_large = small.kernel_ops(1), large.kernel_ops(2)  # ids beyond int32 stay exact (int64)
        assert (ops_large.dtypes == ops_small.dtypes).all() and len(ops_large) > 0
        for column in ("id", "launch_id", "op_id"):
            found = ops_small[column] >= 0
            assert ((ops_large[column] >= 0) == found).all()
            assert (ops_large[column][found] - (2**31 - 99)).tolist() == (ops_small[column][found] - 1).tolist()


def test_the_step_breakdown_joined_piece_by_piece_equals_the_one_joined_at_once(gpu_trace, db_path, monkeypatch):
    # spans are joined lane by lane and calc.PIECE events at a time, segments assigned calc.PIECE at a time:
    # tiny pieces (an event's span cut across pieces, a step's segments across batches) give the same table
    from torchscope.storage.profile import calc

    import_path(db_path, gpu_trace)
    with Store(db_path) as store:
        at_once = ProfileReads(store._engine, stored_summaries=False).step_breakdown(1)
        monkeypatch.setattr(calc, "PIECE", 5)
        by_piece = ProfileReads(store._engine, stored_summaries=False).step_breakdown(1)
    assert at_once["wall_ns"].sum() > 0 and (at_once.filter(like="_ns").drop(columns="wall_ns") > 0).sum().sum() >= 3
    pd.testing.assert_frame_equal(by_piece, at_once)


def test_the_memory_curve_is_the_traces_allocated_memory_with_its_peak(cpu_trace, db_path):
    import_path(db_path, cpu_trace)
    _, events = trace_events(cpu_trace)
    t0 = min(e["ts"] for e in events if e.get("ph") == "X")
    memory = [e for e in events if e.get("name") == "[memory]"]
    assert len(memory) > 10
    written = {(_ns(e["ts"]) - _ns(t0), e["args"]["Total Allocated"]) for e in memory}
    with Store(db_path) as store:
        curve = store.memory_curve(1)
        (peak,) = store.memory_peak(1).to_dict("records")
    assert set(curve[["device_type", "device"]].itertuples(index=False, name=None)) == {(0, -1)}  # the CPU
    assert len(curve) == len(memory)  # fewer than 5,000 points: every one of them
    assert set(zip(curve["ts"].tolist(), curve["allocated"].tolist())) <= written
    assert curve["allocated"].max() == max(e["args"]["Total Allocated"] for e in memory) == peak["peak_allocated"]


def _ns(us: float) -> int:
    """µs (as the trace writes them) to integer ns, as the importer counts them."""
    whole = int(us)
    return whole * 1000 + round((us - whole) * 1000)
