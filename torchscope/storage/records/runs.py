"""Run records: creating a run and changing its status, heartbeat and counters."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from torchscope.storage.bulk import Interner
from torchscope.storage.records import handler
from torchscope.storage.schema import runs

RUN_STATUSES = ("running", "finished", "failed", "interrupted")


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


@handler("run_update")
def write_run_updates(conn: Connection, _interner: Interner, payloads: list[Any]) -> None:
    """Apply ``(run_id, {column: value})`` updates in order."""
    for run_id, values in payloads:
        conn.execute(runs.update().where(runs.c.id == run_id).values(**values))
