"""The dashboard's store is read-only: the database itself refuses a write through its engine, on both backends,
while a run that a training process is still writing stays visible through it."""

from __future__ import annotations

import sqlalchemy
import pytest
from sqlalchemy.exc import DBAPIError

import torchscope
from torchscope.storage.store import Store


def test_write_through_the_read_only_engine_fails_on_both_backends(any_db: str) -> None:
    with torchscope.init(name="kept", db=any_db) as run:
        run.log({"loss": 1.0}, step=0)
    store = Store(any_db, read_only=True)
    try:
        assert store.read_only
        with pytest.raises(DBAPIError, match="(?i)read-?only"):
            with store._engine.begin() as conn:
                conn.execute(sqlalchemy.text("UPDATE runs SET name = :n"), {"n": "overwritten"})
        with pytest.raises(DBAPIError, match="(?i)read-?only"):
            with store._engine.begin() as conn:
                conn.execute(sqlalchemy.text("CREATE TABLE intruder (x INTEGER)"))
        assert store.runs()["name"].tolist() == ["kept"]
    finally:
        store.close()
    assert torchscope.open(any_db).runs()["name"].tolist() == ["kept"]


def test_read_only_store_sees_a_live_run_as_it_writes(db_path) -> None:
    run = torchscope.init(name="live", db=db_path)
    try:
        run.log({"loss": 0.5}, step=0)
        run.flush()
        store = Store(db_path, read_only=True)
        try:
            assert store.runs()[["name", "status"]].values.tolist() == [["live", "running"]]
            run.log({"loss": 0.25}, step=1)
            run.flush()
            assert store.scalars(run.id, ["loss"])["value"].tolist() == [0.5, 0.25]
        finally:
            store.close()
    finally:
        run.finish()


def test_read_only_store_opens_a_wal_database_whose_side_files_are_gone(db_path) -> None:
    with torchscope.init(name="done", db=db_path) as run:
        run.log({"loss": 1.0}, step=0)
    # the last writer's close checkpoints the WAL and removes -wal and -shm
    assert not db_path.with_name(db_path.name + "-wal").exists()
    with Store(db_path, read_only=True) as store:
        assert store.runs()["name"].tolist() == ["done"]


def test_read_only_store_cannot_create_a_database(db_path) -> None:
    with pytest.raises(torchscope.StoreError, match="no torchscope database at"):
        Store(db_path, read_only=True)
    assert not db_path.exists()
