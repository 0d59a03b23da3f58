"""Records of live profiling: a finished profiler window (:class:`~torchscope.storage.profile.records.ProfileWindow`).

The training thread only exports the window's trace (as ``torch.profiler.tensorboard_trace_handler`` would) and
queues a record whose ``load`` decodes it; decoding and inserting happen here, on the writer thread.
"""

from __future__ import annotations

from sqlalchemy import Connection

from torchscope.storage.bulk import Interner
from torchscope.user_code import warn_once
from torchscope.storage.profile.records import ProfileWindow
from torchscope.storage.profile.writes import insert_profile


def write_profile_windows(conn: Connection, interner: Interner, windows: list[ProfileWindow]) -> None:
    """Store each window as a live profile of its run.

    A window that cannot be stored is skipped with a warning (in its own savepoint, so it leaves no rows) and
    does not cost the rest of the batch.
    """
    for window in windows:
        try:
            cols = window.load()
            with conn.begin_nested():
                insert_profile(conn, interner, window.run_id, cols, name=window.name, source="live", path=None)
        except Exception as exc:  # noqa: BLE001 - one bad window must not cost the batch's other records
            # names interned inside the rolled-back savepoint are gone from the table: forget every cached id
            interner._ids.clear()
            message = f"torchscope: profiler window {window.name!r} was not stored: {exc}"
            warn_once(f"profile-window:{type(exc).__name__}", message)
