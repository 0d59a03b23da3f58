"""The parallel-coordinates figure of the hparams page (TensorBoard's HParams "parallel coordinates" view). Pure.

One axis per hparam, then per metric; one line per run, coloured by a chosen metric. Text hparams (an optimizer's
name) get an axis of their values in sorted order.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from torchscope.dashboard.views.hparams.tables import HparamsTable

MAX_AXES = 16
"""Axes beyond this many (hparams first) are left out of the figure; the grid still shows every column."""


def axis(label: str, cells: list[Any]) -> dict[str, Any]:
    """One parcoords dimension from a column's cells: numbers as they are, anything else as sorted categories."""
    if all(isinstance(c, (int, float)) or c is None for c in cells):
        return {"label": label, "values": [float("nan") if c is None else c for c in cells]}
    categories = sorted({str(c) for c in cells if c is not None})
    code = {c: i for i, c in enumerate(categories)}
    return {"label": label, "values": [code.get(str(c), -1) if c is not None else -1 for c in cells],
            "tickvals": list(range(len(categories))), "ticktext": categories}  # fmt: skip


def parcoords_figure(table: HparamsTable, rows: list[dict[str, Any]], color_metric: str | None) -> go.Figure:
    """The parallel coordinates of ``rows`` (the grid's rows after its filter and sort), coloured by
    ``color_metric`` (a metric name; None: one colour)."""
    fields = list(table.fields.items())[:MAX_AXES]
    dimensions = [axis(name, [r.get(field) for r in rows]) for field, name in fields]
    line: dict[str, Any] = {"color": "#3b6fd8"}
    color_field = table.metric_field(color_metric)
    if color_field is not None and rows:
        values = [r.get(color_field) for r in rows]
        line = {"color": [float("nan") if v is None else v for v in values], "colorscale": "Viridis",
                "showscale": True, "colorbar": {"title": {"text": color_metric}}}  # fmt: skip
    figure = go.Figure(go.Parcoords(dimensions=dimensions, line=line))
    figure.update_layout(margin={"l": 60, "r": 60, "t": 60, "b": 30}, height=420, uirevision="hparams",
                         meta={"runs": [r["id"] for r in rows], "color": color_metric})  # fmt: skip
    return figure
