"""Run records: creating a run and changing its status, heartbeat and counters."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from torchscope.storage.bulk import Interner
from torchscope.storage.runs.records import RunUpdate
from torchscope.storage.runs.schema import runs

def create_run(
    conn: Connection,
    *,
    name: str,
    config: dict[str, Any],
    started_at: int,
    source: str = "live",
    status: str = "running",
    hostname: str | None = None,
    pid: int | None = None,
    pid_started_at: int | None = None,
) -> int:
    """Insert a run row and return its id."""
    result = conn.execute(
        runs.insert().values(
            name=name,
            status=status,
            started_at=started_at,
            heartbeat_at=started_at,
            config=json.dumps(config, default=str, sort_keys=True),
            source=source,
            hostname=hostname,
            pid=pid,
            pid_started_at=pid_started_at,
            scalar_count=0,
            dropped=0,
        )
    )
    return int(result.inserted_primary_key[0])


def open_run(engine: Engine, **fields: Any) -> int:
    """Create a run (see :func:`create_run` for the fields) in its own transaction and return its id."""
    with engine.begin() as conn:
        return create_run(conn, **fields)


def heartbeat(run_id: int) -> Callable[[Connection], None]:
    """A writer task that stamps the run's ``heartbeat_at`` with the current time."""

    def beat(conn: Connection) -> None:
        conn.execute(runs.update().where(runs.c.id == run_id).values(heartbeat_at=time.time_ns()))

    return beat


def write_run_updates(conn: Connection, _interner: Interner, updates: list[RunUpdate]) -> None:
    """Apply the updates in order."""
    for update in updates:
        conn.execute(runs.update().where(runs.c.id == update.run_id).values(**update.values()))
