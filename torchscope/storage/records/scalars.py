"""Scalar records: ``(run_id, step, wall_time_ns, {tag: value})`` as queued by ``Run.log``."""

from __future__ import annotations

import math
import warnings
from typing import Any

from sqlalchemy import Connection, case, func
from sqlalchemy.dialects import postgresql, sqlite

from torchscope.storage.bulk import Interner, insert_rows
from torchscope.storage.records import handler
from torchscope.storage.schema import runs, scalar_latest, scalars

COLUMNS = ("run_id", "tag_id", "step", "value", "wall_time")


def to_float(value: Any) -> float | None:
    """A Python float for a logged value (numbers, bools, numpy and 0-d torch tensors); NaN becomes None.

    Raises ``TypeError``/``ValueError`` for values that are not a single number.
    """
    if type(value) is not float:
        if hasattr(value, "detach"):  # torch.Tensor: the host sync happens here, on the writer thread
            value = value.detach().float().item()
        else:
            value = float(value)
    return None if math.isnan(value) else value


@handler("scalars")
def write_scalars(conn: Connection, interner: Interner, payloads: list[Any]) -> None:
    """Insert scalar rows, then advance each run's ``last_step``/``scalar_count`` and its latest value per tag."""
    tags: set[str] = set()
    for _, _, _, data in payloads:
        tags.update(data)
    ids = interner.ids(conn, tags)
    rows: list[tuple[int, int, int, float | None, int]] = []
    latest: dict[tuple[int, int], list[Any]] = {}
    per_run: dict[int, list[int]] = {}
    bad: list[str] = []
    for run_id, step, wall, data in payloads:
        for tag, value in data.items():
            try:
                value = to_float(value)
            except (TypeError, ValueError, RuntimeError):
                bad.append(tag)
                continue
            tag_id = ids[tag]
            rows.append((run_id, tag_id, step, value, wall))
            entry = latest.get((run_id, tag_id))
            if entry is None:
                latest[(run_id, tag_id)] = [step, value, wall, 1]
            else:
                if step >= entry[0]:
                    entry[0], entry[1], entry[2] = step, value, wall
                entry[3] += 1
        stats = per_run.setdefault(run_id, [step, 0])
        stats[0] = max(stats[0], step)
        stats[1] += len(data)
    if bad:
        warnings.warn(
            f"torchscope: run.log values must be single numbers; skipped tags {sorted(set(bad))[:5]}",
            RuntimeWarning,
            stacklevel=2,
        )
    insert_rows(conn, scalars, COLUMNS, rows)
    _upsert_latest(conn, latest)
    for run_id, (max_step, count) in per_run.items():
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


def _upsert_latest(conn: Connection, latest: dict[tuple[int, int], list[Any]]) -> None:
    if not latest:
        return
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
            {"run_id": r, "tag_id": t, "step": s, "value": v, "wall_time": w, "count": n}
            for (r, t), (s, v, w, n) in latest.items()
        ],
    )
