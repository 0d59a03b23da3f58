"""``/``: every run in the database, refreshed while the page is open."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, dcc, html

from torchscope.dashboard.tables.runs import runs_columns, runs_rows
from torchscope.storage.store import Store

PATH = r"/"


def layout(store: Store, *, refresh_ms: int, query: dict[str, str]) -> Any:
    """The runs grid (name, status, started, duration, steps, latest key scalars) and its refresh timer."""
    summaries, tags = store.run_summaries()
    return html.Div(
        [
            html.H1("Runs"),
            html.P(f"{len(summaries)} runs", id="runs-count", className="muted"),
            dag.AgGrid(
                id="runs-grid",
                rowData=runs_rows(summaries, tags),
                columnDefs=runs_columns(tags),
                defaultColDef={"sortable": True, "filter": True, "resizable": True},
                dashGridOptions={"domLayout": "autoHeight", "animateRows": False},
                getRowId="params.data.id",
                columnSize="responsiveSizeToFit",
                className="ag-theme-alpine",
            ),
            dcc.Interval(id="runs-refresh", interval=refresh_ms),
        ]
    )


def register(app: dash.Dash, store: Store) -> None:
    """Poll the store: new runs appear and statuses change without a reload."""

    @app.callback(
        Output("runs-grid", "rowData"),
        Output("runs-grid", "columnDefs"),
        Output("runs-count", "children"),
        Input("runs-refresh", "n_intervals"),
        State("runs-grid", "columnDefs"),
        prevent_initial_call=True,
    )
    def refresh(_n: int, current_columns: list[dict[str, Any]]) -> tuple[Any, Any, str]:
        summaries, tags = store.run_summaries()
        columns = runs_columns(tags)
        if [c["field"] for c in columns] == [c["field"] for c in current_columns or []]:
            columns = dash.no_update
        return runs_rows(summaries, tags), columns, f"{len(summaries)} runs"
