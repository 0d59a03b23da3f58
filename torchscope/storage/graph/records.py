"""Records of the graph subject: one captured step of a watched model, as ``torchscope.capture.watch`` queues it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from torchscope.storage.graph.schema import STAT_COLUMNS

BINS = 32
"""Histogram counts per tensor, after the :data:`STAT_COLUMNS` in a row of :attr:`StepStats.values`."""
SAMPLE = 16
"""Sampled values per tensor, after the histogram in a row of :attr:`StepStats.values`."""


class GraphNode(NamedTuple):
    """A node of a captured graph (the ``graph_nodes`` table and ``store.graph`` columns); ``id`` is per graph."""

    id: int
    kind: str
    name: str
    op: str | None
    module: str | None
    parent: int | None
    call: int | None
    file: str | None
    line: int | None
    order: int | None
    depth: int | None
    target: int | None
    in_shapes: str | None  # JSON
    out_shapes: str | None  # JSON
    out_dtypes: str | None  # JSON


class GraphEdge(NamedTuple):
    """An edge of a captured graph: output ``src_output`` of ``src`` into argument ``dst_arg`` of ``dst``."""

    src: int
    src_output: int
    dst: int
    dst_arg: str
    kind: str
    shape: str | None  # JSON
    dtype: str | None


class GraphStructure(NamedTuple):
    """The nodes and edges of one graph version."""

    nodes: Sequence[GraphNode]
    edges: Sequence[GraphEdge]


class TensorMeta(NamedTuple):
    """What one row of :attr:`StepStats.values` describes."""

    node: int
    output: int
    role: str  # value | grad
    shape: str | None  # JSON
    dtype: str | None
    device: str | None


class StepStats(NamedTuple):
    """Statistics of a step's tensors: ``values[i]`` (float64) holds, for ``meta[i]``, the :data:`STAT_COLUMNS`,
    then :data:`BINS` histogram counts, then :data:`SAMPLE` sampled values."""

    meta: Sequence[TensorMeta]
    values: np.ndarray


class TensorValue(NamedTuple):
    """A whole tensor kept by ``tensors="full"`` capture; compressed on the writer thread."""

    node: int
    output: int
    role: str
    array: np.ndarray


class Anomaly(NamedTuple):
    """The first NaN/Inf origin of a step's phase (``forward`` or ``backward``)."""

    phase: str
    node: int
    tensor: str
    nan: int
    posinf: int
    neginf: int
    inputs: list[Any]  # summaries of the op's inputs, stored as JSON


@dataclass(frozen=True)
class GraphStep:
    """One captured step of a watched model.

    ``graph`` is None when the run already stored a version with this ``hash`` (the structure is sent once).
    """

    run_id: int
    model: str  # the watch's name
    step: int
    wall_time: int
    hash: str
    graph: GraphStructure | None
    stats: StepStats | None
    tensors: Sequence[TensorValue]
    anomalies: Sequence[Anomaly]


N_STATS = len(STAT_COLUMNS)
