"""Every value in the store's SQL is a bound parameter: no statement text carries a number from the data.

Every statement the SQLite driver receives (through SQLAlchemy or straight from a DB-API cursor, as the hot reads
do) is recorded while a real trace is imported and each profile and timeline view is read, both through the loaded
event index and through SQL and the stored pyramid. A statement that formats a value in (an id, a time, a window
bound, a level) shows it as a number in its text; the only numbers allowed are the code's own constants. The
profile read is the second one imported, so its ids are not among them.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

import torchscope
from torchscope.io.importing import import_path
from torchscope.storage.driver_sql import bind, chunks, named
from torchscope.storage.profile import analyses
from torchscope.storage.timeline import reads, tiled

CONSTANTS = {"0", "1", "4", "32", "41"}
"""Numbers the SQL itself holds: NULL stand-ins (-1), ``LIMIT 1``, ``SELECT 1``, and the packing shifts."""
DRIVER_SQL = [
    "FROM profile_events WHERE id BETWEEN :lo AND :hi",  # profile analyses: the events of a lane kind
    "WHERE l.profile_id = :profile AND l.kind = :lane_kind",  # the same, of a profile stored without first ids
    "e.lane_id = :lane AND e.level = :level",  # Store.events of a window
    "WHERE e.id >= :lo AND e.id < :hi",  # Store.iter_events
    "SELECT id, name FROM names WHERE id IN (:ids_0, :ids_1",  # its names
    "start < :start_cap AND dur < :dur_cap",  # the event index's scan, the stored timeline's build
    "WHERE ((lane_id = :lane_0 AND id >= :first_0 AND id < :last_0)",  # the longest events of a window
    "name_id IN (:names_0",  # search
    "SELECT start FROM profile_events WHERE id = :id",  # the binary search by start time
    "((start >> :shift) - :lo)",  # density from raw events
    "FROM profile_events WHERE id IN (:ids_0",  # events by id
]
"""Fragments of the statements sent straight to the DB-API cursor (SQLite's placeholders)."""
_DDL = ("CREATE", "ALTER", "PRAGMA", "DROP")  # schema text (column sizes, defaults), not values
_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")


class _Cursor(sqlite3.Cursor):
    statements: ClassVar[list[str]] = []

    def execute(self, sql, parameters=(), /):  # type: ignore[no-untyped-def, override]
        self.statements.append(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):  # type: ignore[no-untyped-def, override]
        self.statements.append(sql)
        return super().executemany(sql, seq_of_parameters)


class _Connection(sqlite3.Connection):
    def cursor(self, factory=_Cursor):  # type: ignore[no-untyped-def, override]
        return super().cursor(factory)

    def execute(self, sql, parameters=(), /):  # type: ignore[no-untyped-def, override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):  # type: ignore[no-untyped-def, override]
        return self.cursor().executemany(sql, seq_of_parameters)


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The text of every statement sent to SQLite from now on (each connection made with a recording cursor)."""
    recorded: list[str] = []
    monkeypatch.setattr(_Cursor, "statements", recorded)
    connect = sqlite3.dbapi2.connect
    monkeypatch.setattr(sqlite3.dbapi2, "connect", lambda *a, **kw: connect(*a, **{**kw, "factory": _Connection}))
    yield recorded


def _read_every_view(store: torchscope.Store, pid: int) -> list[int]:
    """Read each profile and timeline view of ``pid``; the window bounds passed in."""
    duration = int(store.profile(pid)["duration_ns"])
    bounds = [duration // 3 + 7, duration // 3 + 7 + duration // 50, duration // 2 + 13, duration // 2 + 13 + 997]
    store.op_table(pid)
    store.op_table(pid, group_by_shape=True)
    store.kernel_table(pid)
    store.module_table(pid)
    events = store.events(pid)
    assert sum(len(chunk) for chunk in store.iter_events(pid, chunk_rows=500)) == len(events) > 1000
    whole = store.timeline_window(pid, px=1200, max_items=3000)[0]
    assert len(whole) > 0
    for a, b in ((bounds[0], bounds[1]), (bounds[2], bounds[3])):
        store.timeline_window(pid, a, b, px=1200, max_items=5, max_blocks=2000)
        store.timeline_window(pid, a, b, px=300, max_items=3000, max_blocks=10)
    found = store.timeline_search(pid, "aten::", max_items=50)
    store.timeline_search(pid, "mm", bounds[0], bounds[1], max_items=5)
    assert len(found) > 0
    ops = whole[whole["kind"] == "cpu_op"]["id"].head(5).tolist()
    for event_id in ops + found["id"].head(5).tolist():
        assert store.timeline_event(pid, int(event_id))["id"] == event_id
    store.timeline_minimap(pid, bins=64)
    assert len(store.name_spans(pid)) > 0
    return bounds + [int(i) for i in ops]


def test_no_statement_carries_a_value(
    cpu_trace: Path, db_path: Path, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import_path(db_path, cpu_trace)
    import_path(db_path, cpu_trace)  # the second profile's ids are past every constant
    with torchscope.open(db_path) as store:
        pid = int(store.profiles()["id"].max())
        first = int(store.profile(pid)["first_event_id"])
        passed = _read_every_view(store, pid)  # through the loaded event index
    monkeypatch.setattr(reads, "INDEX_MAX_EVENTS", 0)  # and through SQL and the stored pyramid
    with torchscope.open(db_path) as store:
        store._profiles.summaries.enabled = False  # the profile tables computed from the events read by id range
        passed += _read_every_view(store, pid)
        assert store._timeline._large(pid) is not None and not store._timeline._indexes._loaded
    assert pid == 2 and first > 1000
    with torchscope.open(db_path) as store, store._engine.connect() as conn:
        by_range = analyses._event_frame(conn, pid, "host")
        conn.execute(text("UPDATE profiles SET first_event_id = NULL"))  # as profiles stored by older versions
        by_lane = analyses._event_frame(conn, pid, "host").sort_values("id", ignore_index=True)
        conn.rollback()
    assert len(by_range) > 1000 and by_range["id"].min() >= first
    pd.testing.assert_frame_equal(by_lane, by_range)
    values = [s for s in statements if not s.lstrip().upper().startswith(_DDL)]
    numbers = {n for s in values for n in _NUMBER.findall(s)}
    assert numbers <= CONSTANTS, [s for s in values if set(_NUMBER.findall(s)) - CONSTANTS][:5]
    assert not {str(v) for v in passed} & numbers
    for bound in DRIVER_SQL:  # each statement sent straight to the driver's cursor ran, its values bound
        assert any(bound in s for s in values), bound


def test_bind_writes_each_drivers_placeholders_and_expands_lists() -> None:
    template = "SELECT id FROM t WHERE a = {a} AND b IN ({ids}) AND c >= {a}"
    params = {"a": np.int64(7), "ids": np.array([3, 5])}
    assert bind(template, "sqlite", params) == (
        "SELECT id FROM t WHERE a = :a AND b IN (:ids_0, :ids_1) AND c >= :a", {"a": 7, "ids_0": 3, "ids_1": 5}
    )
    sql, bound = bind(template, "postgresql", {"a": 7, "ids": []})
    assert sql == "SELECT id FROM t WHERE a = %(a)s AND b IN (NULL) AND c >= %(a)s" and bound == {"a": 7}
    assert all(type(v) is int for v in bind(template, "sqlite", params)[1].values())
    assert named("SELECT start FROM e WHERE id = {id}", "postgresql") == "SELECT start FROM e WHERE id = %(id)s"
    assert list(chunks(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="cannot hold '%'"):
        named("SELECT id FROM names WHERE name LIKE 'a%' AND id = {id}", "sqlite")


def test_bound_statements_answer_on_sqlite() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, i % 3) for i in range(1, 2001)])
    ids = list(range(1, 2001, 2))
    got = [r for part in chunks(ids) for r in conn.execute(*bind("SELECT id FROM t WHERE a = {a} AND id IN ({ids})",
                                                                  "sqlite", {"a": 1, "ids": part}))]  # fmt: skip
    assert [r[0] for r in got] == [i for i in ids if i % 3 == 1]
    assert conn.execute(*bind("SELECT COUNT(*) FROM t WHERE id IN ({ids})", "sqlite", {"ids": []})).fetchone() == (0,)


def test_long_in_lists_go_in_parts_with_the_same_answer(
    cpu_trace: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_path(db_path, cpu_trace)
    monkeypatch.setattr(reads, "INDEX_MAX_EVENTS", 0)

    def answers(store: torchscope.Store) -> list[pd.DataFrame]:
        duration = int(store.profile(1)["duration_ns"])
        windows = [store.timeline_window(1, px=1200, max_items=n)[0] for n in (7, 3000)]
        windows.append(store.timeline_window(1, duration // 3, duration // 2, px=300, max_items=40)[0])
        return windows + [store.timeline_search(1, q, max_items=n) for q in ("aten::", "a") for n in (5, 300)]

    with torchscope.open(db_path) as store:
        whole = answers(store)
    monkeypatch.setattr(tiled, "IN_CHUNK", 2)  # one lane and two names a statement
    with torchscope.open(db_path) as store:
        parts = answers(store)
    assert len(whole[1]) > len(whole[0]) == 7 and len(whole[-1]) == 300 and whole[-1].attrs["total"] > 300
    for got, want in zip(parts, whole):
        pd.testing.assert_frame_equal(got, want)
        assert got.attrs == want.attrs
