"""Reads of captured graphs, tensor statistics and anomalies; ``Store`` delegates to them (see docs/capture.md)."""

from __future__ import annotations

import io
import json
import zlib
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, and_, func, select
from sqlalchemy.orm import aliased

from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.bulk import name_hash
from torchscope.storage.schema import names
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

NODE_COLUMNS = ["id", "kind", "name", "op", "module", "parent", "call", "file", "line", "order", "depth", "target",
                "in_shapes", "out_shapes", "out_dtypes", "version_id"]  # fmt: skip
EDGE_COLUMNS = ["src", "src_output", "dst", "dst_arg", "kind", "shape", "dtype", "version_id"]
STATS_COLUMNS = ["step", "version_id", "node", "name", "kind", "op", "module", "target", "output", "role", "seq",
                 "shape", "dtype", "device", *STAT_COLUMNS, "hist", "sample", "model"]  # fmt: skip
ANOMALY_COLUMNS = ["step", "version_id", "phase", "node", "name", "op", "module", "file", "line", "tensor", "nan",
                   "posinf", "neginf", "inputs", "wall_time", "model"]  # fmt: skip
_INT_NULLABLE = ["parent", "call", "line", "order", "depth", "target"]


def _name(alias: str):  # type: ignore[no-untyped-def]
    return aliased(names, name=alias)


def _model_filter(column: Any, model: str | None) -> list[Any]:
    """A WHERE clause keeping one watched model (by its name), or none."""
    if model is None:
        return []
    return [column == select(names.c.id).where(names.c.hash == name_hash(model)).scalar_subquery()]


def _json(text: str | None) -> Any:
    return json.loads(text) if isinstance(text, str) else None


