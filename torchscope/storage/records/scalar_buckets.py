"""Keeping the ``scalar_buckets`` pyramid up to date as scalar rows are written (see :mod:`..buckets`)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, and_, select

from torchscope.storage import buckets
from torchscope.storage.bulk import insert_rows
from torchscope.storage.schema import scalar_buckets

KEY_COLUMNS = ("run_id", "tag_id", "level", "bucket")
COLUMNS = (*KEY_COLUMNS, *buckets.COLUMNS)
_STORED = [scalar_buckets.c[name] for name in ("run_id", "tag_id", "bucket", *buckets.COLUMNS)]


def update_buckets(conn: Connection, key: np.ndarray, step: np.ndarray, wall: np.ndarray, value: np.ndarray) -> None:
    """Merge new points (``key`` = ``run_id << 32 | tag_id``; NaN as NaN) into every level of the pyramid."""
    if not len(key):
        return
    points = (key, step, wall, value, np.ones(len(key), np.int64))
    for level, shift in enumerate(buckets.LEVEL_SHIFTS, start=1):
        fresh = buckets.aggregate(*points, shift)
        points = buckets.representatives(fresh)  # the next level is built from this one's representatives
        stored = _stored_rows(conn, level, fresh)
        if stored is not None:
            fresh = buckets.aggregate(*(np.concatenate(pair) for pair in zip(points, stored)), shift)
        insert_rows(conn, scalar_buckets, COLUMNS, _as_rows(level, fresh), replace_on=KEY_COLUMNS)


def _stored_rows(conn: Connection, level: int, fresh: dict[str, np.ndarray]) -> tuple[np.ndarray, ...] | None:
    """Representative points of the stored rows of the buckets ``fresh`` touches, or None if there are none."""
    wanted = set(zip(fresh["key"].tolist(), fresh["bucket"].tolist()))
    found: list[tuple] = []
    for key in np.unique(fresh["key"]).tolist():
        in_key = fresh["bucket"][fresh["key"] == key]
        query = select(*_STORED).where(
            and_(
                scalar_buckets.c.run_id == key >> 32,
                scalar_buckets.c.tag_id == key & 0xFFFFFFFF,
                scalar_buckets.c.level == level,
                scalar_buckets.c.bucket.between(int(in_key.min()), int(in_key.max())),
            )
        )
        found += [r for r in conn.execute(query) if ((r[0] << 32) | r[1], r[2]) in wanted]
    if not found:
        return None
    cols = list(zip(*found))
    agg = {"key": (np.array(cols[0], np.int64) << 32) | np.array(cols[1], np.int64), "bucket": np.array(cols[2])}
    for name, values in zip(buckets.COLUMNS, cols[3:]):
        kind = np.float64 if name.endswith("_value") else np.int64
        missing = np.nan if kind is np.float64 else buckets.ABSENT
        agg[name] = np.array([missing if v is None else v for v in values], kind)
    return buckets.representatives(agg)


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
