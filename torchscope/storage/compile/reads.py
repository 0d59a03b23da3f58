"""Reads of what ``torch.compile`` did during a run; ``Store`` delegates to them (see docs/store.md)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import aliased

from torchscope.errors import NotFoundError
from torchscope.storage.bulk import name_hash
from torchscope.storage.compile.profile_times import compiled_module_table
from torchscope.storage.compile.schema import compile_events, compiled_kernels, fx_graphs, fx_nodes, graph_breaks
from torchscope.storage.profile.schema import profiles
from torchscope.storage.schema import names

BREAK_COLUMNS = ["step", "compile_id", "reason", "detail", "filename", "lineno", "module", "module_class",
                 "wall_time", "model"]  # fmt: skip
EVENT_COLUMNS = ["step", "kind", "compile_id", "frame", "filename", "lineno", "module", "reason", "duration_ns",
                 "graph_ops", "wall_time", "model"]  # fmt: skip
FX_COLUMNS = ["graph_id", "compile_id", "step", "graph_module", "id", "name", "op", "target", "module", "filename",
              "lineno", "inputs", "model"]  # fmt: skip


def _name(alias: str) -> Any:
    return aliased(names, name=alias)


def _model_filter(column: Any, model: str | None) -> list[Any]:
    if model is None:
        return []
    return [column == select(names.c.id).where(names.c.hash == name_hash(model)).scalar_subquery()]


KERNEL_COLUMNS = ["compile_id", "seq", "kernel", "kind", "profiler_name", "module", "source_nodes", "aten", "model"]


class CompileReads:
    """``graph_breaks``, ``compile_events``, ``fx_graph``, ``compiled_kernels``, ``compiled_module_table``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def graph_breaks(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.graph_breaks`, which documents the columns."""
        file, module, cls, watched = _name("file"), _name("module"), _name("cls"), _name("m")
        b = graph_breaks.c
        query = (
            select(b.step, b.compile_id, b.reason, b.detail, file.c.name, b.line, module.c.name, cls.c.name,
                   b.wall_time, watched.c.name)
            .join(watched, watched.c.id == b.model_id)
            .outerjoin(file, file.c.id == b.file_id)
            .outerjoin(module, module.c.id == b.module_id)
            .outerjoin(cls, cls.c.id == b.module_class_id)
            .where(b.run_id == int(run_id), *_model_filter(b.model_id, model))
            .order_by(b.step, b.id)
        )  # fmt: skip
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=BREAK_COLUMNS)
        return frame.astype({"step": "int64", "wall_time": "int64", "lineno": "Int64"})

    def compile_events(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.compile_events`, which documents the columns."""
        file, module, watched = _name("file"), _name("module"), _name("m")
        e = compile_events.c
        query = (
            select(e.step, e.kind, e.compile_id, e.frame, file.c.name, e.line, module.c.name, e.reason,
                   e.duration_ns, e.graph_ops, e.wall_time, watched.c.name)
            .join(watched, watched.c.id == e.model_id)
            .outerjoin(file, file.c.id == e.file_id)
            .outerjoin(module, module.c.id == e.module_id)
            .where(e.run_id == int(run_id), *_model_filter(e.model_id, model))
            .order_by(e.step, e.id)
        )  # fmt: skip
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=EVENT_COLUMNS)
        ints = ["step", "duration_ns", "graph_ops", "wall_time"]
        return frame.astype({c: "int64" for c in ints} | {"lineno": "Int64"})

    def fx_graph(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.fx_graph`, which documents the columns."""
        target, module, gmodule, file, watched = _name("t"), _name("module"), _name("g"), _name("file"), _name("m")
        g, n = fx_graphs.c, fx_nodes.c
        query = (
            select(g.id, g.compile_id, g.step, gmodule.c.name, n.id, n.name, n.op, target.c.name, module.c.name,
                   file.c.name, n.line, n.inputs, watched.c.name)
            .join(fx_nodes, n.graph_id == g.id)
            .join(watched, watched.c.id == g.model_id)
            .outerjoin(gmodule, gmodule.c.id == g.module_id)
            .outerjoin(target, target.c.id == n.target_id)
            .outerjoin(module, module.c.id == n.module_id)
            .outerjoin(file, file.c.id == n.file_id)
            .where(g.run_id == int(run_id), *_model_filter(g.model_id, model))
            .order_by(g.id, n.id)
        )  # fmt: skip
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=FX_COLUMNS)
        frame["inputs"] = frame["inputs"].map(json.loads)
        return frame.astype({"graph_id": "int64", "step": "int64", "id": "int64", "lineno": "Int64"})

    def compiled_kernels(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.compiled_kernels`, which documents the columns."""
        module, watched = _name("module"), _name("m")
        k = compiled_kernels.c
        query = (
            select(k.compile_id, k.seq, k.kernel, k.kind, k.profiler_name, module.c.name, k.source_nodes, k.aten,
                   watched.c.name)
            .join(watched, watched.c.id == k.model_id)
            .outerjoin(module, module.c.id == k.module_id)
            .where(k.run_id == int(run_id), *_model_filter(k.model_id, model))
            .order_by(k.id)
        )  # fmt: skip
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=KERNEL_COLUMNS)
        for column in ("source_nodes", "aten"):
            frame[column] = frame[column].map(json.loads)
        return frame.astype({"seq": "int64"})

    def compiled_module_table(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.compiled_module_table`, which documents the columns."""
        with self._engine.connect() as conn:
            row = conn.execute(select(profiles.c.run_id).where(profiles.c.id == int(profile_id))).first()
            if row is None:
                raise NotFoundError(f"no profile {profile_id}")
            return compiled_module_table(conn, int(profile_id), int(row[0]))
