"""``/hparams``: the hyperparameters and metrics of every run side by side (TensorBoard's HParams dashboard).

A grid (sort and filter any column) and a parallel-coordinates figure of the rows the grid shows, coloured by a
metric. Runs with a config (``torchscope.init(config=...)``) and runs imported with ``add_hparams`` values take part.
``?color=<metric>`` picks the colour, so a view can be shared.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from torchscope.dashboard import urls
from torchscope.dashboard.components import data_grid, plot_config
from torchscope.dashboard.scripts import GRID, FirstPaint
from torchscope.dashboard.views.hparams.figures import parcoords_figure
from torchscope.dashboard.views.hparams.tables import (
    HparamsTable,
    hparams_columns,
    hparams_table,
)
from torchscope.storage.store import Store


def _table(store: Store) -> HparamsTable:
    return hparams_table(store.hparams(), store.runs())


def default_metric(table: HparamsTable, wanted: str | None) -> str | None:
    """The metric to colour by: ``wanted`` when the table has it, else the first metric with "loss" in its name,
    else the first metric; None without metrics."""
    if wanted in table.metrics:
        return wanted
    losses = [m for m in table.metrics if "loss" in m.lower()]
    return (losses or table.metrics or [None])[0]


def first_paint(query: dict[str, str]) -> FirstPaint:
    """Parallel coordinates (the full plotly.js) and the runs' grid
    (:func:`torchscope.dashboard.routes.first_paint`)."""
    return FirstPaint(plotly="full", components=(GRID,))


def layout(store: Store, *, refresh_ms: int, query: dict[str, str]) -> Any:
    """The grid, the colour picker and the figure; a hint when no run has hparams."""
    table = _table(store)
    if not table.rows:
        hint = ("No run has hyperparameters yet: pass config={...} to torchscope.init, or import a TensorBoard log "
                "written with add_hparams. ")
        return html.Div([html.H1("Hyperparameters"),
                         html.P([hint, dcc.Link("All runs", href=urls.runs())], className="muted")])
    color = default_metric(table, query.get("color"))
    picker = dcc.Dropdown(id="hparams-color", options=[{"label": m, "value": m} for m in table.metrics], value=color,
                          clearable=False, style={"minWidth": "220px"})
    return html.Div(
        [
            html.H1("Hyperparameters"),
            html.Div(
                [
                    html.P(f"{len(table.rows)} runs · {len(table.hparams)} hparams · {len(table.metrics)} metrics",
                           className="muted", id="hparams-count"),
                    html.Label(["Colour by ", picker], className="control"),
                ],
                className="controls",
            ),
            dcc.Graph(id="hparams-parcoords", figure=parcoords_figure(table, table.rows, color),
                      config=plot_config(), className="chart"),
            data_grid("hparams-grid", table.rows, hparams_columns(table), floating_filters=True, page_size=50,
                      shrink=True, csv_file="hparams.csv"),
            dcc.Store(id="hparams-href", data=None),
        ]
    )


def register(app: dash.Dash, store: Store) -> None:
    """Redraw the figure for the rows the grid shows (after its filter and sort) and the chosen colour; keep the
    colour in the URL."""

    @app.callback(
        Output("hparams-parcoords", "figure"),
        Output("hparams-href", "data"),
        Input("hparams-grid", "virtualRowData"),
        Input("hparams-color", "value"),
        State("hparams-grid", "rowData"),
        prevent_initial_call=True,
    )
    def redraw(shown: list[dict[str, Any]] | None, color: str | None, all_rows: list[dict[str, Any]]) -> tuple:
        table = _table(store)
        rows = shown if shown is not None else all_rows
        return parcoords_figure(table, rows or [], color), urls.hparams(color=color)

    # the address bar follows the colour (replaceState: no navigation, no Dash routing), so it can be shared
    app.clientside_callback(
        """
        function(href) {
            const here = window.location.pathname + window.location.search;
            if (href && href !== here) { window.history.replaceState(null, '', href); }
            return window.dash_clientside.no_update;
        }
        """,
        Output("hparams-count", "title"),
        Input("hparams-href", "data"),
    )
