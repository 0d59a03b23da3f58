"""The store reads behind live pages: points after a cursor, downsampling that keeps extremes, a run's artifacts."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

import torchscope
from torchscope.storage.downsample import downsample_keep_extremes
from torchscope.storage.engine import open_engine
from torchscope.storage.schema_graph import graph_anomalies, graph_versions
from torchscope.storage.schema_profile import profiles


def test_scalars_after_returns_only_points_past_each_tags_cursor(any_db: str) -> None:
    run = torchscope.init(name="live", db=any_db, system_metrics=False)
    for step in range(10):
        run.log({"a": step * 1.5, "b": -step}, step=step)
    run.flush()
    store = torchscope.open(any_db)
    everything = store.scalars(run.id)
    wall = dict(zip(zip(everything["tag"], everything["step"]), everything["wall_time"]))

    fresh = store.scalars_after(run.id, {"a": (4, wall[("a", 4)])})
    assert list(zip(fresh["tag"], fresh["step"])) == [("a", s) for s in range(5, 10)] + [("b", s) for s in range(10)]
    assert fresh["value"].tolist() == [s * 1.5 for s in range(5, 10)] + [-float(s) for s in range(10)]
    assert fresh.columns.tolist() == ["run_id", "step", "tag", "value", "wall_time"]

    caught_up = {tag: (9, wall[(tag, 9)]) for tag in ("a", "b")}
    assert store.scalars_after(run.id, caught_up).empty

    # the same step logged again later (as system metrics are, at the current step) is new
    run.log({"a": 99.0}, step=9)
    run.flush()
    again = store.scalars_after(run.id, caught_up)
    assert list(zip(again["tag"], again["step"], again["value"])) == [("a", 9, 99.0)]
    run.finish()


def test_full_read_downsamples_keeping_spikes_and_every_nonfinite_kind(any_db: str) -> None:
    n = 20_000
    values = np.cos(np.arange(n) / 300.0)
    values[[4321, 9876, 15000, 15001, 17777]] = [40.0, -40.0, math.nan, math.inf, -math.inf]
    with torchscope.init(name="long", db=any_db, system_metrics=False) as run:
        for step, value in enumerate(values.tolist()):
            run.log({"x": value, "small": 1.0} if step < 5 else {"x": value}, step=step)
    store = torchscope.open(any_db)
    frame = store.scalars(run.id, max_items=400)
    x = frame[frame["tag"] == "x"]
    assert len(x) <= 400 + 100 * 3
    assert {0, 4321, 9876, 15000, 15001, 17777, n - 1} <= set(x["step"])
    assert x["step"].is_monotonic_increasing
    kept = dict(zip(x["step"], x["value"]))
    assert kept[4321] == 40.0 and kept[9876] == -40.0 and math.isnan(kept[15000])
    assert kept[15001] == math.inf and kept[17777] == -math.inf
    assert all(kept[s] == values[s] for s in kept if math.isfinite(values[s]))
    assert frame[frame["tag"] == "small"]["step"].tolist() == list(range(5))
    assert store.scalars(run.id, ["small"])["value"].tolist() == [1.0] * 5


def test_downsampling_keeps_each_buckets_first_last_min_and_max() -> None:
    import pandas as pd

    values = [5.0, 1.0, 9.0, 3.0] * 10 + [2.0]  # 41 points, 10 buckets of about 4
    frame = pd.DataFrame({"tag": ["t"] * 41, "step": range(41), "value": values})
    out = downsample_keep_extremes(frame, "tag", "step", "value", 40)
    # buckets [0,4) [4,8) ... hold 5,1,9,3: all four are first/min/max/last; the last bucket has 5 points
    assert out["step"].tolist() == list(range(36)) + [36, 37, 38, 40]


def test_run_artifacts_lists_graphs_anomalies_and_profiles(db_path: Path) -> None:
    with torchscope.init(name="art", db=db_path, system_metrics=False) as run:
        run.log({"loss": 1.0}, step=0)
    store = torchscope.open(db_path)
    assert store.run_artifacts(run.id).empty
    engine = open_engine(db_path, create=False)
    now = time.time_ns()
    with engine.begin() as conn:
        conn.execute(graph_versions.insert().values(run_id=run.id, hash="h", n_nodes=9, n_ops=4, n_edges=8,
                                                    first_step=0, created_at=now))  # fmt: skip
        conn.execute(graph_anomalies.insert().values(run_id=run.id, step=7, version_id=1, phase="forward", node=3,
                                                     tensor="fc.out", nan=1, posinf=0, neginf=0, inputs="[]",
                                                     wall_time=now))  # fmt: skip
        conn.execute(profiles.insert().values(run_id=run.id, name="window 1", source="live", start_ns=now,
                                              duration_ns=1, step_first=3, created_at=now))  # fmt: skip
        conn.execute(profiles.insert().values(run_id=run.id + 1, name="other run", source="live", start_ns=now,
                                              duration_ns=1, created_at=now))  # fmt: skip
    engine.dispose()
    artifacts = store.run_artifacts(run.id)
    assert artifacts[["kind", "name", "step"]].values.tolist() == [
        ["graph", "4 ops", 0], ["anomaly", "forward: fc.out", 7], ["profile", "window 1", 3],
    ]  # fmt: skip
