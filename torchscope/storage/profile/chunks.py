"""A profile's events read in bounded chunks by event-id range, for exports of profiles of any size.

A profile's events have contiguous ids (``profiles.first_event_id`` .. ``+ event_count - 1``), so a chunk is one
primary-key range scan: a 10-million-event profile is read a ``chunk_rows`` slice at a time, never held whole.
Names and op shapes are resolved through the interned ``names`` table in the same query.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.profile.kinds import KINDS

CHUNK_COLUMNS = ["id", "lane_id", "kind", "name", "start", "dur", "parent", "corr", "link", "ext_id", "info"]
"""The columns of each chunk: those of ``Store.events``."""

_PROFILE = text("SELECT first_event_id, event_count FROM profiles WHERE id = :p")
_ID_BOUNDS = text(
    "SELECT MIN(e.id), MAX(e.id) FROM profile_events e JOIN profile_lanes l ON l.id = e.lane_id WHERE l.profile_id = :p"
)
_CHUNK = (
    "SELECT e.id, e.lane_id, e.kind, n.name, e.start, e.dur, e.parent, e.corr, e.link, e.ext_id, i.name "
    "FROM profile_events e JOIN names n ON n.id = e.name_id LEFT JOIN names i ON i.id = e.info_id "
    "WHERE e.id >= {mark} AND e.id < {mark} AND e.lane_id IN (SELECT id FROM profile_lanes WHERE profile_id = {mark}) "
    "ORDER BY e.id"
)  # read through the DBAPI cursor as plain tuples (SQLAlchemy rows cost more per row); every value a parameter


def event_id_range(engine: Engine, profile_id: int) -> tuple[int, int]:
    """``[first, end)``: the ids of the profile's events. Raises :class:`NotFoundError` for an unknown profile."""
    with engine.connect() as conn:
        row = conn.execute(_PROFILE, {"p": int(profile_id)}).first()
        if row is None:
            raise NotFoundError(f"there is no profile {profile_id} in this database (see `torchscope runs`)")
        if row[0] is not None:
            return int(row[0]), int(row[0]) + int(row[1])
        # a profile written without first_event_id: find its ids (one index scan)
        lowest, highest = conn.execute(_ID_BOUNDS, {"p": int(profile_id)}).one()
    return (0, 0) if lowest is None else (int(lowest), int(highest) + 1)


def iter_events(engine: Engine, profile_id: int, chunk_rows: int = 100_000) -> Iterator[pd.DataFrame]:
    """Yield the events of ``profile_id`` by id, at most ``chunk_rows`` a frame (columns :data:`CHUNK_COLUMNS`).

    ``kind`` is the kind's name, ``parent``/``corr``/``link``/``ext_id`` nullable ``Int64``, ``start`` ns since the
    profile's ``start_ns``, ``info`` the op's input shapes/types JSON (or the category of an ``other`` event).
    """
    if chunk_rows < 1:
        raise BadRequestError("chunk_rows must be a positive number of events")
    first, end = event_id_range(engine, profile_id)
    kinds = np.asarray(KINDS, dtype=object)
    for lo in range(first, end, chunk_rows):
        hi = min(lo + chunk_rows, end)
        with engine.connect() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            cursor = conn.connection.cursor()
            try:
                cursor.execute(_CHUNK.format(mark=mark), (lo, hi, int(profile_id)))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        frame = pd.DataFrame(rows, columns=CHUNK_COLUMNS)
        del rows
        if frame.empty:
            continue
        frame["kind"] = kinds[frame["kind"].to_numpy(np.int64)]
        yield frame.astype({"id": "int64", "lane_id": "int64", "start": "int64", "dur": "int64"}).astype(
            {c: "Int64" for c in ("parent", "corr", "link", "ext_id")}
        )
