"""Read API for imported TensorBoard graphs and histograms (``Store`` delegates to these)."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Engine, text

NODE_COLUMNS = ["graph_id", "tag", "kind", "name", "op", "scope", "inputs", "device", "attrs"]
EDGE_COLUMNS = ["graph_id", "source", "target"]
HISTOGRAM_COLUMNS = ["run_id", "tag", "step", "wall_time", "min", "max", "num", "sum", "sum_squares", "buckets"]


class TbGraphReads:
    """``imported_graph`` and ``histograms``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def imported_graph(self, run_id: int, tag: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Backs :meth:`Store.imported_graph`, which documents the columns."""
        sql = (
            "SELECT g.id, g.tag, g.kind, n.name, n.op, n.scope, n.inputs, n.device, n.attrs FROM tb_graph_nodes n "
            "JOIN tb_graphs g ON g.id = n.graph_id WHERE g.run_id = :r"
        )
        params: dict[str, object] = {"r": int(run_id)}
        if tag is not None:
            sql += " AND g.tag = :t"
            params["t"] = tag
        with self._engine.connect() as conn:
            nodes = pd.DataFrame(conn.execute(text(sql + " ORDER BY g.id, n.id"), params).all(), columns=NODE_COLUMNS)
        nodes["inputs"] = nodes["inputs"].map(json.loads)
        nodes["attrs"] = nodes["attrs"].map(json.loads)
        edges = []
        for graph_id, group in nodes.groupby("graph_id", sort=False):
            known = set(group["name"])
            pairs = zip(group["name"], group["inputs"])
            edges.extend((graph_id, src, dst) for dst, ins in pairs for src in ins if src in known)
        return nodes, pd.DataFrame(edges, columns=EDGE_COLUMNS)

    def histogram_tags(self, run_id: int) -> list[str]:
        """Backs :meth:`Store.histogram_tags`: the tags of a run's imported histograms, by name."""
        sql = (
            "SELECT DISTINCT n.name FROM tb_histograms h JOIN names n ON n.id = h.tag_id WHERE h.run_id = :r "
            "ORDER BY n.name"
        )
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(text(sql), {"r": int(run_id)})]

    def histograms(self, run_id: int, tags: list[str] | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.histograms`, which documents the columns."""
        sql = (
            "SELECT h.run_id, n.name, h.step, h.wall_time, h.min, h.max, h.num, h.sum, h.sum_squares, h.buckets "
            "FROM tb_histograms h JOIN names n ON n.id = h.tag_id WHERE h.run_id = :r ORDER BY n.name, h.step"
        )
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(text(sql), {"r": int(run_id)}).all(), columns=HISTOGRAM_COLUMNS)
        if tags is not None:
            frame = frame[frame["tag"].isin(list(tags))].reset_index(drop=True)
        frame["buckets"] = frame["buckets"].map(json.loads)
        return frame
