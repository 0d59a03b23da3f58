"""Failures stay inside torchscope: the database becomes unwritable mid-run (disk full, file deleted or replaced by a
directory, PostgreSQL server stopped), or the writer cannot keep up. Training goes on, one warning per kind of
failure says what to do, what was dropped is counted by kind on the run's row, and writing resumes when it can."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

import torchscope
from torchscope.storage.schema import SCHEMA_VERSION
from torchscope.storage.graph.records import GraphStep
from torchscope.storage.handlers import HANDLERS


@contextmanager
def caught() -> Iterator[list[str]]:
    """Every warning's message, also those the writer thread emits."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        messages: list[str] = []
        yield messages
        messages.extend(str(w.message) for w in seen)


def steps_of(store: torchscope.Store, run_id: int, tag: str) -> list[int]:
    frame = store.scalars(run_id, tags=[tag])
    return frame["step"].tolist()


def counts(row: dict) -> tuple[int, int, int, int]:
    return (row["dropped"], row["dropped_scalars"], row["dropped_steps"], row["dropped_profiles"])


def test_disk_full_drops_the_batch_warns_once_and_writing_resumes_when_space_is_freed(db_path: Path) -> None:
    run = torchscope.init("full", db=db_path, system_metrics=False)
    run.log({"loss": 1.0}, step=0)
    assert run.flush()
    pages = run.writer.call(lambda conn: conn.exec_driver_sql("PRAGMA page_count").scalar())
    run.writer.call(lambda conn: conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}"))  # the disk is full
    wide = {f"layer{i}/grad_norm": float(i) for i in range(2000)}  # 2000 new names need new pages
    with caught() as messages:
        run.log(wide, step=1)
        assert run.flush()
        run.log(wide, step=2)  # still full: dropped too, no second warning
        assert run.flush()
        assert run.dropped == 4000 and run.dropped_by_kind == {"scalars": 4000}
        run.writer.call(lambda conn: conn.exec_driver_sql("PRAGMA max_page_count = 1073741823"))  # space freed
        run.log({**wide, "loss": 0.5}, step=3)
        run.finish()
    full = [m for m in messages if "cannot write" in m]
    assert full == [
        (f"torchscope: cannot write to {db_path} (disk full); training continues, 2,000 records dropped so far; "
         "free space on that disk, and torchscope resumes writing on its own")
    ]
    # the first commit after the failure says "again": a heartbeat (it fits in the full file) or the last batch
    again = [m for m in messages if " again; " in m]
    assert len(again) == 1
    assert re.match(re.escape(f"torchscope: writing to {db_path} again; ") + "(2,000|4,000) records were dropped", again[0])
    store = torchscope.open(db_path)
    row = store.run(run.id)
    assert row["status"] == "finished"
    assert counts(row) == (4000, 4000, 0, 0)
    assert steps_of(store, run.id, "loss") == [0, 3]
    assert steps_of(store, run.id, "layer7/grad_norm") == [3]


def test_a_read_only_database_is_named_as_such_with_what_to_do(db_path: Path) -> None:
    from torchscope.storage.writer import diagnose

    torchscope.init("ro", db=db_path, system_metrics=False).finish()
    # root writes a chmod'ed file; a connection opened read-only fails the way a read-only file does
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as failed:
        conn.execute("UPDATE runs SET name = 'x'")
    conn.close()
    assert diagnose(failed.value) == ("read-only", "it is read-only", "make it writable")


def test_a_deleted_database_file_is_created_again_with_the_run(db_path: Path) -> None:
    run = torchscope.init("deleted", db=db_path, config={"lr": 0.1}, system_metrics=False)
    for step in range(10):
        run.log({"loss": float(step)}, step=step)
    assert run.flush()
    with caught() as messages:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        for step in range(10, 20):
            run.log({"loss": float(step)}, step=step)
        run.finish()
    assert messages == [
        (f"torchscope: {db_path} was deleted while this run wrote to it; torchscope created it again and goes on "
         "writing there (what was stored before went with the deleted file)")
    ]
    store = torchscope.open(db_path)
    row = store.run(run.id)
    assert (row["name"], row["status"], row["config"], row["pid"]) == ("deleted", "finished", {"lr": 0.1}, os.getpid())
    assert counts(row) == (0, 0, 0, 0)
    assert steps_of(store, run.id, "loss") == list(range(10, 20))
    assert store.scalars(run.id)["value"].tolist() == [float(s) for s in range(10, 20)]


