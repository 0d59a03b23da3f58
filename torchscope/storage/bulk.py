"""Fast batched inserts and name interning on any SQLAlchemy dialect.

The hot paths (scalars, events, tensor statistics) insert hundreds of thousands of rows a second, so rows are passed
to the driver's ``executemany`` as tuples through a statement compiled once per dialect, instead of one dict a row.
"""

from __future__ import annotations

import hashlib
from itertools import chain
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from torchscope.errors import StoreError
from torchscope.storage.schema import names

MAX_PARAMS = 30_000
"""Bound parameters per statement (SQLite allows 32766, PostgreSQL 65535)."""

_sql_cache: dict[tuple[str, str, tuple[str, ...], int], str] = {}


def _multi_values_sql(conn: Connection, table: Table, columns: tuple[str, ...], count: int) -> str:
    key = (conn.dialect.name, table.name, columns, count)
    sql = _sql_cache.get(key)
    if sql is None:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        row = "(" + ", ".join([mark] * len(columns)) + ")"
        quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
        table_name = conn.dialect.identifier_preparer.format_table(table)
        sql = _sql_cache[key] = f"INSERT INTO {table_name} ({quoted}) VALUES " + ", ".join([row] * count)
    return sql


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` on the connection's open transaction.

    Rows go in multi-row ``INSERT ... VALUES (...), (...)`` statements of up to :data:`MAX_PARAMS` parameters.
    Besides being fast, this matters for threads: the sqlite3 driver releases the GIL around every statement it
    steps, so a per-row ``executemany`` on the writer thread would wait for the GIL once per row behind a busy
    training thread (the convoy effect) and fall far behind.
    """
    if not rows:
        return
    columns = tuple(columns)
    flat = chain.from_iterable
    start = 0
    for size in _chunk_sizes(len(rows), max(1, MAX_PARAMS // len(columns))):
        chunk = rows[start : start + size]
        conn.exec_driver_sql(_multi_values_sql(conn, table, columns, size), tuple(flat(chunk)))
        start += size


def _chunk_sizes(total: int, largest: int) -> list[int]:
    """Full chunks of ``largest`` rows, then the rest as powers of two: few distinct statements to cache."""
    sizes = [largest] * (total // largest)
    rest = total % largest
    bit = 1 << max(0, rest.bit_length() - 1)
    while rest:
        if rest >= bit:
            sizes.append(bit)
            rest -= bit
        bit >>= 1
    return sizes


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
