"""Reads of runs and scalars, over an engine; :class:`torchscope.storage.store.Store` delegates to them."""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import psutil
from sqlalchemy import Connection, Engine, and_, or_, select

from torchscope.errors import NotFoundError
from torchscope.storage.runs import buckets
from torchscope.storage.runs.downsample import downsample_keep_extremes
from torchscope.storage.runs.scalar_cache import ScalarCache
from torchscope.storage.runs.schema import runs, scalar_buckets, scalar_latest, scalars
from torchscope.storage.schema import names
from torchscope.storage.graph.schema import graph_anomalies, graph_versions
from torchscope.storage.profile.schema import profiles
from torchscope.storage.runs.summaries import run_summaries

HEARTBEAT_STALE_NS = 15_000_000_000
"""A running run with no heartbeat for this long is read as interrupted (its process died or hangs off-host)."""
DEAD_PID_GRACE_NS = 3_000_000_000
"""On the same host, a run whose process is gone is interrupted once its heartbeat is this old."""

RUN_COLUMNS = [
    "id", "name", "status", "started_at", "ended_at", "heartbeat_at", "duration_ns", "last_step", "scalar_count",
    "config", "source", "hostname", "pid", "dropped", "dropped_scalars", "dropped_steps", "dropped_profiles",
    "error", "rank", "world_size", "local_rank", "job_id",
]  # fmt: skip
SCALAR_COLUMNS = ["run_id", "step", "tag", "value", "wall_time"]
_NULLABLE = {"ended_at", "heartbeat_at", "last_step", "hostname", "pid", "error", "rank", "world_size", "local_rank",
             "job_id"}  # fmt: skip
ARTIFACT_COLUMNS = ["kind", "id", "name", "step", "created_at"]


def _process_alive(pid: int | None, started_at: int | None) -> bool:
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_at is None or abs(int(proc.create_time() * 1e9) - started_at) < 1_000_000_000
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def effective_status(row: dict[str, Any], now: int, hostname: str) -> str:
    """The status a run really has: a ``running`` run whose process is gone reads as ``interrupted``."""
    if row["status"] != "running":
        return row["status"]
    age = now - (row["heartbeat_at"] or row["started_at"])
    if age > HEARTBEAT_STALE_NS:
        return "interrupted"
    if row["hostname"] == hostname and age > DEAD_PID_GRACE_NS and not _process_alive(row["pid"], row["pid_started_at"]):
        return "interrupted"
    return "running"


_SCALAR_SELECT = select(scalars.c.tag_id, scalars.c.step, scalars.c.value, scalars.c.wall_time)
_SCALAR_DTYPE = np.dtype([("tag_id", "i8"), ("step", "i8"), ("value", "O"), ("wall_time", "i8")])


def _run_tag_ids(conn: Connection, run_id: int) -> dict[int, str]:
    query = (
        select(names.c.id, names.c.name)
        .join(scalar_latest, scalar_latest.c.tag_id == names.c.id)
        .where(scalar_latest.c.run_id == run_id)
    )
    return {int(i): t for i, t in conn.execute(query)}


def _run_filter(conn: Connection, run_id: int) -> Any:
    """``scalars.run_id == run_id``, written so that a run holding most of the table is read by a table scan.

    Rows are stored in logging order, every tag of a step together, so reading one tag after another through the
    ``(run_id, tag_id, step)`` index jumps across the whole table for each tag; when the run is a large share of
    the table a sequential scan (the index defeated by ``run_id + 0``) is about twice as fast.
    """
    counts = conn.execute(select(runs.c.id, runs.c.scalar_count)).all()
    total = sum(int(n or 0) for _, n in counts)
    mine = next((int(n or 0) for i, n in counts if i == run_id), 0)
    if total and mine >= total / 3:
        return (scalars.c.run_id + 0) == run_id
    return scalars.c.run_id == run_id


def _scalar_frame(
    conn: Connection, query: Any, run_id: int, tag_ids: dict[int, str], max_items: int | None
) -> pd.DataFrame:
    """Run ``query`` (``tag_id, step, value, wall_time`` rows) into a :data:`SCALAR_COLUMNS` frame sorted by tag,
    step and wall time, downsampled to ``max_items`` per tag.

    Rows are taken from the DBAPI cursor as plain tuples into one structured numpy array: building a million
    SQLAlchemy ``Row`` objects and a DataFrame from them costs ten times the query itself.
    """
    if query is None or not tag_ids:
        rows: list[Any] = []
    elif max_items is not None:
        rows = _thinned(conn, query, run_id, tag_ids, max_items)
    else:
        rows = conn.execute(query).cursor.fetchall()
    data = np.array(rows, dtype=_SCALAR_DTYPE) if rows else np.empty(0, dtype=_SCALAR_DTYPE)
    names_sorted = sorted(tag_ids.values())
    rank_of = {tag_id: names_sorted.index(tag) for tag_id, tag in tag_ids.items()}
    ranks = np.vectorize(rank_of.__getitem__, otypes=["i8"])(data["tag_id"]) if len(data) else np.empty(0, "i8")
    order = np.lexsort((data["wall_time"], data["step"], ranks))
    ranks = ranks[order]
    frame = pd.DataFrame(
        {
            "run_id": np.full(len(data), run_id, dtype="int64"),
            "step": data["step"][order],
            "tag": pd.Categorical.from_codes(ranks, categories=names_sorted).astype(object) if len(data) else
            np.empty(0, dtype=object),
            "value": data["value"][order].astype("float64"),  # None (NaN on SQLite) becomes NaN
            "wall_time": data["wall_time"][order],
        },
        columns=SCALAR_COLUMNS,
    )
    if max_items is not None:
        frame = downsample_keep_extremes(frame, "tag", "step", "value", max_items)
    return frame