def test_a_database_replaced_by_a_directory_drops_until_it_is_moved_away(db_path: Path) -> None:
    run = torchscope.init("dir", db=db_path, system_metrics=False)
    run.log({"loss": 0.0}, step=0)
    assert run.flush()
    with caught() as messages:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        db_path.mkdir()
        for step in range(1, 6):
            run.log({"loss": float(step), "acc": 0.5}, step=step)
        assert run.flush()
        assert run.dropped_by_kind == {"scalars": 10}
        db_path.rmdir()
        for step in range(6, 9):
            run.log({"loss": float(step), "acc": 0.5}, step=step)
        run.finish()
    # a heartbeat may meet the directory before the first logged values do: the count in the warning varies
    assert re.fullmatch(
        re.escape(f"torchscope: cannot write to {db_path} (it was replaced by a directory); training continues, ")
        + "(0|2|4|6|8|10)" + re.escape(" records dropped so far; move the directory away, and torchscope resumes "
                                       "writing on its own"),
        messages[0],
    )  # fmt: skip
    assert f"torchscope: {db_path} was deleted while this run wrote to it" in messages[1]
    store = torchscope.open(db_path)
    row = store.run(run.id)
    assert row["status"] == "finished"
    assert counts(row) == (10, 10, 0, 0)
    assert steps_of(store, run.id, "loss") == [6, 7, 8]


class Gate(NamedTuple):
    """A record whose handler holds the writer until the test opens the gate: a writer that cannot keep up."""

    entered: threading.Event
    release: threading.Event


def hold(_conn: object, _interner: object, records: list[Gate]) -> None:
    for gate in records:
        gate.entered.set()
        assert gate.release.wait(30)


def captured_step(run: torchscope.Run, step: int) -> GraphStep:
    return GraphStep(run.id, "model", step, 0, "hash", graph=None, stats=None, tensors=[], anomalies=[])


def test_a_full_queue_drops_captured_steps_before_scalars_and_counts_each(db_path: Path) -> None:
    HANDLERS[Gate] = hold
    try:
        run = torchscope.init("crowded", db=db_path, system_metrics=False, max_queue=10)
        gate = Gate(threading.Event(), threading.Event())
        run.writer.put(gate)
        assert gate.entered.wait(30)  # the writer is busy: everything below waits in the queue
        with caught() as messages:
            for step in range(5):
                run.log({"loss": float(step), "acc": 1.0}, step=step)
            run.writer.put(captured_step(run, 5))  # queue half full: a captured step is dropped
            for step in range(5, 10):
                run.log({"loss": float(step), "acc": 1.0}, step=step)  # scalars still go in, up to max_queue
            run.log({"loss": 10.0, "acc": 1.0}, step=10)  # full: scalars are dropped too
            run.writer.put(captured_step(run, 11))
            gate.release.set()
            run.finish()
    finally:
        del HANDLERS[Gate]
    assert run.dropped_by_kind == {"steps": 2, "scalars": 2}
    assert messages == [
        (f"torchscope: the writer cannot keep up with {db_path} (queue at 5 of max_queue=10 records); training "
         "continues, dropping captured steps (graph and tensor statistics), 1 dropped so far (counted in "
         "store.run(id)); capture less often (watch(every=...)), log less, or raise torchscope.init(max_queue=...)"),
        (f"torchscope: the writer cannot keep up with {db_path} (queue at 10 of max_queue=10 records); training "
         "continues, dropping records, scalars too, 3 dropped so far (counted in store.run(id)); capture less often "
         "(watch(every=...)), log less, or raise torchscope.init(max_queue=...)"),
    ]
    store = torchscope.open(db_path)
    assert counts(store.run(run.id)) == (4, 2, 2, 0)
    assert steps_of(store, run.id, "loss") == list(range(10))
    assert store.graph_steps(run.id).empty


