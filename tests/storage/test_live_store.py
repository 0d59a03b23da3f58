"""The store reads behind live pages: points after a cursor, downsampling that keeps extremes, a run's artifacts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import torchscope
from torchscope.storage.runs.downsample import downsample_keep_extremes
from torchscope.errors import TorchscopeWarning


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
    import torch

    run = torchscope.init(name="art", db=db_path, system_metrics=False)
    store = torchscope.open(db_path)
    assert store.run_artifacts(run.id).empty
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    watching = run.watch(model, every=1)
    with watching, run.profile(wait=0, warmup=1, active=1, name="window") as prof, pytest.warns(TorchscopeWarning):
        for step in range(3):
            x = torch.ones(4, 3)
            x[0, 0] = math.nan if step == 2 else 1.0  # the first NaN enters at step 2
            model(x).sum().backward()
            run.log({"loss": 1.0}, step=step)
            prof.step()
    run.finish()
    artifacts = store.run_artifacts(run.id)
    assert artifacts["kind"].tolist() == ["graph", "anomaly", "profile"]
    graph, anomaly, profile = artifacts.to_dict("records")
    assert graph["step"] == 0 and graph["name"].endswith(" ops")
    assert anomaly["step"] == 2 and anomaly["name"].startswith("forward: ")
    assert profile["id"] == int(store.profiles(run.id)["id"].iloc[0])
    assert store.run_artifacts(run.id + 1).empty


def test_downsampled_series_are_cached_and_caught_up_with_new_points(db_path: Path) -> None:
    run = torchscope.init(name="cache", db=db_path, system_metrics=False)
    for step in range(3000):
        run.log({"x": math.sin(step / 50), "y": float(step)}, step=step)
    run.flush()
    store = torchscope.open(db_path)
    first = store.scalars_downsampled(run.id, 400)
    assert first.equals(store.scalars(run.id, max_items=400))

    run.log({"x": 1000.0}, step=3000)  # a spike after the cached read
    run.log({"x": math.nan, "z": 5.0}, step=3001)  # a NaN, and a new tag
    for step in range(3002, 3400):
        run.log({"x": 0.5, "y": float(step)}, step=step)
    run.flush()
    cached = store.scalars_downsampled(run.id, 400)
    x = cached[cached["tag"] == "x"]
    assert x["step"].is_monotonic_increasing and x["step"].iloc[-1] == 3399
    kept = dict(zip(x["step"], x["value"]))
    assert kept[3000] == 1000.0 and math.isnan(kept[3001])
    assert cached[cached["tag"] == "z"]["value"].tolist() == [5.0]
    assert cached.groupby("tag").size().max() <= 2 * 400
    assert cached[cached["tag"] == "y"]["value"].max() == 3399.0  # the last point of every tag is kept
    run.finish()
