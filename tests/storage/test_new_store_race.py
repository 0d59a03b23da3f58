"""A store opened while another process holds a write lock on the new file (a job's ranks starting together)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from torchscope.storage import engine


def test_switching_to_wal_waits_for_a_writer_that_holds_the_new_file(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "new.db"
    other = sqlite3.connect(db, isolation_level=None)  # another process creating the store, not yet in WAL
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    mine = sqlite3.connect(db, isolation_level=None)
    mine.execute(f"PRAGMA busy_timeout={engine.BUSY_TIMEOUT_MS}")
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # SQLite does not wait here, busy timeout or not
        mine.execute("PRAGMA journal_mode=WAL")
    pauses = []

    def pause(seconds: float) -> None:  # the other process ends its transaction while we wait
        pauses.append(seconds)
        other.execute("COMMIT")

    monkeypatch.setattr(engine.time, "sleep", pause)
    engine._wal(mine.cursor())
    assert len(pauses) == 1
    assert mine.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()
    mine.close()
