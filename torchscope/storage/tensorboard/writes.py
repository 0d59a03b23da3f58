"""Storing what ``torchscope import`` reads from TensorBoard logs besides scalars: graphs, histograms, text, images
and hparam metrics."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from torchscope.storage.bulk import Interner, insert_rows
from torchscope.storage.tensorboard.schema import (
    tb_graph_nodes, tb_graphs, tb_histograms, tb_hparam_metrics, tb_images, tb_texts,
)  # fmt: skip

NODE_COLUMNS = ("graph_id", "name", "op", "scope", "inputs", "device", "attrs")
HISTOGRAM_COLUMNS = ("run_id", "tag_id", "step", "wall_time", "min", "max", "num", "sum", "sum_squares", "buckets")


def insert_graph(
    conn: Connection, run_id: int, tag: str, kind: str, step: int, wall_time: int,
    nodes: list[tuple[str, str, list[str], str, dict[str, Any]]],
) -> int:  # fmt: skip
    """Insert one graph (``nodes``: name, op, inputs, device, attrs) of ``run_id``; returns its id."""
    result = conn.execute(tb_graphs.insert().values(run_id=run_id, tag=tag, kind=kind, step=step, wall_time=wall_time))
    graph_id = int(result.inserted_primary_key[0])
    rows = [
        (graph_id, name, op, name.rsplit("/", 1)[0] if "/" in name else "", json.dumps(inputs), device or None,
         json.dumps(attrs, default=str))
        for name, op, inputs, device, attrs in nodes
    ]  # fmt: skip
    insert_rows(conn, tb_graph_nodes, NODE_COLUMNS, rows)
    return graph_id


def insert_histograms(
    conn: Connection, interner: Interner, run_id: int, items: list[tuple[str, int, int, Any]]
) -> None:
    """Insert ``(tag, step, wall_time, (min, max, num, sum, sum_squares, buckets))`` histograms of ``run_id``."""
    if not items:
        return
    ids = interner.ids(conn, {tag for tag, *_ in items})
    rows = [
        (run_id, ids[tag], step, wall, lo, hi, num, total, squares, json.dumps(buckets))
        for tag, step, wall, (lo, hi, num, total, squares, buckets) in items
    ]
    insert_rows(conn, tb_histograms, HISTOGRAM_COLUMNS, rows)


def write_histogram_logs(conn: Connection, interner: Interner, logs: list[Any]) -> None:
    """Writer handler of :class:`~torchscope.storage.tensorboard.records.HistogramLog` records."""
    by_run: dict[int, list[tuple[str, int, int, Any]]] = {}
    for log in logs:
        by_run.setdefault(log.run_id, []).extend((tag, log.step, log.wall_time, h) for tag, h in log.items)
    for run_id, items in by_run.items():
        insert_histograms(conn, interner, run_id, items)


def write_model_graphs(conn: Connection, _interner: Interner, graphs: list[Any]) -> None:
    """Writer handler of :class:`~torchscope.storage.tensorboard.records.ModelGraph` records."""
    for g in graphs:
        insert_graph(conn, g.run_id, g.tag, g.kind, g.step, g.wall_time, g.nodes)


def insert_texts(conn: Connection, interner: Interner, run_id: int, items: list[tuple[str, int, int, str]]) -> None:
    """Insert ``(tag, step, wall_time, markdown)`` texts of ``run_id``."""
    if not items:
        return
    ids = interner.ids(conn, {tag for tag, *_ in items})
    rows = [(run_id, ids[tag], step, wall, text) for tag, step, wall, text in items]
    insert_rows(conn, tb_texts, ("run_id", "tag_id", "step", "wall_time", "text"), rows)


def insert_images(
    conn: Connection, interner: Interner, run_id: int, items: list[tuple[str, int, int, int, int, int, str, bytes]]
) -> None:
    """Insert ``(tag, step, wall_time, sample, width, height, mime, data)`` images of ``run_id``."""
    if not items:
        return
    ids = interner.ids(conn, {tag for tag, *_ in items})
    rows = [(run_id, ids[tag], *rest) for tag, *rest in items]
    columns = ("run_id", "tag_id", "step", "wall_time", "sample", "width", "height", "mime", "data")
    insert_rows(conn, tb_images, columns, rows)


def insert_metrics(
    conn: Connection, interner: Interner, run_id: int, items: list[tuple[str, int, int, float]]
) -> None:
    """Insert ``(tag, step, wall_time, value)`` hparam metrics of ``run_id`` (each metric's last value)."""
    if not items:
        return
    ids = interner.ids(conn, {tag for tag, *_ in items})
    rows = [(run_id, ids[tag], step, wall, value) for tag, step, wall, value in items]
    insert_rows(conn, tb_hparam_metrics, ("run_id", "tag_id", "step", "wall_time", "value"), rows)