def _thinned(conn: Connection, query: Any, run_id: int, tag_ids: dict[int, str], max_items: int) -> list[Any]:
    """``query``'s rows for the tags small enough to read whole; for longer series, the representative points of
    the coarsest-fitting level of the bucket pyramid (about ``max_items`` per tag) instead of every point."""
    latest = conn.execute(
        select(scalar_latest.c.tag_id, scalar_latest.c.count, scalar_latest.c.step).where(
            scalar_latest.c.run_id == run_id, scalar_latest.c.tag_id.in_(list(tag_ids))
        )
    ).all()
    by_level: dict[int, list[int]] = {}
    for tag_id, count, last_step in latest:
        by_level.setdefault(buckets.choose_level(int(count), int(last_step), max_items), []).append(tag_id)
    rows: list[Any] = []
    if by_level.get(0):
        rows += conn.execute(query.where(scalars.c.tag_id.in_(by_level.pop(0)))).cursor.fetchall()
    columns = [scalar_buckets.c.run_id, scalar_buckets.c.tag_id, scalar_buckets.c.bucket]
    columns += [scalar_buckets.c[name] for name in buckets.COLUMNS]
    for level, level_tags in by_level.items():
        found = conn.execute(
            select(*columns).where(
                scalar_buckets.c.run_id == run_id, scalar_buckets.c.level == level, scalar_buckets.c.tag_id.in_(level_tags)
            )
        ).cursor.fetchall()
        if not found:
            continue
        cols = list(zip(*found))
        agg = {"key": np.array(cols[1], np.int64), "bucket": np.array(cols[2], np.int64)}
        for name, values in zip(buckets.COLUMNS, cols[3:]):
            if name.endswith("_value"):
                agg[name] = np.array([np.nan if v is None else v for v in values], np.float64)
            else:
                agg[name] = np.array([buckets.ABSENT if v is None else v for v in values], np.int64)
        key, step, wall, value = buckets.points(agg)
        rows += zip(key.tolist(), step.tolist(), [None if v != v else v for v in value.tolist()], wall.tolist())
    return rows


