"""Compile records (:mod:`torchscope.storage.compile.records`) into their tables, on the writer thread."""

from __future__ import annotations

from sqlalchemy import Connection

from torchscope.storage.bulk import Interner, insert_rows
from torchscope.storage.compile.records import CompiledKernel, CompileEvent, FxGraph, GraphBreak
from torchscope.storage.compile.schema import compile_events, compiled_kernels, fx_graphs, fx_nodes, graph_breaks

EVENT_COLUMNS = ("run_id", "model_id", "step", "kind", "compile_id", "frame", "file_id", "line", "module_id", "reason",
                 "duration_ns", "graph_ops", "wall_time")  # fmt: skip
BREAK_COLUMNS = ("run_id", "model_id", "step", "compile_id", "reason", "detail", "file_id", "line", "module_id",
                 "module_class_id", "wall_time")  # fmt: skip
NODE_COLUMNS = ("graph_id", "id", "name", "op", "target_id", "module_id", "file_id", "line", "inputs")
KERNEL_COLUMNS = ("run_id", "model_id", "compile_id", "seq", "kernel", "kind", "profiler_name", "module_id",
                  "source_nodes", "aten")  # fmt: skip


def _ids(conn: Connection, interner: Interner, strings: set[str | None]) -> dict[str | None, int | None]:
    ids: dict[str | None, int | None] = dict(interner.ids(conn, {s for s in strings if s is not None}))
    ids[None] = None
    return ids


def write_compile_events(conn: Connection, interner: Interner, records: list[CompileEvent]) -> None:
    """Store compiled frames."""
    ids = _ids(conn, interner, {s for r in records for s in (r.model, r.file, r.module)})
    rows = [
        (r.run_id, ids[r.model], r.step, r.kind, r.compile_id, r.frame, ids[r.file], r.line, ids[r.module], r.reason,
         r.duration_ns, r.graph_ops, r.wall_time)
        for r in records
    ]  # fmt: skip
    insert_rows(conn, compile_events, EVENT_COLUMNS, rows)


def write_graph_breaks(conn: Connection, interner: Interner, records: list[GraphBreak]) -> None:
    """Store graph breaks."""
    ids = _ids(conn, interner, {s for r in records for s in (r.model, r.file, r.module, r.module_class)})
    rows = [
        (r.run_id, ids[r.model], r.step, r.compile_id, r.reason, r.detail, ids[r.file], r.line, ids[r.module],
         ids[r.module_class], r.wall_time)
        for r in records
    ]  # fmt: skip
    insert_rows(conn, graph_breaks, BREAK_COLUMNS, rows)


def write_fx_graphs(conn: Connection, interner: Interner, records: list[FxGraph]) -> None:
    """Store FX graphs, one row per graph and one per node."""
    for record in records:
        strings = {record.model, record.module}
        for node in record.nodes:
            strings.update((node.target, node.module, node.file))
        ids = _ids(conn, interner, strings)
        result = conn.execute(
            fx_graphs.insert().values(
                run_id=record.run_id, model_id=ids[record.model], step=record.step, compile_id=record.compile_id,
                module_id=ids[record.module], n_nodes=len(record.nodes), wall_time=record.wall_time,
            )
        )  # fmt: skip
        graph = int(result.inserted_primary_key[0])
        rows = [
            (graph, n.id, n.name, n.op, ids[n.target], ids[n.module], ids[n.file], n.line, n.inputs)
            for n in record.nodes
        ]
        insert_rows(conn, fx_nodes, NODE_COLUMNS, rows)


def write_compiled_kernels(conn: Connection, interner: Interner, records: list[CompiledKernel]) -> None:
    """Store Inductor's kernels of compiled frames."""
    ids = _ids(conn, interner, {s for r in records for s in (r.model, r.module)})
    rows = [
        (r.run_id, ids[r.model], r.compile_id, r.seq, r.kernel, r.kind, r.profiler_name, ids[r.module],
         r.source_nodes, r.aten)
        for r in records
    ]  # fmt: skip
    insert_rows(conn, compiled_kernels, KERNEL_COLUMNS, rows)
