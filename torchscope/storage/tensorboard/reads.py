"""Read API for imported TensorBoard graphs, histograms, text, images and hparam metrics (``Store`` delegates to
these)."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Engine, text

from torchscope.errors import NotFoundError

NODE_COLUMNS = ["graph_id", "tag", "kind", "name", "op", "scope", "inputs", "device", "attrs"]
EDGE_COLUMNS = ["graph_id", "source", "target"]
HISTOGRAM_COLUMNS = ["run_id", "tag", "step", "wall_time", "min", "max", "num", "sum", "sum_squares", "buckets"]
TEXT_COLUMNS = ["tag", "step", "wall_time", "text"]
IMAGE_COLUMNS = ["id", "tag", "step", "wall_time", "sample", "width", "height", "mime"]
METRIC_COLUMNS = ["run_id", "tag", "step", "wall_time", "value"]


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


class TbDataReads:
    """Imported text, images and hparam metrics, the list of a run's imported graphs, and the hparams of every run."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def texts(self, run_id: int, tags: list[str] | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.texts`, which documents the columns."""
        sql = (
            "SELECT n.name, t.step, t.wall_time, t.text FROM tb_texts t JOIN names n ON n.id = t.tag_id "
            "WHERE t.run_id = :r ORDER BY n.name, t.step, t.id"
        )
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(text(sql), {"r": int(run_id)}).all(), columns=TEXT_COLUMNS)
        if tags is not None:
            frame = frame[frame["tag"].isin(list(tags))].reset_index(drop=True)
        return frame.astype({"step": "int64", "wall_time": "int64"})

    def images(self, run_id: int, tags: list[str] | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.images`, which documents the columns."""
        sql = (
            "SELECT i.id, n.name, i.step, i.wall_time, i.sample, i.width, i.height, i.mime FROM tb_images i "
            "JOIN names n ON n.id = i.tag_id WHERE i.run_id = :r ORDER BY n.name, i.step, i.sample, i.id"
        )
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(text(sql), {"r": int(run_id)}).all(), columns=IMAGE_COLUMNS)
        if tags is not None:
            frame = frame[frame["tag"].isin(list(tags))].reset_index(drop=True)
        return frame.astype({c: "int64" for c in ("id", "step", "wall_time", "sample", "width", "height")})

    def image(self, image_id: int) -> tuple[str, bytes]:
        """Backs :meth:`Store.image`."""
        with self._engine.connect() as conn:
            row = conn.execute(text("SELECT mime, data FROM tb_images WHERE id = :i"), {"i": int(image_id)}).first()
        if row is None:
            raise NotFoundError(f"there is no imported image {image_id} in this database")
        return str(row[0]), bytes(row[1])

    def hparam_metrics(self, run_ids: list[int] | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.hparam_metrics`, which documents the columns."""
        sql = (
            "SELECT m.run_id, n.name, m.step, m.wall_time, m.value FROM tb_hparam_metrics m "
            "JOIN names n ON n.id = m.tag_id ORDER BY m.run_id, n.name"
        )
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(text(sql)).all(), columns=METRIC_COLUMNS)
        if run_ids is not None:
            frame = frame[frame["run_id"].isin([int(r) for r in run_ids])].reset_index(drop=True)
        return frame.astype({"run_id": "int64", "step": "int64", "wall_time": "int64", "value": "float64"})

    def imported_graphs(self, run_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.imported_graphs`, which documents the columns."""
        sql = (
            "SELECT g.id, g.tag, g.kind, g.step, (SELECT COUNT(*) FROM tb_graph_nodes n WHERE n.graph_id = g.id) "
            "FROM tb_graphs g WHERE g.run_id = :r ORDER BY g.id"
        )
        with self._engine.connect() as conn:
            rows = conn.execute(text(sql), {"r": int(run_id)}).all()
        return pd.DataFrame(rows, columns=["id", "tag", "kind", "step", "nodes"]).astype(
            {"id": "int64", "step": "int64", "nodes": "int64"}
        )
