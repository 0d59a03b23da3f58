"""Tables of what ``torch.compile`` did during a run, registered on the shared ``metadata``.

- ``compile_events``: one row per frame Dynamo compiled (``kind`` compile | recompile, the failed guard, time);
- ``graph_breaks``: one row per graph break of a compiled frame (reason, the user's file and line, module);
- ``fx_graphs`` / ``fx_nodes``: the FX graphs Dynamo captured, their nodes with the module each was traced in;
- ``compiled_kernels``: the kernels and extern calls of Inductor's code for a frame's forward, with their module.

``model_id``, files, modules and FX targets are interned in ``names``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from torchscope.storage.schema import metadata

compile_events = Table(
    "compile_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("model_id", Integer, nullable=False),  # names: the watch's name
    Column("step", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # compile | recompile
    Column("compile_id", String(32), nullable=False),
    Column("frame", Text, nullable=False),
    Column("file_id", Integer),
    Column("line", Integer),
    Column("module_id", Integer),
    Column("reason", Text),
    Column("duration_ns", BigInteger, nullable=False),
    Column("graph_ops", Integer, nullable=False),
    Column("wall_time", BigInteger, nullable=False),
    Index("ix_compile_events_run", "run_id", "step"),
)

graph_breaks = Table(
    "graph_breaks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("compile_id", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("file_id", Integer),
    Column("line", Integer),
    Column("module_id", Integer),
    Column("module_class_id", Integer),
    Column("wall_time", BigInteger, nullable=False),
    Index("ix_graph_breaks_run", "run_id", "step"),
)

fx_graphs = Table(
    "fx_graphs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("compile_id", String(32), nullable=False),
    Column("module_id", Integer),
    Column("n_nodes", Integer, nullable=False),
    Column("wall_time", BigInteger, nullable=False),
    Index("ix_fx_graphs_run", "run_id"),
)

fx_nodes = Table(
    "fx_nodes",
    metadata,
    Column("graph_id", Integer, primary_key=True),
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("op", String(16), nullable=False),
    Column("target_id", Integer),
    Column("module_id", Integer),
    Column("file_id", Integer),
    Column("line", Integer),
    Column("inputs", Text, nullable=False),  # JSON list of node ids of the same graph
)

compiled_kernels = Table(
    "compiled_kernels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("compile_id", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kernel", Text, nullable=False),
    Column("kind", String(8), nullable=False),  # cpp | triton | extern
    Column("profiler_name", Text, nullable=False),
    Column("module_id", Integer),
    Column("source_nodes", Text, nullable=False),  # JSON list
    Column("aten", Text, nullable=False),  # JSON list
    Index("ix_compiled_kernels_run", "run_id", "compile_id"),
)
