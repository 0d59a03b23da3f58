"""``/run/<id>``: a run's header (status, time, steps, config) and its scalar charts, kept up to date."""

from __future__ import annotations

import json
from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from torchscope.dashboard.figures.scalars import group_tags, scalar_figure
from torchscope.formatting import fmt_duration, fmt_time, fmt_value
from torchscope.storage.store import Store

PATH = r"/run/(?P<run_id>\d+)"
MAX_POINTS = 1500
"""Points per chart sent to the browser; the store downsamples keeping extremes and every NaN/Inf."""


def layout(store: Store, *, refresh_ms: int, query: dict[str, str], run_id: str) -> Any:
    """The page of one run; raises ``NotFoundError`` (shown as 404) for an unknown id."""
    run = store.run(int(run_id))
    return html.Div(
        [
            dcc.Store(id="run-id", data=int(run_id)),
            html.Div(header(run, store.last_scalars([int(run_id)])), id="run-header"),
            html.Div(
                [
                    html.Label(["Smoothing", dcc.Slider(id="run-smoothing", min=0, max=0.99, step=0.01, value=0,
                                                        marks={0: "0", 0.6: "0.6", 0.9: "0.9"})], className="control"),
                    dcc.Checklist(id="run-log", options=[{"label": " log scale", "value": "log"}], value=[],
                                  className="control"),
                    dcc.RadioItems(id="run-x", options=[{"label": " step", "value": "step"},
                                                        {"label": " wall time", "value": "wall_time"}],
                                   value="step", inline=True, className="control"),
                ],
                className="controls",
            ),  # fmt: skip
            html.Div(id="run-charts", className="chart-groups"),
            dcc.Interval(id="run-refresh", interval=refresh_ms),
        ]
    )


def header(run: dict[str, Any], last: Any) -> list[Any]:
    """Name, status badge, start, duration, steps, latest values and config of a run."""
    steps = "-" if run["last_step"] is None or run["last_step"] != run["last_step"] else int(run["last_step"]) + 1
    latest = [
        html.Span([html.B(tag), f" {fmt_value(value)}"], className="latest")
        for tag, value in sorted(zip(last["tag"], last["value"]))
        if not tag.startswith("sys/")
    ]
    config = run["config"] or {}
    return [
        html.H1([run["name"], html.Span(run["status"], className=f"badge status-{run['status']}", id="run-status")]),
        html.Div(
            [
                html.Span(f"#{run['id']}"),
                html.Span(f"started {fmt_time(run['started_at'])}"),
                html.Span(f"elapsed {fmt_duration(run['duration_ns'])}"),
                html.Span(f"steps {steps}", id="run-steps"),
            ],
            className="meta",
        ),
        html.Div(latest, className="latest-values", id="run-latest"),
        html.Details(
            [
                html.Summary(f"config ({len(config)})"),
                html.Table([html.Tr([html.Td(k), html.Td(json.dumps(v))]) for k, v in sorted(config.items())]),
            ],
            className="config",
        )
        if config
        else None,
        html.P(f"error: {run['error']}", className="run-error") if run.get("error") else None,
    ]


def charts(store: Store, run_id: int, *, x: str, smoothing: float, log_y: bool) -> list[Any]:
    """One section per tag prefix, one chart per tag."""
    frame = store.scalars(run_id, max_items=MAX_POINTS)
    if frame.empty:
        return [html.P("nothing logged yet", className="muted")]
    by_tag = dict(tuple(frame.groupby("tag", sort=False)))
    sections = []
    for prefix, tags in group_tags(list(by_tag)).items():
        graphs = [
            dcc.Graph(
                id={"type": "scalar-chart", "tag": tag},
                figure=scalar_figure(by_tag[tag], tag, x=x, smoothing=smoothing, log_y=log_y),
                config={"displaylogo": False},
                className="chart",
            )
            for tag in tags
        ]
        sections.append(html.Section([html.H3(prefix or "scalars"), html.Div(graphs, className="chart-grid")]))
    return sections


def register(app: dash.Dash, store: Store) -> None:
    """Refresh header and charts on the timer and when the controls change."""

    @app.callback(
        Output("run-header", "children"),
        Output("run-charts", "children"),
        Input("run-refresh", "n_intervals"),
        Input("run-smoothing", "value"),
        Input("run-log", "value"),
        Input("run-x", "value"),
        State("run-id", "data"),
    )
    def refresh(_n: int | None, smoothing: float, log: list[str], x: str, run_id: int) -> tuple[Any, Any]:
        run = store.run(run_id)
        return (
            header(run, store.last_scalars([run_id])),
            charts(store, run_id, x=x, smoothing=float(smoothing or 0), log_y="log" in (log or [])),
        )
