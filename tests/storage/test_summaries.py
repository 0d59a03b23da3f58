"""Pure helpers behind overviews: key-scalar choice, formatting, downsampling."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from torchscope.dashboard.formatting import fmt_duration, fmt_value
from torchscope.storage.runs.downsample import downsample_keep_extremes
from torchscope.storage.runs.summaries import key_tags, run_summaries


def test_key_tags_put_losses_first_and_leave_out_system_metrics() -> None:
    last = pd.DataFrame(
        {
            "run_id": [1, 1, 1, 1, 2, 2],
            "tag": ["sys/cpu", "train/accuracy", "train/loss", "epoch", "val/loss", "epoch"],
            "value": [1.0, 0.5, 0.2, 3.0, 0.3, 4.0],
        }
    )
    assert key_tags(last, limit=3) == ["train/loss", "val/loss", "train/accuracy"]
    assert key_tags(last, limit=5) == ["train/loss", "val/loss", "train/accuracy", "epoch"]


def test_run_summaries_keep_never_logged_apart_from_logged_nan() -> None:
    runs = pd.DataFrame({"id": [1, 2]})
    last = pd.DataFrame({"run_id": [1], "tag": ["loss"], "value": [math.nan]})
    frame, tags = run_summaries(runs, last)
    assert tags == ["loss"]
    assert math.isnan(frame.loc[0, "loss"])
    assert frame.loc[1, "loss"] is None


def test_formatting_spells_out_special_values_and_durations() -> None:
    assert [fmt_value(v) for v in (math.nan, math.inf, -math.inf, None, 0.000123456)] == [
        "NaN", "+Inf", "-Inf", "-", "0.0001235",
    ]  # fmt: skip
    assert [fmt_duration(ns) for ns in (12_000, 15_000_000, 4_200_000_000, 185 * 10**9, 3720 * 10**9)] == [
        "12µs", "15ms", "4.2s", "3m 05s", "1h 02m",
    ]  # fmt: skip


def test_downsampling_bounds_points_and_keeps_extremes_per_group() -> None:
    n = 10_000
    values = np.sin(np.arange(n) / 100.0)
    values[5000] = 50.0
    values[6000] = -50.0
    values[7000] = np.nan
    values[7001] = np.inf
    frame = pd.DataFrame({"tag": ["a"] * n + ["b"] * 10, "step": list(range(n)) + list(range(10)),
                          "value": list(values) + [1.0] * 10})  # fmt: skip
    out = downsample_keep_extremes(frame, "tag", "step", "value", 200)
    a = out[out["tag"] == "a"]
    assert len(a) <= 200 + 50 * 3
    assert {5000, 6000, 7000, 7001, 0, n - 1} <= set(a["step"])
    assert out[out["tag"] == "b"]["step"].tolist() == list(range(10))
    assert a["step"].is_monotonic_increasing
