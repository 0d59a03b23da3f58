"""``/``: every run in the database, refreshed while the page is open."""

from __future__ import annotations

import threading
from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from torchscope.dashboard import urls
from torchscope.dashboard.components import CHART_POINTS, data_grid
from torchscope.dashboard.scripts import GRID, FirstPaint
from torchscope.dashboard.views.runs.tables import compare_href, runs_columns, runs_rows
from torchscope.storage.store import Store


def first_paint(query: dict[str, str]) -> FirstPaint:
    """The runs' grid, without a chart (:func:`torchscope.dashboard.routes.first_paint`)."""
    return FirstPaint(plotly=None, components=(GRID,))


def layout(store: Store, *, refresh_ms: int, query: dict[str, str]) -> Any:
    """The runs grid (name, status, started, duration, steps, latest key scalars) and its refresh timer."""
    summaries, tags = store.run_summaries()
    warm_up(store, summaries)
    return html.Div(
        [
            html.H1("Runs"),
            html.Div(
                [
                    html.P(f"{len(summaries)} runs", id="runs-count", className="muted"),
                    html.Span("tick two runs to compare them", id="runs-compare-hint", className="muted"),
                    dcc.Link("Compare", id="runs-compare", href=urls.compare(), className="button",
                             style={"display": "none"}),
                    dcc.Link("Hyperparameters", id="runs-hparams", href=urls.hparams()),
                ],
                className="runs-toolbar",
            ),
            data_grid("runs-grid", runs_rows(summaries, tags), runs_columns(tags), options={
                "rowSelection": {"mode": "multiRow", "checkboxes": True, "headerCheckbox": False,
                                 "enableClickSelection": False,
                                 "isRowSelectable": {"function": "!params.data.job"}},  # a job: compare its ranks' runs
            }),  # fmt: skip
            dcc.Interval(id="runs-refresh", interval=refresh_ms),
        ]
    )


def warm_up(store: Store, summaries: Any, newest: int = 3) -> None:
    """Read the charts of the runs a user is likely to open next (running ones, the newest) in the background.

    The store keeps downsampled series per run (``Store.scalars_downsampled``): a run of a million points takes a
    second or more to read the first time and milliseconds after, so the run's page opens without that wait.
    """
    wanted = summaries.loc[summaries["status"] == "running", "id"].tolist() + summaries["id"].head(newest).tolist()
    ids = list(dict.fromkeys(int(i) for i in wanted))

    def read() -> None:
        for run_id in ids:
            try:
                store.scalars_downsampled(run_id, CHART_POINTS)
            except Exception:  # noqa: BLE001 - only a head start; the run page reads (and reports) for itself
                return

    if ids:
        threading.Thread(target=read, name="torchscope-warm-up", daemon=True).start()


def register(app: dash.Dash, store: Store) -> None:
    """Poll the store: new runs appear and statuses change without a reload. Two ticked runs can be compared."""

    @app.callback(
        Output("runs-compare", "href"),
        Output("runs-compare", "style"),
        Output("runs-compare", "children"),
        Output("runs-compare-hint", "style"),
        Input("runs-grid", "selectedRows"),
    )
    def pick(selected: list[dict[str, Any]] | None) -> tuple[Any, Any, Any, Any]:
        href = compare_href(selected)
        if href is None:
            return dash.no_update, {"display": "none"}, dash.no_update, {}
        a, b = sorted(int(row["id"]) for row in selected or [])
        return href, {}, f"Compare #{a} and #{b}", {"display": "none"}

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
