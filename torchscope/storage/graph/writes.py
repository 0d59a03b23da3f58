"""``graph`` records: one captured step (graph structure when new, statistics, whole tensors, anomalies).

Payload (a dict, built by ``torchscope.capture.watch``): ``run_id, model`` (the watch's name) ``, step, wall_time,
hash``; ``graph``: None when
this run already stored a version with that hash, else ``(nodes, edges)`` as tuples in the order of
``NODE_FIELDS``/``EDGE_FIELDS``; ``stats``: None or ``(meta, values)`` with
``meta[i] = (node, output, role, shape, dtype, device)`` and ``values`` a float64 array whose columns are
``STAT_COLUMNS``, then 32 histogram counts, then 16 sampled values;
``tensors``: ``[(node, output, role, ndarray)]``; ``anomalies``: dicts (see ``torchscope.capture.anomaly``).
Compression of whole tensors happens here, on the writer thread.
"""

from __future__ import annotations

import io
import json
import math
import time
import warnings
import zlib
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from torchscope.storage.bulk import Interner, insert_rows
from torchscope.storage.handlers import handler
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

BINS = 32
SAMPLE = 16
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


def _insert_version(conn: Connection, interner: Interner, payload: dict[str, Any]) -> int:
    nodes, edges = payload["graph"]
    strings = {""}
    for node in nodes:
        strings.update(s for s in (node[3], node[4], node[7]) if s is not None)
    strings.update(e[6] for e in edges if e[6] is not None)
    ids = interner.ids(conn, strings)
    n_ops = sum(1 for n in nodes if n[1] == "op")
    result = conn.execute(
        graph_versions.insert().values(
            run_id=payload["run_id"], hash=payload["hash"], n_nodes=len(nodes), n_ops=n_ops, n_edges=len(edges),
            first_step=payload["step"], created_at=time.time_ns(),
        )
    )  # fmt: skip
    version = int(result.inserted_primary_key[0])
    get = ids.get
    node_rows = [
        (version, n[0], n[1], n[2], get(n[3]) if n[3] is not None else None, get(n[4]) if n[4] is not None else None,
         n[5], n[6], get(n[7]) if n[7] is not None else None, n[8], n[9], n[10], n[11], n[12], n[13], n[14])
        for n in nodes
    ]  # fmt: skip
    insert_rows(conn, graph_nodes, NODE_COLUMNS, node_rows)
    edge_rows = [(version, e[0], e[1], e[2], e[3], e[4], e[5], get(e[6]) if e[6] else None) for e in edges]
    insert_rows(conn, graph_edges, EDGE_COLUMNS, edge_rows)
    return version


def _stats_rows(
    conn: Connection, interner: Interner, payload: dict[str, Any], version: int, model: int
) -> list[tuple[Any, ...]]:
    meta, values = payload["stats"]
    run_id, step = payload["run_id"], payload["step"]
    rows = []
    hist = np.nan_to_num(values[:, 13 : 13 + BINS]).astype("<i8")
    sample = values[:, 13 + BINS : 13 + BINS + SAMPLE].astype("<f8")
    head = values[:, :13]
    for i, (node, output, role, shape, dtype, device) in enumerate(meta):
        scalars = [
            int(v) if c in _COUNTS else _float(v) for c, v in zip(STAT_COLUMNS, head[i].tolist(), strict=True)
        ]
        n_sample = int(min(SAMPLE, scalars[0]))
        rows.append(
            (run_id, model, step, version, node, output, role, i, shape, dtype, device, *scalars, hist[i].tobytes(),
             sample[i, :n_sample].tobytes())
        )  # fmt: skip
    strings = {r[9] for r in rows if r[9]} | {r[10] for r in rows if r[10]}
    ids = interner.ids(conn, strings)
    return [r[:9] + (ids.get(r[9]), ids.get(r[10])) + r[11:] for r in rows]


def _compress(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return zlib.compress(buffer.getvalue(), 3)


@handler("graph")
def write_graph(conn: Connection, interner: Interner, payloads: list[Any]) -> None:
    """Store captured steps: a new graph version when its structure is new, then the step and its tensors."""
    for payload in payloads:
        run_id, step = payload["run_id"], payload["step"]
        model = interner.ids(conn, [payload["model"]])[payload["model"]]
        version = _version_id(conn, run_id, payload["hash"])
        if version is None:
            if payload["graph"] is None:  # its version was in a batch that could not be written
                warnings.warn(f"torchscope: graph of step {step} was lost; step not stored", RuntimeWarning, 2)
                continue
            version = _insert_version(conn, interner, payload)
        s = graph_steps.c
        taken = select(s.step).where(s.run_id == run_id, s.model_id == model, s.step == step)
        if conn.execute(taken).first() is not None:  # two watches under one name: the first capture stays
            continue
        stats = payload["stats"]
        n_tensors = 0 if stats is None else len(stats[0])
        conn.execute(
            graph_steps.insert().values(
                run_id=run_id, model_id=model, step=step, version_id=version, wall_time=payload["wall_time"],
                n_tensors=n_tensors,
            )
        )
        if stats is not None:
            insert_rows(conn, tensor_stats, STATS_COLUMNS, _stats_rows(conn, interner, payload, version, model))
        data_rows = [
            (run_id, model, step, version, node, output, role, "zlib-npy", _compress(array))
            for node, output, role, array in payload["tensors"]
        ]
        insert_rows(
            conn,
            tensor_data,
            ("run_id", "model_id", "step", "version_id", "node", "output", "role", "codec", "data"),
            data_rows,
        )
        anomaly_rows = [
            (run_id, model, step, version, a["phase"], a["node"], a["tensor"], a["nan"], a["posinf"], a["neginf"],
             json.dumps(a["inputs"]), payload["wall_time"])
            for a in payload["anomalies"]
        ]  # fmt: skip
        insert_rows(
            conn,
            graph_anomalies,
            ("run_id", "model_id", "step", "version_id", "phase", "node", "tensor", "nan", "posinf", "neginf",
             "inputs", "wall_time"),
            anomaly_rows,
        )  # fmt: skip
