"""The analyses a profile's pages show, computed once when the profile is stored, and read back from then on.

The operator, kernel, module, step and memory tables of a million-event profile take seconds to compute from its
events, so :func:`store_summaries` computes them inside the transaction that stores the profile (``torchscope
import``, a live profiler window) with the very reads that would compute them on demand, and keeps each as a row of
``profile_summaries``. :class:`~torchscope.storage.store.Store` answers from those rows; a profile without them (a
store written by an older torchscope) is computed from its events on each read, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from torchscope.storage.profile import summary_store
from torchscope.storage.profile.reads import ProfileReads
from torchscope.storage.timeline.lod import HostEvents
from torchscope.storage.timeline.reads import TimelineReads

Reads = tuple[ProfileReads, TimelineReads, HostEvents | None]
SUMMARIES: dict[str, Callable[[Reads, int], pd.DataFrame]] = {
    "step_breakdown": lambda r, p: r[0].step_breakdown(p),
    "device_utilization": lambda r, p: r[0].device_utilization(p),
    "runtime_split": lambda r, p: r[0].runtime_split(p),
    "op_table": lambda r, p: r[0].op_table(p, False),
    "op_table_shapes": lambda r, p: r[0].op_table(p, True),
    "kernel_table": lambda r, p: r[0].kernel_table(p),
    "module_table": lambda r, p: r[0].module_table(p),
    "memory_peak": lambda r, p: r[0].memory_peak(p),
    "memory_curve": lambda r, p: r[0].memory_curve(p),
    "name_spans": lambda r, p: r[1].name_spans(p),
    "op_modules": lambda r, p: r[1].op_modules(p, r[2]),
    "memory_held_by_op": lambda r, p: r[1].memory_by_op(p, r[2]),
}
"""Each stored summary: its name in ``profile_summaries`` and the read that computes it."""
HOST_SUMMARIES = frozenset(("name_spans", "op_modules", "memory_held_by_op"))
"""The summaries that read only the host events (:class:`~torchscope.storage.timeline.lod.HostEvents`): computed
after the others, once the other event frames are freed."""
_FIRST_HOST_SUMMARY = next(name for name in SUMMARIES if name in HOST_SUMMARIES)


class _OnConnection:
    """An engine stand-in whose connections are one open connection: reads run inside the caller's transaction
    (they see the profile it has not committed yet)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.url = conn.engine.url
        self.dialect = conn.dialect

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        yield self._conn

    begin = connect


def store_summaries(
    conn: Connection, profile_id: int, frames: dict[str, pd.DataFrame] | None = None,
    between: Callable[[], object] | None = None,
) -> list[str]:  # fmt: skip
    """Compute every summary of :data:`SUMMARIES` for ``profile_id`` on ``conn`` and store it; returns the names
    of those that could not be computed (they stay computed on read).

    ``frames``: the profile's event frames by lane kind, when the caller has them (else they are read back). They
    are taken out of the dict, so that they are freed once the analyses that use them are done (the last summaries
    keep the host events' columns only, :data:`HOST_SUMMARIES`). ``between`` is called after each summary (an
    import gives the memory its temporaries freed back to the system).
    """
    engine: Any = _OnConnection(conn)
    profiles = ProfileReads(engine, stored_summaries=False)
    profiles.memory_frames = {}  # read once for the memory peak, curve and allocations by op
    while frames:
        lane_kind, frame = frames.popitem()
        profiles.event_frames.put(conn, profile_id, lane_kind, frame)
    reads: Reads = (profiles, TimelineReads(engine, profiles), None)
    failed = []
    for name, compute in SUMMARIES.items():
        if name == _FIRST_HOST_SUMMARY:  # only the host events are needed from now on
            reads = (*reads[:2], _host_events(conn, profiles, profile_id))
            profiles.event_frames.clear()
        try:
            frame = compute(reads, profile_id)
        except Exception:  # an analysis that fails on an odd trace must not fail the import: it runs on read
            failed.append(name)
            continue
        summary_store.write(conn, profile_id, name, frame)
        del frame
        if between is not None:
            between()
    return failed


def _host_events(conn: Connection, profiles: ProfileReads, profile_id: int) -> HostEvents | None:
    """The profile's host events from its analyses' frame, or None if they cannot be read (the summaries that need
    them then read the timeline's index)."""
    try:
        return HostEvents.from_frame(profiles.event_frames.get(conn, profile_id, "host"))
    except Exception:  # noqa: BLE001 - as a summary that fails: the import goes on
        return None
