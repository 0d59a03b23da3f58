"""Rows and columns of the compare page's grids. Pure functions: diff DataFrames in, AG Grid data out.

Times travel as numbers of microseconds (so the grid sorts them as numbers) and are formatted in the browser.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from torchscope.dashboard.formatting import is_missing

US = {"function": "params.value == null ? '-' : d3.format(',.1f')(params.value)"}
SIGNED_US = {"function": "params.value == null ? '-' : d3.format('+,.1f')(params.value)"}
SIGNED_INT = {"function": "d3.format('+')(params.value)"}
GRAPH_FIELDS = ("key", "kind", "status", "name_a", "name_b", "module", "op", "out_shapes_a", "out_shapes_b")
PCT = {"function": "params.value == null ? '-' : d3.format('+.1%')(params.value)"}
STATUS_CLASSES = {"status-only-a": "params.value == 'only A'", "status-only-b": "params.value == 'only B'"}
DELTA_CLASSES = {"delta-slower": "params.value > 0", "delta-faster": "params.value < 0"}


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def diff_columns(key: str, time: str, *, key_header: str | None = None) -> list[dict[str, Any]]:
    """Columns of an op/kernel/module diff grid: key, status, calls A/B/Δ, ``time`` A/B/Δ (µs), change, mean A/B."""
    label = time.removesuffix("_ns").replace("_", " ")
    num = {"type": "numericColumn", "maxWidth": 130}
    columns = [
        {"field": "key", "headerName": key_header or key, "minWidth": 260, "flex": 3, "tooltipField": "key"},
        {"field": "status", "maxWidth": 110, "cellClassRules": STATUS_CLASSES},
        {"field": "calls_a", "headerName": "calls A", **num},
        {"field": "calls_b", "headerName": "calls B", **num},
        {"field": "calls_delta", "headerName": "calls Δ", **num, "valueFormatter": SIGNED_INT},
        {"field": "time_a", "headerName": f"{label} A (µs)", **num, "valueFormatter": US},
        {"field": "time_b", "headerName": f"{label} B (µs)", **num, "valueFormatter": US},
        {"field": "time_delta", "headerName": "Δ (µs)", **num, "valueFormatter": SIGNED_US,
         "cellClassRules": DELTA_CLASSES},
        {"field": "change", "headerName": "change", **num, "valueFormatter": PCT},
        {"field": "mean_a", "headerName": "mean A (µs)", **num, "valueFormatter": US},
        {"field": "mean_b", "headerName": "mean B (µs)", **num, "valueFormatter": US},
    ]  # fmt: skip
    for column in columns:  # narrow numeric headers get cut: the whole header on hover
        column["headerTooltip"] = column.get("headerName", column["field"])
    return columns


def diff_rows(table: pd.DataFrame, key: str, time: str, mean: str | None) -> list[dict[str, Any]]:
    """One grid row per diff row, in the diff's order (largest absolute change first); ``id`` is the position."""
    rows = []
    for i, rec in enumerate(table.to_dict("records")):
        rows.append(
            {
                "id": i,
                "key": str(rec[key]),
                "status": rec["status"],
                "calls_a": int(rec["calls_a"]),
                "calls_b": int(rec["calls_b"]),
                "calls_delta": int(rec["calls_delta"]),
                "time_a": rec[f"{time}_a"] / 1e3,
                "time_b": rec[f"{time}_b"] / 1e3,
                "time_delta": rec[f"{time}_delta"] / 1e3,
                "change": _num(rec["pct_change"]),
                "mean_a": None if mean is None else _us(rec[f"{mean}_a"]),
                "mean_b": None if mean is None else _us(rec[f"{mean}_b"]),
            }
        )
    return rows


def _us(ns: Any) -> float | None:
    value = _num(ns)
    return None if value is None else value / 1e3


def graph_node_columns() -> list[dict[str, Any]]:
    """Columns of the structural diff grid: node key, kind, status, names in A and B, module, op, shapes."""
    return [
        {"field": "key", "minWidth": 260, "flex": 3, "tooltipField": "key"},
        {"field": "kind", "maxWidth": 100},
        {"field": "status", "maxWidth": 110, "cellClassRules": STATUS_CLASSES},
        {"field": "name_a", "headerName": "name in A", "flex": 1},
        {"field": "name_b", "headerName": "name in B", "flex": 1},
        {"field": "module", "flex": 1},
        {"field": "op", "flex": 1},
        {"field": "out_shapes_a", "headerName": "shape A", "flex": 1},
        {"field": "out_shapes_b", "headerName": "shape B", "flex": 1},
    ]


def graph_node_rows(structure: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of the structural diff grid (only A, only B, then the shared nodes whose output shape changed)."""
    shown = structure[(structure["status"] != "both") | structure["shape_changed"]]
    rows = []
    for i, rec in enumerate(shown.to_dict("records")):
        row = {c: (None if is_missing(rec[c]) else str(rec[c])) for c in GRAPH_FIELDS}
        rows.append({"id": i, **row})
    return rows


def node_change_columns() -> list[dict[str, Any]]:
    """Columns of the per-node statistics change grid."""
    num = {"type": "numericColumn", "maxWidth": 130}
    g = {"function": "params.value == null ? '-' : d3.format('.4~g')(params.value)"}
    return [
        {"field": "node", "minWidth": 160, "flex": 2},
        {"field": "module", "flex": 1},
        {"field": "role", "maxWidth": 90},
        {"field": "mean_a", "headerName": "mean A", **num, "valueFormatter": g},
        {"field": "mean_b", "headerName": "mean B", **num, "valueFormatter": g},
        {"field": "norm_a", "headerName": "norm A", **num, "valueFormatter": g},
        {"field": "norm_b", "headerName": "norm B", **num, "valueFormatter": g},
        {"field": "norm_change", "headerName": "norm change", **num, "valueFormatter": PCT,
         "cellClassRules": DELTA_CLASSES},
    ]  # fmt: skip


def node_change_rows(changes: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of the per-node statistics change grid, largest relative change of the norm first."""
    return [
        {"id": i, "node": str(rec["name_b"]), "module": rec["module"] or "", "role": rec["role"],
         "mean_a": _num(rec["mean_a"]), "mean_b": _num(rec["mean_b"]), "norm_a": _num(rec["norm_a"]),
         "norm_b": _num(rec["norm_b"]), "norm_change": _num(rec["norm_change"])}
        for i, rec in enumerate(changes.to_dict("records"))
    ]  # fmt: skip
