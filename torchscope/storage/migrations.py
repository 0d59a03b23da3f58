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


def _compile_tables(conn: Connection) -> None:
    """2 -> 3: the compile tables (``compile_events``, ``graph_breaks``, ``fx_graphs``, ``fx_nodes``,
    ``compiled_kernels``) are new: the
    ``create_all`` after the steps makes them; nothing that exists changes."""


STEPS: dict[int, Step] = {1: _dropped_by_kind, 2: _compile_tables}
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
