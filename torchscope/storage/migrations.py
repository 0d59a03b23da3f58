"""Moving a store written by an older torchscope forward to :data:`SCHEMA_VERSION`.

Each entry of ``STEPS`` takes a connection inside the open transaction and moves the schema from version ``n`` to
``n + 1``. Tables that a version only adds are created by ``create_all`` (it skips existing tables), so a step only
has to alter what already exists.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from torchscope.errors import StoreError

Step = Callable[[Connection], None]


def _dropped_by_kind(conn: Connection) -> None:
    """1 -> 2: per-kind dropped counts on ``runs``. Older runs keep their total in ``dropped``; their kinds read 0."""
    for column in ("dropped_scalars", "dropped_steps", "dropped_profiles"):
        conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0")


def _distributed(conn: Connection) -> None:
    """2 -> 3: a run's place in a distributed job. Older runs read as outside any job (all four NULL)."""
    for column, kind in (("rank", "INTEGER"), ("world_size", "INTEGER"), ("local_rank", "INTEGER"), ("job_id", "TEXT")):
        conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
    conn.exec_driver_sql("CREATE INDEX ix_runs_job_id ON runs (job_id)")


def _timeline_tiles(conn: Connection) -> None:
    """3 -> 4: the timeline's tables (lanes' rows and depths, the density pyramid, names) and the profile summaries,
    built for every profile (a read-only dashboard cannot build them later)."""
    from torchscope.storage.profile.schema import profile_summaries
    from torchscope.storage.summaries import store_summaries
    from torchscope.storage.timeline.build import build_timeline
    from torchscope.storage.timeline.schema import timeline_lanes, timeline_names, timeline_tiles

    for table in (timeline_lanes, timeline_tiles, timeline_names, profile_summaries):
        table.create(conn, checkfirst=True)
    for (profile_id,) in conn.exec_driver_sql("SELECT id FROM profiles ORDER BY id").all():
        build_timeline(conn, int(profile_id))
        store_summaries(conn, int(profile_id))



def _compile_tables(conn: Connection) -> None:
    """4 -> 5: the compile tables (``compile_events``, ``graph_breaks``, ``fx_graphs``, ``fx_nodes``,
    ``compiled_kernels``) are new: the ``create_all`` after the steps makes them; nothing that exists changes."""


def _tensorboard_text_images(conn: Connection) -> None:
    """5 -> 6: the tables of imported TensorBoard text, images and hparam metrics (``tb_texts``, ``tb_images``,
    ``tb_hparam_metrics``) are new: the ``create_all`` after the steps makes them; nothing that exists changes."""


def _event_args(conn: Connection) -> None:
    """6 -> 7: trace event args kept as the trace wrote them: ``profile_event_args`` is new (``create_all`` makes
    it); ``profile_memory`` gains ``args`` (unless it has it: a store marked older than it is). Profiles stored
    before read as having no other args."""
    _add_columns(conn, "profile_memory", (("args", "TEXT"),))


def _typed_args(conn: Connection) -> None:
    """7 -> 8: the args most Kineto events carry get columns: ``profile_events`` gains ``ev_idx``, ``seq_nr``,
    ``fwd_tid`` and ``cbid``, ``profile_event_details`` gains ``queued``, ``context`` and ``bandwidth``. Profiles
    stored before keep those args in ``profile_event_args``, which is read together with the columns."""
    _add_columns(conn, "profile_events", (("ev_idx", "INTEGER"), ("seq_nr", "INTEGER"), ("fwd_tid", "INTEGER"),
                                          ("cbid", "INTEGER")))  # fmt: skip
    _add_columns(conn, "profile_event_details", (("queued", "BIGINT"), ("context", "BIGINT"), ("bandwidth", "FLOAT")))


def _python_args(conn: Connection) -> None:
    """8 -> 9: ``profile_events`` gains ``py_id``, ``py_parent`` and ``rf_id`` (``Python id``, ``Python parent id``,
    ``Record function id``), and new profiles intern an op's ``Input Strides`` and ``Concrete Inputs`` with its dims
    and types (``info_id``). Profiles stored before keep those args in ``profile_event_args``, read together with
    the columns."""
    _add_columns(conn, "profile_events", (("py_id", "INTEGER"), ("py_parent", "INTEGER"), ("rf_id", "INTEGER")))


def _lane_level_index(conn: Connection) -> None:
    """9 -> 10: ``profile_events``' index ``(lane_id, level, start)`` becomes ``(lane_id, level, id)`` (on SQLite
    ``(lane_id, level)``, the rowid ending every entry), a third of the size; ``timeline_lanes`` gains ``starts``
    (the ids of a time range, which the index no longer finds), written for every profile."""
    from torchscope.storage.profile.schema import LANE_LEVEL_INDEX, profile_events
    from torchscope.storage.timeline.build import store_starts

    _add_columns(conn, "timeline_lanes", (("starts", "BLOB" if conn.dialect.name == "sqlite" else "BYTEA"),))
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_profile_events_lane_level_start")
    for index in profile_events.indexes:  # the one for this dialect (Index.ddl_if)
        if index.name == LANE_LEVEL_INDEX:
            index.create(conn, checkfirst=True)
    for (profile_id,) in conn.exec_driver_sql("SELECT id FROM profiles ORDER BY id").all():
        store_starts(conn, int(profile_id))


def _add_columns(conn: Connection, table: str, columns: tuple[tuple[str, str], ...]) -> None:
    """``ALTER TABLE table ADD COLUMN`` each ``(name, SQL type)`` the table lacks (a store marked older than it is
    may have some already)."""
    from sqlalchemy import inspect

    have = {c["name"] for c in inspect(conn).get_columns(table)}
    for name, sql_type in columns:
        if name not in have:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")


STEPS: dict[int, Step] = {
    1: _dropped_by_kind, 2: _distributed, 3: _timeline_tiles, 4: _compile_tables, 5: _tensorboard_text_images,
    6: _event_args, 7: _typed_args, 8: _python_args, 9: _lane_level_index,
}  # fmt: skip
"""``STEPS[n]`` migrates version n to n + 1. Version 1 is the first released schema: nothing below it exists."""


def migrate(conn: Connection, version: int) -> None:
    """Apply every step from ``version`` up to the current schema, then create tables that are new."""
    from torchscope.storage.schema import SCHEMA_VERSION
    from torchscope.storage.tables import metadata

    if version < 1:
        raise StoreError("this store has no usable schema version; it was not written by a released torchscope")
    for current in range(version, SCHEMA_VERSION):
        STEPS[current](conn)
    metadata.create_all(conn)
