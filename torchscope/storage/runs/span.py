"""The time span of an imported run: when its data was recorded, not when it was imported."""

from __future__ import annotations

import time
from typing import Any

from torchscope.storage.bulk import Interner
from torchscope.storage.runs.records import RunUpdate
from torchscope.storage.runs.writes import write_run_updates

PLAUSIBLE_EPOCH_NS = 10**18  # 2001-09-09: trace clocks below this are not wall time (e.g. time since boot)


def set_run_span(conn: Any, interner: Interner, run_id: int, first_ns: int, last_ns: int) -> None:
    """Give an imported run the time span its data covers when that is wall-clock time, else the import time."""
    now = time.time_ns()
    if not PLAUSIBLE_EPOCH_NS <= first_ns <= last_ns <= now + 86_400 * 10**9:
        first_ns = last_ns = now
    write_run_updates(conn, interner, [RunUpdate(run_id, started_at=first_ns, ended_at=last_ns, heartbeat_at=last_ns)])
