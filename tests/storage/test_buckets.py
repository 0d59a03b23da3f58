"""The scalar bucket pyramid: per-bucket extremes, merged incrementally, equal to aggregating everything at once."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import torchscope
from torchscope.storage.runs import buckets


def _series(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    key = rng.integers(0, 3, n).astype(np.int64)
    step = rng.integers(0, 5000, n).astype(np.int64)
    wall = np.arange(n, dtype=np.int64)
    value = rng.normal(size=n)
    value[rng.integers(0, n, 20)] = np.nan
    value[rng.integers(0, n, 10)] = np.inf
    value[rng.integers(0, n, 10)] = -np.inf
    return key, step, wall, value, np.ones(n, np.int64)


def _brute(key, step, wall, value, shift):  # type: ignore[no-untyped-def]
    groups: dict[tuple[int, int], list[tuple[int, int, float]]] = {}
    for k, s, w, v in zip(key.tolist(), step.tolist(), wall.tolist(), value.tolist()):
        groups.setdefault((k, s >> shift), []).append((s, w, v))
    out = {}
    for group, pts in groups.items():
        pts.sort()
        finite = [p for p in pts if math.isfinite(p[2])]
        out[group] = {
            "n": len(pts),
            "first": pts[0][:2],
            "last": pts[-1][:2],
            "min": min(finite, key=lambda p: (p[2], p[0], p[1]))[:2] if finite else None,
            "max": max(finite, key=lambda p: (p[2], -p[0], -p[1]))[:2] if finite else None,
            "nan": next((p[:2] for p in pts if math.isnan(p[2])), None),
            "pinf": next((p[:2] for p in pts if p[2] == math.inf), None),
            "ninf": next((p[:2] for p in pts if p[2] == -math.inf), None),
        }
    return out


def _as_dict(agg):  # type: ignore[no-untyped-def]
    out = {}
    for i, group in enumerate(zip(agg["key"].tolist(), agg["bucket"].tolist())):
        row = {"n": int(agg["n"][i])}
        for role in buckets.ROLES:
            step = int(agg[f"{role}_step"][i])
            row[role] = None if step == buckets.ABSENT else (step, int(agg[f"{role}_wall"][i]))
        out[group] = row
    return out


def test_aggregate_matches_a_brute_force_count_and_extremes() -> None:
    key, step, wall, value, weight = _series(5000)
    for shift in buckets.LEVEL_SHIFTS[:3]:
        assert _as_dict(buckets.aggregate(key, step, wall, value, weight, shift)) == _brute(key, step, wall, value, shift)


def test_merging_batches_equals_aggregating_everything_at_once() -> None:
    key, step, wall, value, weight = _series(6000, seed=3)
    shift = buckets.LEVEL_SHIFTS[0]
    whole = buckets.aggregate(key, step, wall, value, weight, shift)
    merged = None
    for part in np.array_split(np.arange(len(key)), 7):
        fresh = buckets.aggregate(key[part], step[part], wall[part], value[part], weight[part], shift)
        if merged is not None:
            both = [np.concatenate(pair) for pair in zip(buckets.representatives(fresh), buckets.representatives(merged))]
            fresh = buckets.aggregate(*both, shift)
        merged = fresh
    assert _as_dict(merged) == _as_dict(whole)


def test_choose_level_reads_small_series_whole_and_bounds_long_ones() -> None:
    assert buckets.choose_level(1000, 999, 1500) == 0
    level = buckets.choose_level(20_000, 19_999, 1400)
    assert ((19_999 >> buckets.LEVEL_SHIFTS[level - 1]) + 1) * len(buckets.ROLES) <= 1400
    assert ((19_999 >> buckets.LEVEL_SHIFTS[level - 2]) + 1) * len(buckets.ROLES) > 1400 if level > 1 else True


def test_store_reads_long_series_from_the_pyramid_with_every_extreme(db_path: Path) -> None:
    n = 30_000
    values = np.sin(np.arange(n) / 500.0)
    values[[777, 12_345, 20_000, 20_001, 29_998]] = [math.nan, 1e6, math.inf, -math.inf, -1e6]
    with torchscope.init(db=db_path, system_metrics=False) as run:
        for start in range(0, n, 4096):  # several commits, so buckets are merged with stored rows
            for step in range(start, min(n, start + 4096)):
                run.log({"x": float(values[step])}, step=step)
            run.flush()
    frame = torchscope.open(db_path).scalars(run.id, max_items=700)
    assert len(frame) <= 700
    kept = dict(zip(frame["step"].tolist(), frame["value"].tolist()))
    assert math.isnan(kept[777]) and kept[12_345] == 1e6 and kept[29_998] == -1e6
    assert kept[20_000] == math.inf and kept[20_001] == -math.inf
    assert 0 in kept and n - 1 in kept
    assert all(kept[s] == values[s] for s in kept if math.isfinite(values[s]))
