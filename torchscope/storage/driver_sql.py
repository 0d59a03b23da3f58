"""Bound parameters for the statements the hot reads send to the DB-API driver's own cursor.

Those reads skip SQLAlchemy's statement handling (a row object per row costs more than the query), so they speak
the driver's own placeholders: ``:name`` for sqlite3, ``%(name)s`` for psycopg. A statement is written once as a
template whose ``{name}`` fields are its values; :func:`named` turns the fields into placeholders, :func:`bind`
also expands a list value into one parameter per item (for ``IN ({ids})``).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

IN_CHUNK = 900
"""Values per ``IN (...)`` list: under SQLite's oldest limit on the parameters of one statement (999)."""

_LISTS = (list, tuple, range, np.ndarray)


@functools.lru_cache(maxsize=256)
def _fields(template: str) -> tuple[str, ...]:
    if "%" in template:  # psycopg would read it as a placeholder; SQLite would not: the same text cannot serve both
        raise ValueError(f"a driver SQL template cannot hold '%' (a LIKE pattern is a bound value): {template!r}")
    return tuple(dict.fromkeys(re.findall(r"\{(\w+)\}", template)))


def _mark(dialect: str, name: str) -> str:
    return f":{name}" if dialect == "sqlite" else f"%({name})s"


def named(template: str, dialect: str) -> str:
    """``template``'s ``{name}`` fields as the named parameters of ``dialect``'s driver (``:name`` for SQLite,
    ``%(name)s`` for PostgreSQL), for a statement executed many times with different values."""
    return template.format(**{n: _mark(dialect, n) for n in _fields(template)})


def bind(template: str, dialect: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(sql, parameters)`` of ``template`` for ``dialect``'s driver: each ``{name}`` field a named parameter with
    the value ``params[name]``; a list (or array) value becomes one parameter per item, separated by commas (for
    ``IN ({name})``; an empty one ``NULL``, which matches nothing). NumPy integers are passed as Python ``int``."""
    fields: dict[str, str] = {}
    flat: dict[str, Any] = {}
    for name in _fields(template):
        value = params[name]
        if isinstance(value, _LISTS):
            keys = [f"{name}_{i}" for i in range(len(value))]
            fields[name] = ", ".join(_mark(dialect, k) for k in keys) or "NULL"
            flat.update(zip(keys, (_scalar(v) for v in value)))
        else:
            fields[name] = _mark(dialect, name)
            flat[name] = _scalar(value)
    return template.format(**fields), flat


def _scalar(value: Any) -> Any:
    return int(value) if isinstance(value, np.integer) else value


def chunks(values: Iterable[int], size: int = IN_CHUNK) -> Iterator[list[int]]:
    """``values`` as Python ints in lists of at most ``size`` (one ``IN (...)`` statement each)."""
    it = iter(values)
    while part := [int(v) for v in itertools.islice(it, size)]:
        yield part


def fetch_ints(conn: Any, template: str, params: Mapping[str, Any], width: int) -> np.ndarray:
    """The integer rows of ``template`` bound to ``params`` (see :func:`bind`) as an ``n x width`` int64 array,
    straight from the DB-API cursor of the SQLAlchemy connection ``conn``: plain tuples go through ``fromiter``
    (numpy probing SQLAlchemy row objects would cost ~30 µs per row)."""
    sql, bound = bind(template, conn.dialect.name, params)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, bound)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    flat = itertools.chain.from_iterable(rows)
    return np.fromiter(flat, dtype=np.int64, count=width * len(rows)).reshape(-1, width)
