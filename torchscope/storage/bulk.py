"""Fast batched inserts and name interning on any SQLAlchemy dialect.

The hot paths (scalars, events, tensor statistics) insert hundreds of thousands of rows a second, so rows are passed
to the driver's ``executemany`` as tuples through a statement compiled once per dialect, instead of one dict a row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from torchscope.errors import StoreError
from torchscope.storage.schema import names

_compiled: dict[tuple[str, str, tuple[str, ...]], tuple[str, tuple[str, ...] | None]] = {}


def _statement(conn: Connection, table: Table, columns: tuple[str, ...]) -> tuple[str, tuple[str, ...] | None]:
    key = (conn.dialect.name, table.name, columns)
    hit = _compiled.get(key)
    if hit is None:
        compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(columns))
        order = tuple(compiled.positiontup) if compiled.positional else None
        hit = _compiled[key] = (str(compiled), order)
    return hit


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """``executemany`` ``rows`` (tuples in ``columns`` order) into ``table`` on the connection's open transaction."""
    if not rows:
        return
    columns = tuple(columns)
    sql, order = _statement(conn, table, columns)
    if order is None:
        params: Any = [dict(zip(columns, row)) for row in rows]
    elif order == columns:
        params = rows if isinstance(rows, list) else list(rows)
    else:
        index = [columns.index(name) for name in order]
        params = [tuple(row[i] for i in index) for row in rows]
    conn.exec_driver_sql(sql, params)


def upsert(conn: Connection, table: Table, keys: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, replacing the non-key columns of rows whose ``keys`` already exist."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise StoreError(f"upsert is not supported on {dialect}; use SQLite or PostgreSQL")
    insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    updates = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(insert.on_conflict_do_update(index_elements=list(keys), set_=updates), rows)


def name_hash(name: str) -> int:
    """A stable signed 63-bit hash of ``name`` (the unique key of the ``names`` table)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big") >> 1


class Interner:
    """Maps names to ids of the ``names`` table, inserting the missing ones; safe across processes.

    One interner belongs to one writer thread; its cache only grows (names are never deleted).
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def get(self, name: str) -> int | None:
        """The cached id of ``name``, if this interner has seen it."""
        return self._ids.get(name)

    def ids(self, conn: Connection, wanted: Iterable[str]) -> dict[str, int]:
        """Ids of every name in ``wanted``; inserts missing names inside the connection's transaction."""
        cache = self._ids
        missing = {n for n in wanted if n not in cache}
        if missing:
            self._resolve(conn, missing)
        return cache

    def _resolve(self, conn: Connection, missing: set[str]) -> None:
        by_hash = {name_hash(n): n for n in missing}
        dialect = conn.dialect.name
        insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(names)
        rows = [{"hash": h, "name": n} for h, n in by_hash.items()]
        conn.execute(insert.on_conflict_do_nothing(index_elements=["hash"]), rows)
        hashes = list(by_hash)
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            for id_, h, stored in conn.execute(select(names.c.id, names.c.hash, names.c.name).where(names.c.hash.in_(chunk))):
                if stored != by_hash[h]:
                    raise StoreError(f"name hash collision between {stored!r} and {by_hash[h]!r}")
                self._ids[stored] = id_
