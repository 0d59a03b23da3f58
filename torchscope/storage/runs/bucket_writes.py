"""Keeping the ``scalar_buckets`` pyramid up to date as scalar rows are written (see :mod:`..buckets`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, or_, select

from torchscope.storage.runs import buckets
from torchscope.storage.bulk import insert_rows
from torchscope.storage.runs.schema import scalar_buckets

KEY_COLUMNS = ("run_id", "tag_id", "level", "bucket")
COLUMNS = (*KEY_COLUMNS, *buckets.COLUMNS)
_STORED = [scalar_buckets.c[name] for name in ("level", "run_id", "tag_id", "bucket", *buckets.COLUMNS)]


def update_buckets(conn: Connection, key: np.ndarray, step: np.ndarray, wall: np.ndarray, value: np.ndarray) -> None:
    """Merge new points (``key`` = ``run_id << 32 | tag_id``; NaN as NaN) into every level of the pyramid.

    Two statements whatever the batch: one read of the stored buckets it touches, one upsert. On SQLite every
    statement hands the GIL away and must win it back from the training thread, so their number matters more
    than their size.
    """
    if not len(key):
        return
    points = (key, step, wall, value, np.ones(len(key), np.int64))
    fresh_levels = []
    for shift in buckets.LEVEL_SHIFTS:
        fresh = buckets.aggregate(*points, shift)
        fresh_levels.append(fresh)
        points = buckets.representatives(fresh)  # the next level is built from this one's representatives
    stored = _stored_rows(conn, fresh_levels)
    rows: list[tuple] = []
    for level, (shift, fresh) in enumerate(zip(buckets.LEVEL_SHIFTS, fresh_levels), start=1):
        if level in stored:
            both = zip(buckets.representatives(fresh), buckets.representatives(stored[level]))
            fresh = buckets.aggregate(*(np.concatenate(pair) for pair in both), shift)
        rows += _as_rows(level, fresh)
    insert_rows(conn, scalar_buckets, COLUMNS, rows, replace_on=KEY_COLUMNS)


def _stored_rows(conn: Connection, fresh_levels: list[dict[str, np.ndarray]]) -> dict[int, dict[str, np.ndarray]]:
    """The stored rows of the buckets the fresh aggregates touch, per level, as aggregate columns."""
    wanted = {
        (level, k, b)
        for level, fresh in enumerate(fresh_levels, start=1)
        for k, b in zip(fresh["key"].tolist(), fresh["bucket"].tolist())
    }
    keys = np.unique(fresh_levels[0]["key"])
    ranges = [
        and_(scalar_buckets.c.level == level, scalar_buckets.c.bucket.between(int(f["bucket"].min()), int(f["bucket"].max())))
        for level, f in enumerate(fresh_levels, start=1)
    ]
    query = select(*_STORED).where(
        scalar_buckets.c.run_id.in_(np.unique(keys >> 32).tolist()),
        scalar_buckets.c.tag_id.in_(np.unique(keys & 0xFFFFFFFF).tolist()),
        or_(*ranges),
    )
    found = [r for r in conn.execute(query).all() if (r[0], (r[1] << 32) | r[2], r[3]) in wanted]
    by_level: dict[int, list[Any]] = {}
    for row in found:
        by_level.setdefault(row[0], []).append(row)
    out = {}
    for level, level_rows in by_level.items():
        cols = list(zip(*level_rows))
        agg = {"key": (np.array(cols[1], np.int64) << 32) | np.array(cols[2], np.int64), "bucket": np.array(cols[3], np.int64)}
        for name, values in zip(buckets.COLUMNS, cols[4:]):
            kind = np.float64 if name.endswith("_value") else np.int64
            missing = np.nan if kind is np.float64 else buckets.ABSENT
            agg[name] = np.array([missing if v is None else v for v in values], kind)
        out[level] = agg
    return out


def _as_rows(level: int, agg: dict[str, np.ndarray]) -> list[tuple]:
    """Aggregate columns as table rows; absent roles and NaN values become NULL."""
    run = (agg["key"] >> 32).tolist()
    tag = (agg["key"] & 0xFFFFFFFF).tolist()
    columns = [run, tag, [level] * len(run), agg["bucket"].tolist()]
    for name in buckets.COLUMNS:
        values = agg[name]
        if name.endswith("_value"):
            columns.append([None if v != v else v for v in values.tolist()])
        elif name == "n":
            columns.append(values.tolist())
        else:
            columns.append([None if v == buckets.ABSENT else v for v in values.tolist()])
    return list(zip(*columns))
