"""Tables of what ``torchscope import`` reads from TensorBoard logs besides scalars: graphs, histograms, text, images
and hparam metrics (a run's hparams are its ``runs.config``).

Imported graphs are kept apart from the graphs torchscope captures itself (``storage/graph/schema.py``), as they come in
TensorBoard's forms: a TF op graph (``GraphDef``, from ``add_graph`` or ``trace_export``) or a Keras model config.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, LargeBinary, String, Table, Text

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

tb_texts = Table(
    "tb_texts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("tag_id", Integer, nullable=False),  # names
    Column("step", BigInteger, nullable=False),
    Column("wall_time", BigInteger, nullable=False),
    Column("text", Text, nullable=False),  # markdown (a table of strings is written as a markdown table)
    Index("ix_tb_texts_run_tag_step", "run_id", "tag_id", "step"),
)

tb_images = Table(
    "tb_images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("tag_id", Integer, nullable=False),  # names
    Column("step", BigInteger, nullable=False),
    Column("wall_time", BigInteger, nullable=False),
    Column("sample", Integer, nullable=False),  # the image's place among those of one value (tf.summary.image)
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("mime", String(16), nullable=False),  # image/png, image/jpeg ...
    Column("data", LargeBinary, nullable=False),  # the encoded image as it was logged
    Index("ix_tb_images_run_tag_step", "run_id", "tag_id", "step"),
)

tb_hparam_metrics = Table(
    "tb_hparam_metrics",
    metadata,
    Column("run_id", Integer, nullable=False),
    Column("tag_id", Integer, nullable=False),  # names: a metric tag the hparams experiment names
    Column("step", BigInteger, nullable=False),
    Column("wall_time", BigInteger, nullable=False),
    Column("value", Float(53)),  # its last value in the run
    Index("ix_tb_hparam_metrics_run", "run_id"),
)
