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
    reads = (fresh, TimelineReads(store._engine, fresh))
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
    assert len(modules) > 0  # with_stack=True: the module table has rows to compare
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
