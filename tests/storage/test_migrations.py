"""Stores written by an older schema open, migrated, in this torchscope (the schema-1 file: test_failures.py)."""

from __future__ import annotations

import json
import sqlite3

import sqlalchemy

import torchscope
from torchscope.storage.profile.records import TYPED_ARGS, TYPED_COLUMNS
from torchscope.storage.schema import SCHEMA_VERSION

DISTRIBUTED = ("rank", "world_size", "local_rank", "job_id")


def test_a_schema_2_store_gets_the_distributed_columns_and_new_runs_fill_them(any_db: str, monkeypatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with torchscope.init("old", db=any_db, system_metrics=False) as old:
        old.log({"loss": 1.0}, step=0)
    engine = sqlalchemy.create_engine(any_db if "://" in any_db else f"sqlite:///{any_db}")
    with engine.begin() as conn:  # back to schema 2: the run's place in a job was not stored
        conn.exec_driver_sql("DROP INDEX ix_runs_job_id")
        for column in DISTRIBUTED:
            conn.exec_driver_sql(f"ALTER TABLE runs DROP COLUMN {column}")
        conn.exec_driver_sql("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    store = torchscope.open(any_db)
    assert [store.run(old.id)[c] for c in DISTRIBUTED] == [None, None, None, None]
    assert store.scalars(old.id)["value"].tolist() == [1.0]
    store.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'schema_version'").scalar() == str(SCHEMA_VERSION)
    engine.dispose()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("TORCHSCOPE_JOB_ID", "job-7")
    with torchscope.init("new", db=any_db, system_metrics=False) as new:
        assert (new.rank, new.world_size, new.local_rank, new.job_id) == (3, 8, 1, "job-7")
    store = torchscope.open(any_db)
    assert [store.run(new.id)[c] for c in DISTRIBUTED] == [3, 8, 1, "job-7"]
    assert store.runs()["job_id"].tolist() == ["job-7", None]
    store.close()


def test_a_schema_5_store_gets_the_event_args_table_and_exports_its_profiles(db_path, cpu_trace, tmp_path) -> None:
    from torchscope.io.exporting import export_run
    from torchscope.io.importing import import_path

    import_path(db_path, cpu_trace)
    engine = sqlalchemy.create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:  # back to schema 5: the args no column keeps were dropped on import
        conn.exec_driver_sql("DROP TABLE profile_event_args")
        conn.exec_driver_sql("ALTER TABLE profile_memory DROP COLUMN args")
        _drop_typed_arg_columns(conn)
        conn.exec_driver_sql("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    engine.dispose()
    with torchscope.open(db_path) as store:
        assert store.event_args(1).empty
        assert store.memory_timeline(1)["args"].isna().all()
    out = tmp_path / "old.json"
    lines = list(export_run(db_path, 1, chrome_trace=out))
    assert lines[0].startswith("wrote profile 1 ")
    again = import_path(db_path, out)
    assert again.profiles[0]["events"] == import_path(db_path, cpu_trace).profiles[0]["events"]


def _drop_typed_arg_columns(conn: sqlalchemy.Connection) -> None:
    """Back to schema 7's columns: the typed args (schema 8) dropped."""
    for column in TYPED_COLUMNS:
        conn.exec_driver_sql(f"ALTER TABLE profile_events DROP COLUMN {column}")
    for column in ("queued", "context", "bandwidth"):
        conn.exec_driver_sql(f"ALTER TABLE profile_event_details DROP COLUMN {column}")


def test_a_schema_7_store_reads_and_exports_the_args_it_kept_as_json(db_path, cpu_trace, tmp_path) -> None:
    from torchscope.io.exporting import export_run
    from torchscope.io.importing import import_path

    import_path(db_path, cpu_trace)
    with torchscope.open(db_path) as store:
        args = store.event_args(1)
    out_new = tmp_path / "new.json"
    list(export_run(db_path, 1, chrome_trace=out_new))
    assert {key for a in args["args"] for key in json.loads(a)} >= set(TYPED_ARGS[:3])  # a CPU trace: no cbid
    engine = sqlalchemy.create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:  # schema 7 kept the typed args as JSON in profile_event_args, with the others
        conn.exec_driver_sql("DELETE FROM profile_event_args")
        rows = list(zip(args["event_id"].tolist(), args["args"].tolist()))
        conn.exec_driver_sql("INSERT INTO profile_event_args (event_id, args) VALUES (?, ?)", rows)
        _drop_typed_arg_columns(conn)
        conn.exec_driver_sql("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    engine.dispose()
    with torchscope.open(db_path) as store:
        migrated = store.event_args(1)
    assert len(args) > 1000 and migrated["event_id"].tolist() == args["event_id"].tolist()
    assert [json.loads(a) for a in migrated["args"]] == [json.loads(a) for a in args["args"]]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM profile_events WHERE ev_idx IS NOT NULL").fetchone() == (0,)
    out_old = tmp_path / "old.json"
    list(export_run(db_path, 1, chrome_trace=out_old))
    assert json.loads(out_old.read_bytes()) == json.loads(out_new.read_bytes())
