"""Widgets and settings that more than one view uses: the data grid, plotly's chart config, the error panel.

A page calls these instead of setting up AG Grid or a ``dcc.Graph`` config its own way, so every grid sorts,
filters and pages alike and every chart has the same mode bar.
"""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
from dash import dcc, html

from torchscope.dashboard import urls

CHART_POINTS = 1500
"""Points per scalar chart on a full draw (the run page); the runs page warms the store's downsampled cache with
the same figure, so the run a user opens next is read once."""

BREAKDOWN_COLORS: dict[str, str] = {
    "kernel": "#54a24b", "memcpy": "#eeca3b", "memset": "#ff9da6", "communication": "#e45756",
    "runtime": "#f58518", "dataloader": "#b279a2", "cpu": "#4c78a8", "idle": "#d0d0d0",
}  # fmt: skip
"""The colour of each step-time breakdown category, on the profile page and the compare page alike (the same hues
as the timeline's event kinds: kernels green, runtime calls orange, CPU ops blue)."""

GRID_COLUMN_DEFAULTS: dict[str, Any] = {"sortable": True, "filter": True, "resizable": True}
"""Every grid column sorts, filters and resizes unless its definition says otherwise."""


def plot_config(**extra: Any) -> dict[str, Any]:
    """The ``dcc.Graph`` config of every chart (no plotly logo), with a view's ``extra`` settings on top."""
    return {"displaylogo": False, **extra}


def data_grid(
    grid_id: str,
    rows: list[dict[str, Any]],
    columns: list[dict[str, Any]],
    *,
    row_id: str = "id",
    page_size: int | None = None,
    height: int | None = None,
    shrink: bool = False,
    floating_filters: bool = False,
    csv_file: str | None = None,
    csv_columns: list[str] | None = None,
    class_name: str = "",
    options: dict[str, Any] | None = None,
) -> dag.AgGrid:
    """An AG Grid of ``rows`` (dicts) with ``columns`` (AG Grid column definitions), sized to the page's width.

    ``row_id`` is the field that identifies a row (kept across updates); ``page_size`` pages the rows (none: all on
    one page); ``height`` (px) fixes the grid's height (none: it grows with its rows); with ``shrink`` a grid whose
    rows fit one page drops both and grows to its rows. ``floating_filters`` puts a filter box under each header;
    ``csv_file`` names the CSV export (``exportDataAsCsv``) of ``csv_columns`` (all fields by default). ``options``
    are more ``dashGridOptions`` (row selection, ...).
    """
    if shrink and page_size is not None and len(rows) <= page_size:
        page_size = height = None
    grid_options: dict[str, Any] = {"animateRows": False, "tooltipShowDelay": 300}
    if page_size is not None:
        grid_options.update(pagination=True, paginationPageSize=page_size)
    if height is None:
        grid_options["domLayout"] = "autoHeight"
    grid_options.update(options or {})
    extra: dict[str, Any] = {}
    if height is not None:
        extra["style"] = {"height": f"{height}px"}
    if csv_file is not None:
        keys = csv_columns if csv_columns is not None else [c["field"] for c in columns]
        extra["csvExportParams"] = {"fileName": csv_file, "columnKeys": keys}
    return dag.AgGrid(
        id=grid_id,
        rowData=rows,
        columnDefs=columns,
        defaultColDef={**GRID_COLUMN_DEFAULTS, **({"floatingFilter": True} if floating_filters else {})},
        dashGridOptions=grid_options,
        getRowId=f"params.data.{row_id}",
        columnSize="responsiveSizeToFit",
        className=" ".join(["ag-theme-alpine", class_name]).strip(),
        **extra,
    )


def error_panel(code: int, message: str) -> html.Div:
    """What a page shows instead of its content when the request cannot be served (``code`` is HTTP-like)."""
    return html.Div(
        [html.H2(f"{code}", className="error-code"), html.P(message, className="error-message"),
         dcc.Link("All runs", href=urls.runs())],
        className="error-panel",
    )  # fmt: skip
