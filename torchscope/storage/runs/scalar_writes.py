"""Scalar records: :class:`~torchscope.storage.runs.records.ScalarLog`, as queued by ``Run.log``."""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

import numpy as np

from sqlalchemy import Connection, case, func
from sqlalchemy.dialects import postgresql, sqlite

from torchscope.storage.bulk import Interner, insert_rows
from torchscope.user_code import warn_once
from torchscope.storage.runs.records import ScalarLog
from torchscope.storage.runs.bucket_writes import update_buckets
from torchscope.storage.runs.schema import runs, scalar_latest, scalars

COLUMNS = ("run_id", "tag_id", "step", "value", "wall_time")


def to_float(value: Any) -> float | None:
    """A Python float for a logged value (numbers, bools, numpy scalars, one-element tensors); NaN becomes None.

    Raises ``TypeError``/``ValueError`` for values that are not a single number.
    """
    if type(value) is not float:
        if hasattr(value, "detach"):  # torch.Tensor: the host sync happens here, on the writer thread
            value = float(value.detach().item())  # not .float(): a float64 tensor keeps its double
        else:
            value = float(value)
    return None if math.isnan(value) else value


def _columns(logs: list[ScalarLog]) -> tuple[tuple[Any, ...], list[int], list[str], list[Any]]:
    """Transpose log calls: ``(runs, steps, walls)`` per call, tag counts, and all tags and values flattened.

    Only C-level iteration (zip, map, chain): this runs once per ``run.log`` and must keep up with the trainer.
    """
    runs_, steps, walls, datas = zip(*logs)  # a ScalarLog is a tuple: zip transposes the calls into its fields
    tags = list(chain.from_iterable(datas))
    values = list(chain.from_iterable(map(dict.values, datas)))
    return (runs_, steps, walls), list(map(len, datas)), tags, values


def _floats(values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """``values`` as float64 (NaN for NaN), and a mask of the ones kept (None: all), dropping non-numbers."""
    try:
        array = np.array(values, dtype=np.float64)
        if array.shape == (len(values),):  # a one-element tensor or array would make it 2-d: not one row per value
            return array, None
    except (TypeError, ValueError, OverflowError):
        pass
    out = np.empty(len(values), np.float64)
    keep = np.ones(len(values), bool)
    for i, value in enumerate(values):
        try:
            converted = to_float(value)
            out[i] = np.nan if converted is None else converted
        except (TypeError, ValueError, OverflowError, RuntimeError):
            keep[i] = False
    return out, keep


def write_scalars(conn: Connection, interner: Interner, logs: list[ScalarLog]) -> None:
    """Insert scalar rows and merge them into the bucket pyramid, then advance each run's ``last_step``,
    ``scalar_count`` and its latest value per tag."""
    (runs_, steps, walls), counts, tags, values = _columns(logs)
    ids = interner.ids(conn, set(tags))
    counts_arr = np.array(counts, np.int64)
    run = np.repeat(np.array(runs_, np.int64), counts_arr)
    step = np.repeat(np.array(steps, np.int64), counts_arr)
    wall = np.repeat(np.array(walls, np.int64), counts_arr)
    tag = np.fromiter(map(ids.__getitem__, tags), np.int64, len(tags))
    value, keep = _floats(values)
    if keep is not None:
        for bad in sorted({t for t, k in zip(tags, keep.tolist()) if not k}):  # run.log checked them: rare
            warn_once(f"log-value:{bad}", f"torchscope: a value logged as {bad!r} could not be read as a number and "
                      "was dropped; log one real number (a float, an int, or a one-element tensor)")  # fmt: skip
        run, step, wall, tag, value = run[keep], step[keep], wall[keep], tag[keep], value[keep]
    if not len(run):
        return
    stored_values = [None if v != v else v for v in value.tolist()]  # NaN is stored as NULL (SQLite has no NaN)
    insert_rows(conn, scalars, COLUMNS, list(zip(run.tolist(), tag.tolist(), step.tolist(), stored_values, wall.tolist())))
    key = (run << 32) | tag
    update_buckets(conn, key, step, wall, value)
    _upsert_latest(conn, key, step, wall, value)
    for run_id in np.unique(run).tolist():
        mine = run == run_id
        max_step, count = int(step[mine].max()), int(mine.sum())
        conn.execute(
            runs.update()
            .where(runs.c.id == run_id)
            .values(
                last_step=case((runs.c.last_step.is_(None), max_step), else_=func.max(runs.c.last_step, max_step))
                if conn.dialect.name == "sqlite"
                else func.greatest(func.coalesce(runs.c.last_step, max_step), max_step),
                scalar_count=runs.c.scalar_count + count,
            )
        )


def warm_up(conn: Connection, run_id: int) -> None:
    """Write one scalar and roll it back, so that the first real batch finds every statement compiled and every
    module loaded: that first-time work costs a tenth of a second of GIL, taken from a training loop that has
    already started otherwise."""
    savepoint = conn.begin_nested()
    try:
        write_scalars(conn, Interner(), [ScalarLog(run_id, 0, 0, {"torchscope/warm-up": 0.0})])
    finally:
        savepoint.rollback()


def _upsert_latest(conn: Connection, key: np.ndarray, step: np.ndarray, wall: np.ndarray, value: np.ndarray) -> None:
    """Keep each (run, tag)'s latest point (largest step, then latest wall time) and point count."""
    order = np.lexsort((wall, step, key))
    keys, first, count = np.unique(key[order], return_index=True, return_counts=True)
    last = order[first + count - 1]
    insert = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(scalar_latest)
    newer = insert.excluded.step >= scalar_latest.c.step
    statement = insert.on_conflict_do_update(
        index_elements=["run_id", "tag_id"],
        set_={
            "step": case((newer, insert.excluded.step), else_=scalar_latest.c.step),
            "value": case((newer, insert.excluded.value), else_=scalar_latest.c.value),
            "wall_time": case((newer, insert.excluded.wall_time), else_=scalar_latest.c.wall_time),
            "count": scalar_latest.c.count + insert.excluded.count,
        },
    )
    conn.execute(
        statement,
        [
            {"run_id": k >> 32, "tag_id": k & 0xFFFFFFFF, "step": s, "value": None if v != v else v, "wall_time": w,
             "count": n}
            for k, s, w, v, n in zip(keys.tolist(), step[last].tolist(), wall[last].tolist(), value[last].tolist(),
                                     count.tolist())
        ],
    )  # fmt: skip
