"""Tables of runs and their scalars, registered on the shared ``metadata``.

- ``runs``: one row per run (live or imported), its status, heartbeat and counters;
- ``scalars``: every logged point (NaN stored as NULL on SQLite);
- ``scalar_latest``: each (run, tag)'s latest point and point count, kept by the writer;
- ``scalar_buckets``: per-bucket extremes of each series at several widths (the bucket pyramid).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

from torchscope.storage.schema import metadata

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("status", String(16), nullable=False),  # running | finished | failed | interrupted
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Column("heartbeat_at", BigInteger),
    Column("config", Text, nullable=False, default="{}"),  # JSON object
    Column("source", String(16), nullable=False, default="live"),  # live | import
    Column("hostname", Text),
    Column("pid", Integer),
    Column("pid_started_at", BigInteger),  # process start time, guards against pid reuse
    Column("last_step", BigInteger),
    Column("scalar_count", BigInteger, nullable=False, default=0),
    # What the training process could not store (docs/store.md): the total, then by kind (scalar values, captured
    # steps with their graph and tensors, profiler windows). Added in schema version 2.
    Column("dropped", BigInteger, nullable=False, default=0),
    Column("dropped_scalars", BigInteger, nullable=False, default=0, server_default="0"),
    Column("dropped_steps", BigInteger, nullable=False, default=0, server_default="0"),
    Column("dropped_profiles", BigInteger, nullable=False, default=0, server_default="0"),
    Column("error", Text),  # why a run failed, one line
    # The process's place in a distributed job (docs/store.md, "Distributed jobs"): added in schema version 3.
    Column("rank", Integer),
    Column("world_size", Integer),
    Column("local_rank", Integer),
    Column("job_id", Text),  # the runs of one job share it; None for a run outside a job
    Index("ix_runs_job_id", "job_id"),
)

scalars = Table(
    "scalars",
    metadata,
    Column("run_id", Integer, nullable=False),
    Column("tag_id", Integer, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("value", Float(53)),  # NULL on SQLite means NaN
    Column("wall_time", BigInteger, nullable=False),
    Index("ix_scalars_run_tag_step", "run_id", "tag_id", "step"),
)

scalar_latest = Table(
    "scalar_latest",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("tag_id", Integer, primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("value", Float(53)),
    Column("wall_time", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
)


scalar_buckets = Table(
    "scalar_buckets",
    metadata,
    # Per-bucket extremes of each series at several widths (see torchscope.storage.runs.buckets), kept by the writer,
    # so a chart of a long series reads a few hundred rows instead of every point.
    Column("run_id", Integer, primary_key=True),
    Column("tag_id", Integer, primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("n", BigInteger, nullable=False),
    *(
        Column(f"{role}_{field}", Float(53) if field == "value" else BigInteger)
        for role in ("first", "last", "min", "max", "nan", "pinf", "ninf")
        for field in ("step", "wall", "value")
    ),
)
