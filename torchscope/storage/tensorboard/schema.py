"""Tables of what ``torchscope import`` reads from TensorBoard logs besides scalars: graphs and histograms.

Imported graphs are kept apart from the graphs torchscope captures itself (``storage/graph/schema.py``), as they come in
TensorBoard's forms: a TF op graph (``GraphDef``, from ``add_graph`` or ``trace_export``) or a Keras model config.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

from torchscope.storage.schema import metadata

tb_graphs = Table(
    "tb_graphs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False, index=True),
    Column("tag", Text, nullable=False),  # the event's tag ("" for a classic graph_def event)
    Column("kind", String(16), nullable=False),  # graph_def | op_graph | keras
    Column("step", BigInteger, nullable=False),
    Column("wall_time", BigInteger, nullable=False),
)

tb_graph_nodes = Table(
    "tb_graph_nodes",
    metadata,
    Column("id", Integer, primary_key=True),  # keeps the graph's node order
    Column("graph_id", Integer, nullable=False),
    Column("name", Text, nullable=False),  # full node name, name scopes separated by "/"
    Column("op", Text, nullable=False),  # TF op type, or the Keras layer class
    Column("scope", Text, nullable=False),  # the name-scope path (the name up to its last "/")
    Column("inputs", Text, nullable=False),  # JSON list of input node names (TF's "^ctrl" and ":1" suffixes cut)
    Column("device", Text),
    Column("attrs", Text, nullable=False, default="{}"),  # JSON: a few readable attributes (shape, dtype, config)
    Index("ix_tb_graph_nodes_graph", "graph_id"),
)

tb_histograms = Table(
    "tb_histograms",
    metadata,
    Column("run_id", Integer, nullable=False),
    Column("tag_id", Integer, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("wall_time", BigInteger, nullable=False),
    Column("min", Float(53)),
    Column("max", Float(53)),
    Column("num", Float(53)),
    Column("sum", Float(53)),
    Column("sum_squares", Float(53)),
    Column("buckets", Text, nullable=False),  # JSON [[left, right, count], ...]
    Index("ix_tb_histograms_run_tag_step", "run_id", "tag_id", "step"),
)
