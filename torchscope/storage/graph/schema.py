"""Tables of captured graphs and tensor values, registered on the shared ``metadata``.

- ``graph_versions``: one row per distinct graph structure of a run (deduplicated by ``hash``);
- ``graph_nodes`` / ``graph_edges``: the nodes and edges of a version (node ``id`` is local to its version);
- ``graph_steps``: which version each captured step of each watched model ran (``model_id``: the watch's name);
- ``tensor_stats``: one statistics row per tensor (op output, input, parameter, gradient) per captured step;
- ``tensor_data``: whole tensors of ``tensors="full"`` capture, zlib-compressed ``.npy`` bytes;
- ``graph_anomalies``: the first NaN/Inf origin of a step, forward and backward.

Strings that repeat (op names, module paths, files, dtypes, devices) are interned in ``names``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from torchscope.storage.schema import metadata

graph_versions = Table(
    "graph_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("hash", String(32), nullable=False),
    Column("n_nodes", Integer, nullable=False),
    Column("n_ops", Integer, nullable=False),
    Column("n_edges", Integer, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("run_id", "hash", name="uq_graph_versions_run_hash"),
)

graph_nodes = Table(
    "graph_nodes",
    metadata,
    Column("version_id", Integer, primary_key=True),
    Column("id", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),  # op | module | input | output | param | buffer | const | grad
    Column("name", Text, nullable=False),
    Column("op_id", Integer),  # names: torch.cat, Tensor.add, F.gelu; module class for module nodes
    Column("module_id", Integer),  # names: module path ('' is the root)
    Column("parent", Integer),  # id of the enclosing module-call node
    Column("call", Integer),  # module nodes: 0 for the first call of that module in the step, 1 for the next...
    Column("file_id", Integer),  # names: the user's source file
    Column("line", Integer),
    Column("order", Integer),  # op nodes: position in execution order
    Column("depth", Integer),
    Column("target", Integer),  # grad nodes: the node whose gradient this is
    Column("in_shapes", Text),  # JSON list of shapes
    Column("out_shapes", Text),
    Column("out_dtypes", Text),
)

graph_edges = Table(
    "graph_edges",
    metadata,
    Column("version_id", Integer, nullable=False),
    Column("src", Integer, nullable=False),
    Column("src_output", Integer, nullable=False),
    Column("dst", Integer, nullable=False),
    Column("dst_arg", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # data | grad
    Column("shape", Text),
    Column("dtype_id", Integer),
    Index("ix_graph_edges_version", "version_id"),
)

graph_steps = Table(
    "graph_steps",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("model_id", Integer, primary_key=True),  # names: the watch's name (a run may watch several models)
    Column("step", BigInteger, primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("wall_time", BigInteger, nullable=False),
    Column("n_tensors", Integer, nullable=False),
)

STAT_COLUMNS = ("numel", "min", "max", "mean", "std", "norm", "nan", "posinf", "neginf", "zeros", "hist_lo", "hist_hi",
                "hist_n")  # fmt: skip

tensor_stats = Table(
    "tensor_stats",
    metadata,
    Column("run_id", Integer, nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("node", Integer, nullable=False),
    Column("output", Integer, nullable=False),
    Column("role", String(8), nullable=False),  # value | grad
    Column("seq", Integer, nullable=False),  # the order the statistics were taken in (backward: arrival order)
    Column("shape", Text),
    Column("dtype_id", Integer),
    Column("device_id", Integer),
    Column("numel", BigInteger, nullable=False),
    *[Column(c, Float(53)) for c in ("min", "max", "mean", "std", "norm")],
    *[Column(c, BigInteger, nullable=False) for c in ("nan", "posinf", "neginf", "zeros")],
    Column("hist_lo", Float(53)),
    Column("hist_hi", Float(53)),
    Column("hist_n", BigInteger, nullable=False),
    Column("hist", LargeBinary),  # 32 little-endian int64 counts
    Column("sample", LargeBinary),  # up to 16 little-endian float64 values
    Index("ix_tensor_stats_run_node", "run_id", "version_id", "node", "step"),
    Index("ix_tensor_stats_run_step", "run_id", "step"),
)

tensor_data = Table(
    "tensor_data",
    metadata,
    Column("run_id", Integer, nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("node", Integer, nullable=False),
    Column("output", Integer, nullable=False),
    Column("role", String(8), nullable=False),
    Column("codec", String(16), nullable=False),  # zlib-npy
    Column("data", LargeBinary, nullable=False),
    Index("ix_tensor_data_key", "run_id", "step", "node", "output", "role"),
)

graph_anomalies = Table(
    "graph_anomalies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("phase", String(8), nullable=False),  # forward | backward
    Column("node", Integer, nullable=False),
    Column("tensor", Text, nullable=False),
    Column("nan", BigInteger, nullable=False),
    Column("posinf", BigInteger, nullable=False),
    Column("neginf", BigInteger, nullable=False),
    Column("inputs", Text, nullable=False),  # JSON list of the statistics of the inputs
    Column("wall_time", BigInteger, nullable=False),
    Index("ix_graph_anomalies_run", "run_id", "step"),
)
