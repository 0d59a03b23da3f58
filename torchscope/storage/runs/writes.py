"""Run records: creating a run and changing its status, heartbeat and counters."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, select

from torchscope.storage.bulk import Interner
from torchscope.storage.runs.records import RunUpdate
from torchscope.storage.runs.schema import runs


def run_row(
    *,
    name: str,
    config: dict[str, Any],
    started_at: int,
    source: str = "live",
    status: str = "running",
    hostname: str | None = None,
    pid: int | None = None,
    pid_started_at: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    local_rank: int | None = None,
    job_id: str | None = None,
) -> dict[str, Any]:
    """The column values of a new run's row (``config`` stored as sorted JSON, counters at zero)."""
    return {
        "name": name, "status": status, "started_at": started_at, "heartbeat_at": started_at,
        "config": json.dumps(config, default=str, sort_keys=True), "source": source, "hostname": hostname, "pid": pid,
        "pid_started_at": pid_started_at, "scalar_count": 0, "dropped": 0, "rank": rank, "world_size": world_size,
        "local_rank": local_rank, "job_id": job_id,
    }  # fmt: skip


def create_run(conn: Connection, **fields: Any) -> int:
    """Insert a run row (``fields``: those of :func:`run_row`) and return its id."""
    result = conn.execute(runs.insert().values(**run_row(**fields)))
    return int(result.inserted_primary_key[0])


def open_run(engine: Engine, **fields: Any) -> int:
    """Create a run (see :func:`run_row` for the fields) in its own transaction and return its id."""
    with engine.begin() as conn:
        return create_run(conn, **fields)


def heartbeat(run_id: int) -> Callable[[Connection], None]:
    """A writer task that stamps the run's ``heartbeat_at`` with the current time."""

    def beat(conn: Connection) -> None:
        conn.execute(runs.update().where(runs.c.id == run_id).values(heartbeat_at=time.time_ns()))

    return beat


def dropped_counts(run_id: int) -> Callable[[Connection, dict[str, int]], None]:
    """A writer task that stores the run's dropped counts (``{"scalars": n, "steps": n, "profiles": n, ...}``):
    ``dropped`` is their sum, ``dropped_<kind>`` each of the three kinds the store keeps apart."""

    def store(conn: Connection, counts: dict[str, int]) -> None:
        values = {f"dropped_{kind}": counts.get(kind, 0) for kind in ("scalars", "steps", "profiles")}
        conn.execute(runs.update().where(runs.c.id == run_id).values(dropped=sum(counts.values()), **values))

    return store


def restore_run(run_id: int, **fields: Any) -> Callable[[Connection], None]:
    """A writer task for a database file that is not the one the run started in (deleted and recreated, or replaced):
    insert the run's row under its id again, unless that row is already there. ``fields`` as for :func:`create_run`.

    Raises :class:`StoreError` when the id is taken by another run (the writer then keeps dropping and warns).
    """
    from torchscope.errors import StoreError

    def restore(conn: Connection) -> None:
        row = conn.execute(select(runs.c.started_at, runs.c.pid).where(runs.c.id == run_id)).first()
        if row is None:
            conn.execute(runs.insert().values(id=run_id, **run_row(**fields)))
        elif (row.started_at, row.pid) != (fields["started_at"], fields.get("pid")):
            raise StoreError(f"its run id {run_id} belongs to another run there")

    return restore


def write_run_updates(conn: Connection, _interner: Interner, updates: list[RunUpdate]) -> None:
    """Apply the updates in order."""
    for update in updates:
        conn.execute(runs.update().where(runs.c.id == update.run_id).values(**update.values()))