class GraphReads:
    """``graph``, ``graph_steps``, ``graph_versions``, ``tensor_stats``, ``tensor_value``, ``anomalies``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def graph_steps(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.graph_steps`, which documents the columns."""
        s = graph_steps.c
        query = (
            select(s.step, s.version_id, s.wall_time, s.n_tensors, names.c.name)
            .join(names, names.c.id == s.model_id)
            .where(s.run_id == int(run_id), *_model_filter(s.model_id, model))
            .order_by(s.step, s.wall_time)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame(rows, columns=["step", "version_id", "wall_time", "n_tensors", "model"])
        return frame.astype({c: "int64" for c in ("step", "version_id", "wall_time", "n_tensors")})

    def graph_versions(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.graph_versions`, which documents the columns."""
        steps = (
            select(graph_steps.c.version_id, func.count().label("n_steps"))
            .where(graph_steps.c.run_id == int(run_id), *_model_filter(graph_steps.c.model_id, model))
            .group_by(graph_steps.c.version_id)
            .subquery()
        )
        g = graph_versions.c
        query = (
            select(g.id, g.hash, g.n_nodes, g.n_ops, g.n_edges, g.first_step, func.coalesce(steps.c.n_steps, 0))
            .outerjoin(steps, steps.c.version_id == g.id)
            .where(g.run_id == int(run_id))
            .order_by(g.id)
        )
        if model is not None:
            query = query.where(steps.c.n_steps.is_not(None))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        columns = ["id", "hash", "n_nodes", "n_ops", "n_edges", "first_step", "n_steps"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({c: "int64" for c in columns if c != "hash"})

    def _resolve_version(self, run_id: int, step: int | None, version: int | None, model: str | None) -> int:
        with self._engine.connect() as conn:
            if version is not None:
                query = select(graph_versions.c.id).where(
                    graph_versions.c.id == int(version), graph_versions.c.run_id == int(run_id)
                )
                if conn.execute(query).first() is None:
                    raise NotFoundError(f"run {run_id} has no graph version {version}")
                return int(version)
            s = graph_steps.c
            query = select(s.step, s.version_id).where(s.run_id == int(run_id), *_model_filter(s.model_id, model))
            whose = f" of model {model!r}" if model is not None else ""
            if step is None:
                row = conn.execute(query.order_by(s.step.desc(), s.wall_time).limit(1)).first()
                if row is None:
                    raise NotFoundError(
                        f"run {run_id} has no captured graph{whose}: call run.watch(model) before training"
                    )
            else:
                row = conn.execute(query.where(s.step == int(step)).order_by(s.wall_time).limit(1)).first()
                if row is None:
                    captured = self.graph_steps(run_id, model)["step"].drop_duplicates().tolist()
                    shown = ", ".join(map(str, captured[:10])) + ("..." if len(captured) > 10 else "")
                    raise NotFoundError(
                        f"step {step} of run {run_id}{whose} was not captured (captured: {shown or 'none'})"
                    )
            return int(row[1])

    def graph(
        self, run_id: int, step: int | None = None, *, version: int | None = None, model: str | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Backs :meth:`Store.graph`, which documents the columns."""
        version_id = self._resolve_version(run_id, step, version, model)
        op, module, file, dtype = _name("op"), _name("module"), _name("file"), _name("dtype")
        n = graph_nodes.c
        node_query = (
            select(
                n.id, n.kind, n.name, op.c.name, module.c.name, n.parent, n.call, file.c.name, n.line, n.order,
                n.depth, n.target, n.in_shapes, n.out_shapes, n.out_dtypes, n.version_id,
            )
            .outerjoin(op, op.c.id == n.op_id)
            .outerjoin(module, module.c.id == n.module_id)
            .outerjoin(file, file.c.id == n.file_id)
            .where(n.version_id == version_id)
            .order_by(n.id)
        )  # fmt: skip
        e = graph_edges.c
        edge_query = (
            select(e.src, e.src_output, e.dst, e.dst_arg, e.kind, e.shape, dtype.c.name, e.version_id)
            .outerjoin(dtype, dtype.c.id == e.dtype_id)
            .where(e.version_id == version_id)
        )
        with self._engine.connect() as conn:
            nodes = pd.DataFrame(conn.execute(node_query).all(), columns=NODE_COLUMNS)
            edges = pd.DataFrame(conn.execute(edge_query).all(), columns=EDGE_COLUMNS)
        for column in ("in_shapes", "out_shapes", "out_dtypes"):
            nodes[column] = nodes[column].map(_json)
        nodes = nodes.astype({c: "Int64" for c in _INT_NULLABLE} | {"id": "int64", "version_id": "int64"})
        edges["shape"] = edges["shape"].map(_json)
        return nodes, edges

    def tensor_stats(
        self,
        run_id: int,
        node: int | str | None = None,
        *,
        step: int | None = None,
        role: str | None = None,
        model: str | None = None,
    ) -> pd.DataFrame:
        """Backs :meth:`Store.tensor_stats`, which documents the columns."""
        if role not in (None, "value", "grad"):
            raise BadRequestError(f"role must be 'value' or 'grad', got {role!r}")
        dtype, device, op, module, watched = _name("dtype"), _name("device"), _name("op"), _name("module"), _name("m")
        s, n = tensor_stats.c, graph_nodes.c
        query = (
            select(
                s.step, s.version_id, s.node, n.name, n.kind, op.c.name, module.c.name, n.target, s.output, s.role,
                s.seq, s.shape, dtype.c.name, device.c.name, *[s[c] for c in STAT_COLUMNS], s.hist, s.sample,
                watched.c.name,
            )
            .join(graph_nodes, and_(n.version_id == s.version_id, n.id == s.node))
            .join(watched, watched.c.id == s.model_id)
            .outerjoin(op, op.c.id == n.op_id)
            .outerjoin(module, module.c.id == n.module_id)
            .outerjoin(dtype, dtype.c.id == s.dtype_id)
            .outerjoin(device, device.c.id == s.device_id)
            .where(s.run_id == int(run_id), *_model_filter(s.model_id, model))
            .order_by(s.step, s.model_id, s.seq)
        )  # fmt: skip
        if isinstance(node, str):
            query = query.where(n.name == node)
        elif node is not None:
            query = query.where(s.node == int(node))
        if step is not None:
            query = query.where(s.step == int(step))
        if role is not None:
            query = query.where(s.role == role)
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=STATS_COLUMNS)
        frame["shape"] = frame["shape"].map(_json)
        frame["hist"] = frame["hist"].map(lambda b: np.frombuffer(b, dtype="<i8").copy())
        frame["sample"] = frame["sample"].map(lambda b: np.frombuffer(b, dtype="<f8").copy())
        counts = ["step", "version_id", "node", "output", "seq", "numel", "nan", "posinf", "neginf", "zeros", "hist_n"]
        floats = ["min", "max", "mean", "std", "norm", "hist_lo", "hist_hi"]
        return frame.astype({c: "int64" for c in counts} | {c: "float64" for c in floats} | {"target": "Int64"})

    def tensor_value(
        self, run_id: int, step: int, node: int | str, output: int = 0, role: str = "value", model: str | None = None
    ) -> np.ndarray:
        """Backs :meth:`Store.tensor_value`, which documents the columns."""
        d = tensor_data.c
        query = select(d.codec, d.data).where(
            d.run_id == int(run_id), d.step == int(step), d.output == int(output), d.role == role,
            *_model_filter(d.model_id, model),
        )
        if isinstance(node, str):
            ids = select(graph_nodes.c.id).where(
                graph_nodes.c.version_id == d.version_id, graph_nodes.c.name == node
            ).scalar_subquery()
            query = query.where(d.node == ids)
        else:
            query = query.where(d.node == int(node))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(
                f"no stored value of node {node!r} (output {output}, {role}) at step {step} of run {run_id}: "
                'whole tensors are kept only with tensors="full" and up to the size cap'
            )
        return np.load(io.BytesIO(zlib.decompress(row[1])), allow_pickle=False)

    def anomalies(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.anomalies`, which documents the columns."""
        op, module, file, watched = _name("op"), _name("module"), _name("file"), _name("m")
        a, n = graph_anomalies.c, graph_nodes.c
        query = (
            select(
                a.step, a.version_id, a.phase, a.node, n.name, op.c.name, module.c.name, file.c.name, n.line,
                a.tensor, a.nan, a.posinf, a.neginf, a.inputs, a.wall_time, watched.c.name,
            )
            .join(graph_nodes, and_(n.version_id == a.version_id, n.id == a.node))
            .join(watched, watched.c.id == a.model_id)
            .outerjoin(op, op.c.id == n.op_id)
            .outerjoin(module, module.c.id == n.module_id)
            .outerjoin(file, file.c.id == n.file_id)
            .where(a.run_id == int(run_id), *_model_filter(a.model_id, model))
            .order_by(a.step, a.id)
        )  # fmt: skip
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=ANOMALY_COLUMNS)
        frame["inputs"] = frame["inputs"].map(_json)
        ints = ["step", "version_id", "node", "nan", "posinf", "neginf", "wall_time"]
        return frame.astype({c: "int64" for c in ints} | {"line": "Int64"})
