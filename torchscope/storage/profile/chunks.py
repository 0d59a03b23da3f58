"""A profile's events read in bounded chunks by event-id range, for exports of profiles of any size.

A profile's events have contiguous ids (``profiles.first_event_id`` .. ``+ event_count - 1``), so a chunk is one
primary-key range scan: a 10-million-event profile is read a ``chunk_rows`` slice at a time, never held whole.
Names and op shapes are resolved through the interned ``names`` table in the same query.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.driver_sql import bind, chunks
from torchscope.storage.profile.kinds import KINDS

CHUNK_COLUMNS = ["id", "lane_id", "kind", "name", "start", "dur", "parent", "corr", "link", "ext_id", "info"]
"""The columns of each chunk: those of ``Store.events``."""

_PROFILE = text("SELECT first_event_id, event_count FROM profiles WHERE id = :p")
_ID_BOUNDS = text(
    "SELECT MIN(e.id), MAX(e.id) FROM profile_events e JOIN profile_lanes l ON l.id = e.lane_id WHERE l.profile_id = :p"
)
_NULL = -(2**63)
"""Stands for NULL in the integer rows read (no event id, correlation or interned-name id takes this value)."""
_CHUNK = (
    "SELECT e.id, e.lane_id, e.kind, e.name_id, e.start, e.dur, COALESCE(e.parent, {null}), COALESCE(e.corr, {null}), "
    "COALESCE(e.link, {null}), COALESCE(e.ext_id, {null}), COALESCE(e.info_id, {null}) FROM profile_events e "
    "WHERE e.id >= {lo} AND e.id < {hi} AND e.lane_id IN (SELECT id FROM profile_lanes WHERE profile_id = {p}) "
    "ORDER BY e.id"
)  # integers only, read through the DBAPI cursor as plain tuples into one int64 array; every value a parameter
_NAMES = "SELECT id, name FROM names WHERE id IN ({ids})"
_NAMES_PER_QUERY = 500


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
            dialect = conn.dialect.name
            cursor = conn.connection.cursor()
            try:
                cursor.execute(*bind(_CHUNK, dialect, {"null": _NULL, "lo": lo, "hi": hi, "p": int(profile_id)}))
                table = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, len(CHUNK_COLUMNS))
                if not len(table):
                    continue
                names = _names(cursor, dialect, np.unique(table[:, [3, 10]]))
            finally:
                cursor.close()
        yield pd.DataFrame({
            "id": table[:, 0], "lane_id": table[:, 1], "kind": kinds[table[:, 2]], "name": _lookup(names, table[:, 3]),
            "start": table[:, 4], "dur": table[:, 5], "parent": _nullable(table[:, 6]), "corr": _nullable(table[:, 7]),
            "link": _nullable(table[:, 8]), "ext_id": _nullable(table[:, 9]), "info": _lookup(names, table[:, 10]),
        })  # fmt: skip


def _names(cursor: Any, dialect: str, ids: np.ndarray) -> dict[int, str]:
    """``{id: name}`` of the interned names ``ids`` (the NULL stand-in left out)."""
    wanted = [int(i) for i in ids if i != _NULL]
    out: dict[int, str] = {}
    for part in chunks(wanted, _NAMES_PER_QUERY):
        cursor.execute(*bind(_NAMES, dialect, {"ids": part}))
        out.update(cursor.fetchall())
    return out


def _lookup(names: dict[int, str], ids: np.ndarray) -> np.ndarray:
    """The names of ``ids`` as an object array, None for NULL; one dictionary lookup per distinct id."""
    unique, inverse = np.unique(ids, return_inverse=True)
    return np.asarray([names.get(int(i)) for i in unique], dtype=object)[inverse.reshape(-1)]


def _nullable(column: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(column.copy(), column == _NULL)
