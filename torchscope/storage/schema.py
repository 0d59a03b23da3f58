"""The SQLAlchemy Core schema of the store: one ``MetaData`` that every table of torchscope registers on.

Conventions (documented in ``docs/store.md``):

- ids are plain integers in a column ``id``;
- times are integer nanoseconds since the Unix epoch (``BigInteger``);
- repeated strings (tags, op, kernel and module names) are interned in ``names`` and referenced by id;
- on SQLite a NaN float is stored as NULL (SQLite cannot hold NaN) and reads back as NaN; ±Inf are stored as such.

This module holds the core every subject shares (``metadata``, ``meta``, ``names``, the schema version). Each
subject's tables live in ``storage/<subject>/schema.py`` and register on ``metadata``; import
:mod:`torchscope.storage.tables` to get all of them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

SCHEMA_VERSION = 10
"""Bumped whenever a table or column changes; :mod:`torchscope.storage.migrations` moves older stores forward.

1: the first released schema. 2: ``runs.dropped_scalars``, ``dropped_steps``, ``dropped_profiles``. 3: ``runs.rank``,
``world_size``, ``local_rank``, ``job_id`` (and the index on ``job_id``).
4: the timeline's ``timeline_lanes``, ``timeline_tiles``, ``timeline_names`` and ``profile_summaries``, built for
every stored profile. 5: the compile tables (``compile_events``, ``graph_breaks``, ``fx_graphs``,
``fx_nodes``, ``compiled_kernels``). 6: imported TensorBoard text, images and hparam metrics (``tb_texts``,
``tb_images``, ``tb_hparam_metrics``). 7: ``profile_event_args`` and ``profile_memory.args``: trace event args
no other column keeps. 8: the args most events carry get columns (``profile_events.ev_idx``, ``seq_nr``,
``fwd_tid``, ``cbid``; ``profile_event_details.queued``, ``context``, ``bandwidth``). 9: ``profile_events.py_id``,
``py_parent``, ``rf_id``; an op's input strides and concrete values are interned with its dims and types.
10: ``profile_events``' index ``(lane_id, level, start)`` becomes ``(lane_id, level, id)``;
``timeline_lanes.starts``."""

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

names = Table(
    "names",
    metadata,
    Column("id", Integer, primary_key=True),
    # 63-bit hash of the name: long kernel names exceed PostgreSQL's btree key limit, so uniqueness is on the hash.
    Column("hash", BigInteger, nullable=False, unique=True),
    Column("name", Text, nullable=False),
)
