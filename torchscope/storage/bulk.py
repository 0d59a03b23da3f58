"""Fast batched inserts and name interning on any SQLAlchemy dialect.

The hot paths (scalars, events, tensor statistics) insert hundreds of thousands of rows a second, so rows are passed
to the driver's ``executemany`` as tuples through a statement compiled once per dialect, instead of one dict a row.
"""

from __future__ import annotations

import hashlib
from itertools import chain
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from torchscope.errors import StoreError
from torchscope.storage.schema import names

MAX_PARAMS = 30_000
"""Bound parameters per statement (SQLite allows 32766, PostgreSQL 65535)."""

_sql_cache: dict[tuple[Any, ...], str] = {}


def _multi_values_sql(
    conn: Connection, table: Table, columns: tuple[str, ...], count: int, replace_on: tuple[str, ...] = (),
    nulls: tuple[str, ...] = (),
) -> str:  # fmt: skip
    key = (conn.dialect.name, table.name, columns, count, replace_on, nulls)
    sql = _sql_cache.get(key)
    if sql is None:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        quote = conn.dialect.identifier_preparer.quote
        row = "(" + ", ".join([mark] * len(columns)) + ")"
        quoted = ", ".join(quote(c) for c in columns)
        table_name = conn.dialect.identifier_preparer.format_table(table)
        values = "VALUES " + ", ".join([row] * count)
        if nulls:  # VALUES names its columns column1, column2, ... (SQLite and PostgreSQL); the markers are bound
            picks = [f"NULLIF(column{i}, {mark})" if c in nulls else f"column{i}" for i, c in enumerate(columns, 1)]
            sql = f"INSERT INTO {table_name} ({quoted}) SELECT {', '.join(picks)} FROM ({values}) AS v"
        else:
            sql = f"INSERT INTO {table_name} ({quoted}) {values}"
        if replace_on:
            updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in replace_on)
            sql += f" ON CONFLICT ({', '.join(quote(c) for c in replace_on)}) DO UPDATE SET {updates}"
        _sql_cache[key] = sql
    return sql


BLOCK_ROWS = 1 << 16
"""Rows of an integer array that :func:`insert_columns` turns into Python ints at a time."""


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    replace_on: Sequence[str] = (),
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` on the connection's open transaction.

    Rows go in multi-row ``INSERT ... VALUES (...), (...)`` statements of up to :data:`MAX_PARAMS` parameters.
    Besides being fast, this matters for threads: the sqlite3 driver releases the GIL around every statement it
    steps, so a per-row ``executemany`` on the writer thread would wait for the GIL once per row behind a busy
    training thread (the convoy effect) and fall far behind.

    ``replace_on`` names a unique key: a row whose key exists replaces the stored row's other columns (an upsert;
    SQLite >= 3.24 and PostgreSQL).
    """
    if not rows:
        return
    columns = tuple(columns)
    flat = chain.from_iterable
    start = 0
    for size in _chunk_sizes(len(rows), max(1, MAX_PARAMS // len(columns))):
        chunk = rows[start : start + size]
        sql = _multi_values_sql(conn, table, columns, size, tuple(replace_on))
        conn.exec_driver_sql(sql, tuple(flat(chunk)))
        start += size


def insert_columns(
    conn: Connection, table: Table, columns: Sequence[str], values: np.ndarray, nulls: Mapping[str, int]
) -> None:
    """Insert the rows of ``values``, a 2-D integer array (a column per name in ``columns``), into ``table``; in a
    column named in ``nulls``, the value given there is stored as NULL.

    For many rows of integers this is several times faster than :func:`insert_rows` with ``None`` in the rows: the
    values travel as lists of ints (no tuple per row), and the sqlite3 driver binds an int directly where a
    ``None`` goes through its adapter lookup (about 0.25 us each: more than the insert of the value itself). The
    lists are made :data:`BLOCK_ROWS` rows at a time: a Python int takes 28 bytes, so 8.5M rows of two columns made
    whole took 0.6 GB.
    """
    if not len(values):
        return
    columns = tuple(columns)
    width = len(columns)
    nullable = tuple(c for c in columns if c in nulls)
    markers = tuple(int(nulls[c]) for c in nullable)  # bound first: the SELECT list comes before the VALUES
    for first in range(0, len(values), BLOCK_ROWS):
        block = values[first : first + BLOCK_ROWS]
        flat = np.ascontiguousarray(block, dtype=np.int64).ravel().tolist()
        start = 0
        for size in _chunk_sizes(len(block), max(1, (MAX_PARAMS - len(markers)) // width)):
            sql = _multi_values_sql(conn, table, columns, size, (), nullable)
            conn.exec_driver_sql(sql, markers + tuple(flat[start * width : (start + size) * width]))
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
        # in hash order: two processes interning overlapping names at once then take the rows' locks in one order,
        # so PostgreSQL never has to abort one of them as a deadlock (the ranks of a job log the same tags)
        rows = [{"hash": h, "name": by_hash[h]} for h in sorted(by_hash)]
        conn.execute(insert.on_conflict_do_nothing(index_elements=["hash"]), rows)
        hashes = list(by_hash)
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            for id_, h, stored in conn.execute(select(names.c.id, names.c.hash, names.c.name).where(names.c.hash.in_(chunk))):
                if stored != by_hash[h]:
                    raise StoreError(f"name hash collision between {stored!r} and {by_hash[h]!r}")
                self._ids[stored] = id_