class RunReads:
    """``runs``, ``run``, ``tags``, ``scalars``, ``scalars_after``, ``scalars_downsampled``, ``run_artifacts``,
    ``last_scalars`` and ``run_summaries``; keeps the downsampled series of recently drawn runs (``scalar_cache``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.scalar_cache = ScalarCache()

    def runs(self) -> pd.DataFrame:
        """Backs :meth:`Store.runs`, which documents the columns."""
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(runs).order_by(runs.c.id.desc()))]
        now, host = time.time_ns(), socket.gethostname()
        for row in rows:
            row["status"] = effective_status(row, now, host)
            if row["status"] == "interrupted" and row["ended_at"] is None:
                row["ended_at"] = row["heartbeat_at"]
            row["duration_ns"] = (row["ended_at"] or now) - row["started_at"]
            row["config"] = json.loads(row["config"] or "{}")
        frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
        for column in ("rank", "world_size", "local_rank", "job_id"):  # None outside a job, not a float NaN
            frame[column] = pd.Series([r[column] for r in rows], index=frame.index, dtype=object)
        return frame.astype({"id": "int64", "started_at": "int64", "duration_ns": "int64"})

    def run(self, run_id: int) -> dict[str, Any]:
        """Backs :meth:`Store.run`, which documents the columns."""
        frame = self.runs()
        match = frame[frame["id"] == int(run_id)]
        if match.empty:
            raise NotFoundError(f"there is no run {run_id} in this database (see `torchscope runs`)")
        row = match.iloc[0].to_dict()
        # a DataFrame turns a missing value of a nullable column into NaN; a run's dict keeps None for "none"
        return {k: None if isinstance(v, float) and math.isnan(v) and k in _NULLABLE else v for k, v in row.items()}

    def tags(self, run_id: int) -> list[str]:
        """The scalar tags of a run, sorted."""
        with self._engine.connect() as conn:
            query = (
                select(names.c.name)
                .join(scalar_latest, scalar_latest.c.tag_id == names.c.id)
                .where(scalar_latest.c.run_id == int(run_id))
            )
            return sorted(r[0] for r in conn.execute(query))

    def scalars(
        self,
        run_id: int,
        tags: Sequence[str] | None = None,
        *,
        start_step: int | None = None,
        max_items: int | None = None,
    ) -> pd.DataFrame:
        """Backs :meth:`Store.scalars`, which documents the columns."""
        run_id = int(run_id)
        with self._engine.connect() as conn:
            tag_ids = _run_tag_ids(conn, run_id)
            if tags is not None:
                wanted = set(tags)
                tag_ids = {i: t for i, t in tag_ids.items() if t in wanted}
            query = _SCALAR_SELECT.where(_run_filter(conn, run_id))
            if tags is not None:
                query = query.where(scalars.c.tag_id.in_(list(tag_ids)))
            if start_step is not None:
                query = query.where(scalars.c.step > start_step)
            return _scalar_frame(conn, query, run_id, tag_ids, max_items)

    def scalars_after(
        self,
        run_id: int,
        cursors: Mapping[str, tuple[int, int]],
        *,
        max_items: int | None = None,
    ) -> pd.DataFrame:
        """Backs :meth:`Store.scalars_after`, which documents the columns."""
        run_id = int(run_id)
        with self._engine.connect() as conn:
            latest = conn.execute(
                select(scalar_latest.c.tag_id, names.c.name, scalar_latest.c.step, scalar_latest.c.wall_time)
                .join(names, names.c.id == scalar_latest.c.tag_id)
                .where(scalar_latest.c.run_id == run_id)
            ).all()
            wanted, tag_ids = [], {}
            if not cursors:  # a first read: every point of the run, read as scalars() does
                tag_ids = {int(tag_id): tag for tag_id, tag, _, _ in latest}
                query = _SCALAR_SELECT.where(_run_filter(conn, run_id))
                return _scalar_frame(conn, query, run_id, tag_ids, max_items)
            for tag_id, tag, step, wall in latest:
                cursor = cursors.get(tag)
                if cursor is None:
                    wanted.append(scalars.c.tag_id == tag_id)
                elif (step, wall) > tuple(cursor):
                    after_step, after_wall = int(cursor[0]), int(cursor[1])
                    wanted.append(
                        and_(
                            scalars.c.tag_id == tag_id,
                            scalars.c.step >= after_step,
                            or_(scalars.c.step > after_step, scalars.c.wall_time > after_wall),
                        )
                    )
                else:
                    continue
                tag_ids[tag_id] = tag
            query = _SCALAR_SELECT.where(scalars.c.run_id == run_id, or_(*wanted)) if wanted else None
            return _scalar_frame(conn, query, run_id, tag_ids, max_items)

    def scalars_downsampled(self, run_id: int, max_items: int) -> pd.DataFrame:
        """Backs :meth:`Store.scalars_downsampled`, which documents the columns."""

        def fetch(cursors: Mapping[str, tuple[int, int]]) -> pd.DataFrame:
            # a first read takes long series from the bucket pyramid; later ones only what came since
            return self.scalars_after(run_id, cursors) if cursors else self.scalars(run_id, max_items=max_items)

        return self.scalar_cache.get(run_id, max_items, fetch)

    def run_artifacts(self, run_id: int, *, limit: int = 50) -> pd.DataFrame:
        """Backs :meth:`Store.run_artifacts`, which documents the columns."""
        run_id = int(run_id)
        g, a, p = graph_versions.c, graph_anomalies.c, profiles.c
        queries = {
            "graph": select(g.id, g.n_ops, g.first_step, g.created_at).where(g.run_id == run_id).order_by(g.id),
            "anomaly": select(a.id, a.phase, a.tensor, a.step, a.wall_time).where(a.run_id == run_id).order_by(a.id),
            "profile": select(p.id, p.name, p.step_first, p.created_at).where(p.run_id == run_id).order_by(p.id),
        }
        rows: list[tuple[Any, ...]] = []
        with self._engine.connect() as conn:
            for kind, query in queries.items():
                for row in conn.execute(query.limit(limit)):
                    if kind == "graph":
                        rows.append((kind, row[0], f"{row[1]} ops", row[2], row[3]))
                    elif kind == "anomaly":
                        rows.append((kind, row[0], f"{row[1]}: {row[2]}", row[3], row[4]))
                    else:
                        rows.append((kind, *row))
        frame = pd.DataFrame(rows, columns=ARTIFACT_COLUMNS)
        return frame.astype({"id": "int64", "step": "Int64", "created_at": "int64"})

    def last_scalars(self, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.last_scalars`, which documents the columns."""
        query = select(
            scalar_latest.c.run_id,
            names.c.name.label("tag"),
            scalar_latest.c.step,
            scalar_latest.c.value,
            scalar_latest.c.wall_time,
            scalar_latest.c.count,
        ).join(names, names.c.id == scalar_latest.c.tag_id)
        if run_ids is not None:
            query = query.where(scalar_latest.c.run_id.in_([int(r) for r in run_ids]))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        columns = ["run_id", "tag", "step", "value", "wall_time", "count"]
        return pd.DataFrame(rows, columns=columns).astype({"value": "float64"})

    def run_summaries(self, limit: int = 3) -> tuple[pd.DataFrame, list[str]]:
        """Backs :meth:`Store.run_summaries`, which documents the columns."""
        return run_summaries(self.runs(), self.last_scalars(), limit)
