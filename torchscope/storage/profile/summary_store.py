"""Summaries of a profile kept in ``profile_summaries``: a DataFrame as compact JSON, written once, read back.

A frame is stored as ``{"columns", "dtypes", "values"}`` (column lists; missing values as null), which restores the
same columns, dtypes and values: what the pages read is exactly what the analysis returned when the profile was
stored.
"""

from __future__ import annotations

import decimal
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Connection, delete, insert, select

from torchscope.storage.profile.schema import profile_summaries


def encode(frame: pd.DataFrame) -> bytes:
    """``frame`` (a flat index) as JSON bytes that :func:`decode` turns back into an equal frame."""
    values = []
    for column in frame.columns:
        series = frame[column]
        if series.dtype == object or isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
            values.append([None if _missing(v) else v for v in series.tolist()])
        elif series.dtype.kind == "f":
            values.append([v if math.isfinite(v) else (None if v != v else str(v)) for v in series.tolist()])
        else:
            values.append(series.tolist())
    doc = {"columns": [str(c) for c in frame.columns], "dtypes": [str(t) for t in frame.dtypes], "values": values}
    return orjson.dumps(doc, default=_plain)


def decode(data: bytes) -> pd.DataFrame:
    """The frame :func:`encode` stored."""
    doc = orjson.loads(data)
    columns: dict[str, Any] = {}
    for name, dtype, values in zip(doc["columns"], doc["dtypes"], doc["values"]):
        if dtype == "object":
            columns[name] = pd.Series(values, dtype=object)
        elif dtype.startswith("float"):
            columns[name] = pd.Series([np.nan if v is None else float(v) for v in values], dtype=dtype)
        else:
            columns[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(columns, columns=doc["columns"])


def read(conn: Connection, profile_id: int, name: str) -> pd.DataFrame | None:
    """The stored summary ``name`` of ``profile_id``, or None when it was not stored."""
    row = conn.execute(
        select(profile_summaries.c.data).where(
            profile_summaries.c.profile_id == int(profile_id), profile_summaries.c.name == name
        )
    ).first()
    return None if row is None else decode(bytes(row[0]))


def write(conn: Connection, profile_id: int, name: str, frame: pd.DataFrame) -> None:
    """Store ``frame`` as the summary ``name`` of ``profile_id`` (replacing one stored before)."""
    conn.execute(
        delete(profile_summaries).where(
            profile_summaries.c.profile_id == int(profile_id), profile_summaries.c.name == name
        )
    )
    conn.execute(insert(profile_summaries).values(profile_id=int(profile_id), name=name, data=encode(frame)))


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays inside object columns, as Python values."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, decimal.Decimal):  # PostgreSQL's SUM of integers
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot store a {type(value).__name__} in a profile summary")


class StoredSummaries:
    """Reads of stored summaries for one engine, the decoded frames of the recent ones kept (profiles never change).

    :meth:`get` returns a copy of the stored frame, or ``compute()`` when the profile has none (older stores) or when
    built with ``enabled=False`` (how :func:`~torchscope.storage.summaries.store_summaries` computes them).
    """

    def __init__(self, engine: Any, enabled: bool = True, size: int = 64) -> None:
        self._engine = engine
        self.enabled = enabled
        self._size = size
        self._frames: OrderedDict[tuple[int, str], pd.DataFrame | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, profile_id: int, name: str, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The summary ``name`` of ``profile_id``: stored, else computed."""
        if not self.enabled:
            return compute()
        key = (int(profile_id), name)
        with self._lock:
            known = key in self._frames
            frame = self._frames.get(key)
        if not known:
            with self._engine.connect() as conn:
                frame = read(conn, profile_id, name)
            with self._lock:
                self._frames[key] = frame
                while len(self._frames) > self._size:
                    self._frames.popitem(last=False)
        return compute() if frame is None else frame.copy()