def test_a_stopped_postgresql_server_drops_while_down_and_writing_resumes_when_it_is_back() -> None:
    from postgres import PostgresServer

    server = PostgresServer()
    try:
        server.start()
        server.create_database()
        run = torchscope.init("pg", db=server.url, system_metrics=False)
        for step in range(5):
            run.log({"loss": float(step)}, step=step)
        assert run.flush()
        server.stop()
        with caught() as messages:
            for step in range(5, 8):
                run.log({"loss": float(step)}, step=step)
            assert run.flush()
            assert run.dropped_by_kind == {"scalars": 3}
            server.start()
            for step in range(8, 10):
                run.log({"loss": float(step)}, step=step)
            run.finish()
        # the first failed batch may be a heartbeat or hold only some of the three: the count in it varies
        assert re.fullmatch(
            re.escape(f"torchscope: cannot write to {server.url} (the database server cannot be reached); training "
                      "continues, ") + r"[0-3] records dropped so far; " +
            re.escape("start the server again, and torchscope resumes writing on its own"),
            messages[0],
        )  # fmt: skip
        assert messages[1].startswith(f"torchscope: writing to {server.url} again; 3 records were dropped")
        assert len(messages) == 2
        store = torchscope.open(server.url)
        row = store.run(run.id)
        assert row["status"] == "finished"
        assert counts(row) == (3, 3, 0, 0)
        assert steps_of(store, run.id, "loss") == [0, 1, 2, 3, 4, 8, 9]
        store.close()
    finally:
        server.remove()


FIXTURE = Path(__file__).parents[1] / "fixtures" / "schema_v1.sql"


def test_a_schema_1_store_is_migrated_on_open(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.executescript(FIXTURE.read_text())
    store = torchscope.open(db_path)
    runs = store.runs()
    columns = ["id", "name", "status", "last_step", "scalar_count"]
    assert runs[columns].values.tolist() == [[1, "schema-v1", "finished", 2, 6]]
    assert runs.loc[0, "config"] == {"lr": 0.1}
    assert counts(store.run(1)) == (0, 0, 0, 0)
    assert store.graph_breaks(1).empty and store.compile_events(1).empty  # the compile tables were created
    frame = store.scalars(1)
    assert list(zip(frame["tag"], frame["step"], frame["value"])) == [
        ("acc", 0, 0.0), ("acc", 1, 0.25), ("acc", 2, 0.5), ("loss", 0, 1.0), ("loss", 1, 0.5), ("loss", 2, 1 / 3),
    ]  # fmt: skip
    store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    with torchscope.init("after", db=db_path, system_metrics=False) as run:
        run.log({"loss": 0.25}, step=0)
    assert torchscope.open(db_path).scalars(run.id)["value"].tolist() == [0.25]


def test_the_dropped_columns_are_added_to_a_schema_1_store_on_postgresql(postgres_url: str) -> None:
    import uuid

    import sqlalchemy

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    postgres_url = postgres_url.replace("/torchscope?", f"/{name}?")
    with torchscope.init("old", db=postgres_url, system_metrics=False) as run:
        run.log({"loss": 1.0}, step=0)
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as conn:  # back to schema 1: the per-kind columns (and schema 3's) did not exist
        conn.exec_driver_sql("DROP INDEX ix_runs_job_id")
        for column in ("dropped_scalars", "dropped_steps", "dropped_profiles", "rank", "world_size", "local_rank",
                       "job_id"):  # fmt: skip
            conn.exec_driver_sql(f"ALTER TABLE runs DROP COLUMN {column}")
        conn.exec_driver_sql("UPDATE runs SET dropped = 7")
        conn.exec_driver_sql("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    engine.dispose()
    store = torchscope.open(postgres_url)
    assert counts(store.run(run.id)) == (7, 0, 0, 0)
    assert store.scalars(run.id)["value"].tolist() == [1.0]
    store.close()
