"""Stores written by an older schema open, migrated, in this torchscope (the schema-1 file: test_failures.py)."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
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


def test_a_schema_8_store_reads_and_exports_python_ids_and_op_inputs_it_kept_as_json(db_path, cpu_trace, tmp_path):
    """Schema 8 kept ``Python id``, ``Python parent id``, ``Record function id``, ``Input Strides`` and ``Concrete
    Inputs`` with the other args as JSON (the info text held dims and types only): such a store reads and exports
    the same args as one written now."""
    from torchscope.io.exporting import export_run
    from torchscope.io.importing import import_path
    from torchscope.storage.profile.records import input_args

    import_path(db_path, cpu_trace)
    with torchscope.open(db_path) as store:
        args = store.event_args(1)
    out_new = tmp_path / "new.json"
    list(export_run(db_path, 1, chrome_trace=out_new))
    new_columns = TYPED_COLUMNS[4:]
    with sqlite3.connect(db_path) as conn:
        infos = conn.execute("SELECT DISTINCT e.info_id, i.name FROM profile_events e JOIN names i ON i.id = "
                             "e.info_id WHERE i.name LIKE '[[%'").fetchall()  # an op's inputs: a JSON list of lists
        inputs = {info_id: input_args(text) for info_id, text in infos}
        assert sum(len(a) == 4 for a in inputs.values()) > 10  # strides and concrete values are in the info text
        old_json = {}
        for event_id, info_id, kept in conn.execute(
            "SELECT e.id, e.info_id, a.args FROM profile_events e LEFT JOIN profile_event_args a ON a.event_id = e.id "
            "WHERE e.info_id IN (%s)" % ",".join(str(i) for i in inputs)
        ):  # fmt: skip
            moved = {k: v for k, v in inputs[info_id].items() if k in ("Input Strides", "Concrete Inputs")}
            old_json[event_id] = {**json.loads(kept or "{}"), **moved}
        by_event = dict(zip(args["event_id"].tolist(), args["args"].tolist()))
        for event_id, (py_id, py_parent, rf_id, kept) in {
            r[0]: r[1:] for r in conn.execute(
                f"SELECT e.id, {', '.join('e.' + c for c in new_columns)}, a.args FROM profile_events e "
                "LEFT JOIN profile_event_args a ON a.event_id = e.id "
                f"WHERE {' OR '.join(f'e.{c} IS NOT NULL' for c in new_columns)}")
        }.items():  # fmt: skip
            full = json.loads(by_event[event_id])
            moved = {k: full[k] for k in TYPED_ARGS[4:] if k in full}
            old_json[event_id] = {**old_json.get(event_id, json.loads(kept or "{}")), **moved}
        assert len(old_json) > 1000
        dims_types = {info_id: json.dumps([a["Input Dims"], a["Input type"]]) for info_id, a in inputs.items()}
    engine = sqlalchemy.create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:  # back to schema 8
        for info_id, text in dims_types.items():
            key = -1 - info_id  # a hash no interned text has
            conn.exec_driver_sql("INSERT INTO names (hash, name) VALUES (?, ?)", (key, text))
            conn.exec_driver_sql("UPDATE profile_events SET info_id = (SELECT id FROM names WHERE hash = ?) "
                                 "WHERE info_id = ?", (key, info_id))  # fmt: skip
        conn.exec_driver_sql("DELETE FROM profile_event_args WHERE event_id IN (%s)" % ",".join(map(str, old_json)))
        conn.exec_driver_sql("INSERT INTO profile_event_args (event_id, args) VALUES (?, ?)",
                             [(e, json.dumps(a)) for e, a in old_json.items()])  # fmt: skip
        for column in new_columns:
            conn.exec_driver_sql(f"ALTER TABLE profile_events DROP COLUMN {column}")
        conn.exec_driver_sql("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    engine.dispose()
    with torchscope.open(db_path) as store:
        migrated = store.event_args(1)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM profile_events WHERE py_id IS NOT NULL").fetchone() == (0,)
    out_old = tmp_path / "old.json"
    list(export_run(db_path, 1, chrome_trace=out_old))
    assert json.loads(out_old.read_bytes()) == json.loads(out_new.read_bytes())
    assert set(migrated["event_id"]) >= set(args["event_id"])


def test_a_schema_9_store_gets_the_smaller_lane_index_and_the_lanes_kept_starts(any_db, cpu_trace, monkeypatch):
    from torchscope.io.importing import import_path
    from torchscope.storage.timeline import reads, tiles

    import_path(any_db, cpu_trace)
    monkeypatch.setattr(reads, "INDEX_MAX_EVENTS", 0)  # windows from SQL: the index and the kept starts
    with torchscope.open(any_db) as store:
        duration = int(store.profile(1)["duration_ns"])
        views = [(0, duration), (duration // 3, duration // 3 + duration // 50), (duration // 2, duration // 2 + 5000)]
        before = [store.timeline_window(1, a, b, px=400, max_items=300) for a, b in views]
        events_before = store.events(1, duration // 3, duration // 2)
    engine = sqlalchemy.create_engine(any_db if "://" in any_db else f"sqlite:///{any_db}")

    def stored() -> tuple[list, list]:
        with engine.connect() as conn:
            starts = [(lane, bytes(blob)) for lane, blob in
                      conn.exec_driver_sql("SELECT lane_id, starts FROM timeline_lanes ORDER BY lane_id").all()]
            found = sqlalchemy.inspect(conn).get_indexes("profile_events")
            indexes = sorted((i["name"], i["column_names"]) for i in found)
        return starts, indexes  # fmt: skip

    fresh, indexes = stored()
    lane_columns = ["lane_id", "level"] if engine.dialect.name == "sqlite" else ["lane_id", "level", "id"]
    assert indexes == [("ix_profile_events_lane_level", lane_columns)]  # the rowid ends every SQLite entry
    assert max(len(tiles.decode_starts(blob)) for _, blob in fresh) > 4  # lanes of more than 4 x 256 events
    with engine.begin() as conn:  # back to schema 9
        conn.exec_driver_sql("DROP INDEX ix_profile_events_lane_level")
        conn.exec_driver_sql("CREATE INDEX ix_profile_events_lane_level_start ON profile_events "
                             "(lane_id, level, start)")  # fmt: skip
        conn.exec_driver_sql("ALTER TABLE timeline_lanes DROP COLUMN starts")
        conn.exec_driver_sql("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    with torchscope.open(any_db) as store:
        after = [store.timeline_window(1, a, b, px=400, max_items=300) for a, b in views]
        pd.testing.assert_frame_equal(store.events(1, duration // 3, duration // 2), events_before)
    for (events, blocks), (ref_events, ref_blocks) in zip(after, before):
        pd.testing.assert_frame_equal(events, ref_events)
        pd.testing.assert_frame_equal(blocks, ref_blocks)
    assert stored() == (fresh, indexes)
    with engine.begin() as conn:  # as profiles stored by versions that did not record their first id
        conn.exec_driver_sql("UPDATE profiles SET first_event_id = NULL")
    with torchscope.open(any_db) as store:
        pd.testing.assert_frame_equal(store.events(1, duration // 3, duration // 2), events_before)
    engine.dispose()
