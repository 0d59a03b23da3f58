"""Captured steps (:class:`~torchscope.storage.graph.records.GraphStep`): the graph structure when new, statistics,
whole tensors, anomalies. Compression of whole tensors happens here, on the writer thread.
"""

from __future__ import annotations

import io
import json
import math
import time
import zlib
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from torchscope.storage.bulk import Interner, insert_rows
from torchscope.user_code import warn_once
from torchscope.storage.graph.records import BINS, N_STATS, SAMPLE, GraphStep
from torchscope.storage.graph.schema import (
    STAT_COLUMNS,
    graph_anomalies,
    graph_edges,
    graph_nodes,
    graph_steps,
    graph_versions,
    tensor_data,
    tensor_stats,
)

NODE_COLUMNS = ("version_id", "id", "kind", "name", "op_id", "module_id", "parent", "call", "file_id", "line",
                "order", "depth", "target", "in_shapes", "out_shapes", "out_dtypes")  # fmt: skip
EDGE_COLUMNS = ("version_id", "src", "src_output", "dst", "dst_arg", "kind", "shape", "dtype_id")
STATS_COLUMNS = ("run_id", "model_id", "step", "version_id", "node", "output", "role", "seq", "shape", "dtype_id",
                 "device_id", *STAT_COLUMNS, "hist", "sample")  # fmt: skip
_COUNTS = {"numel", "nan", "posinf", "neginf", "zeros", "hist_n"}


def _float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _version_id(conn: Connection, run_id: int, key: str) -> int | None:
    query = select(graph_versions.c.id).where(graph_versions.c.run_id == run_id, graph_versions.c.hash == key)
    row = conn.execute(query).first()
    return None if row is None else int(row[0])


def _insert_version(conn: Connection, interner: Interner, record: GraphStep) -> int:
    assert record.graph is not None
    nodes, edges = record.graph.nodes, record.graph.edges
    strings = {""}
    for node in nodes:
        strings.update(s for s in (node.op, node.module, node.file) if s is not None)
    strings.update(e.dtype for e in edges if e.dtype is not None)
    ids = interner.ids(conn, strings)
    n_ops = sum(1 for n in nodes if n.kind == "op")
    result = conn.execute(
        graph_versions.insert().values(
            run_id=record.run_id, hash=record.hash, n_nodes=len(nodes), n_ops=n_ops, n_edges=len(edges),
            first_step=record.step, created_at=time.time_ns(),
        )
    )  # fmt: skip
    version = int(result.inserted_primary_key[0])
    get = ids.get
    node_rows = [
        (version, n.id, n.kind, n.name, get(n.op) if n.op is not None else None,
         get(n.module) if n.module is not None else None, n.parent, n.call,
         get(n.file) if n.file is not None else None, n.line, n.order, n.depth, n.target, n.in_shapes,
         n.out_shapes, n.out_dtypes)
        for n in nodes
    ]  # fmt: skip
    insert_rows(conn, graph_nodes, NODE_COLUMNS, node_rows)
    edge_rows = [
        (version, e.src, e.src_output, e.dst, e.dst_arg, e.kind, e.shape, get(e.dtype) if e.dtype else None)
        for e in edges
    ]
    insert_rows(conn, graph_edges, EDGE_COLUMNS, edge_rows)
    return version


def _stats_rows(
    conn: Connection, interner: Interner, record: GraphStep, version: int, model: int
) -> list[tuple[Any, ...]]:
    assert record.stats is not None
    meta, values = record.stats.meta, record.stats.values
    hist = np.nan_to_num(values[:, N_STATS : N_STATS + BINS]).astype("<i8")
    sample = values[:, N_STATS + BINS : N_STATS + BINS + SAMPLE].astype("<f8")
    head = values[:, :N_STATS]
    ids = interner.ids(conn, {m.dtype for m in meta if m.dtype} | {m.device for m in meta if m.device})
    rows = []
    for i, m in enumerate(meta):
        stats = dict(zip(STAT_COLUMNS, head[i].tolist(), strict=True))
        scalars = [int(v) if c in _COUNTS else _float(v) for c, v in stats.items()]
        n_sample = int(min(SAMPLE, stats["numel"]))
        rows.append(
            (record.run_id, model, record.step, version, m.node, m.output, m.role, i, m.shape, ids.get(m.dtype),
             ids.get(m.device), *scalars, hist[i].tobytes(), sample[i, :n_sample].tobytes())
        )  # fmt: skip
    return rows


def _compress(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return zlib.compress(buffer.getvalue(), 3)


def write_graph(conn: Connection, interner: Interner, records: list[GraphStep]) -> None:
    """Store captured steps: a new graph version when its structure is new, then the step and its tensors."""
    for record in records:
        run_id, step = record.run_id, record.step
        model = interner.ids(conn, [record.model])[record.model]
        version = _version_id(conn, run_id, record.hash)
        if version is None:
            if record.graph is None:  # its version was in a batch that could not be written
                warn_once(f"graph-lost:{record.model}", f"torchscope: graph of step {step} was lost; step not stored")
                continue
            version = _insert_version(conn, interner, record)
        s = graph_steps.c
        taken = select(s.step).where(s.run_id == run_id, s.model_id == model, s.step == step)
        if conn.execute(taken).first() is not None:  # two watches under one name: the first capture stays
            continue
        stats = record.stats
        n_tensors = 0 if stats is None else len(stats.meta)
        conn.execute(
            graph_steps.insert().values(
                run_id=run_id, model_id=model, step=step, version_id=version, wall_time=record.wall_time,
                n_tensors=n_tensors,
            )
        )
        if stats is not None:
            insert_rows(conn, tensor_stats, STATS_COLUMNS, _stats_rows(conn, interner, record, version, model))
        data_rows = [
            (run_id, model, step, version, t.node, t.output, t.role, "zlib-npy", _compress(t.array))
            for t in record.tensors
        ]
        insert_rows(
            conn,
            tensor_data,
            ("run_id", "model_id", "step", "version_id", "node", "output", "role", "codec", "data"),
            data_rows,
        )
        anomaly_rows = [
            (run_id, model, step, version, a.phase, a.node, a.tensor, a.nan, a.posinf, a.neginf,
             json.dumps(a.inputs), record.wall_time)
            for a in record.anomalies
        ]  # fmt: skip
        insert_rows(
            conn,
            graph_anomalies,
            ("run_id", "model_id", "step", "version_id", "phase", "node", "tensor", "nan", "posinf", "neginf",
             "inputs", "wall_time"),
            anomaly_rows,
        )  # fmt: skip
