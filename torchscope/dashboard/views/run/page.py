"""``/run/<id>``: a run's header and its scalar charts, growing while the run trains.

The page is drawn once on the server (every chart downsampled to about :data:`MAX_POINTS`, from the store's cache of
downsampled series, so a reload or a control change does not read the whole run again); after that a timer asks the
store only for the points after each chart's cursor and appends them with ``extendData`` (every 250 ms by default,
:func:`chart_poll_ms`; the header polls every second). New tags get a chart
inserted in place (a ``Patch`` of the chart list), and the controls (smoothing, log scale, x axis) redraw.
Query parameters ``x=wall_time``, ``smoothing=0.6``, ``log=1`` and ``tags=<regex>`` (only the charts whose tag
matches, case-insensitive) set the controls, ``hist`` and ``hmode`` the histograms section
(:mod:`torchscope.dashboard.views.run.histogram_section`); the address bar follows the controls
(:mod:`torchscope.dashboard.history`), so a view can be shared, reloaded, and gone back to.
"""

from __future__ import annotations

import time
from typing import Any

import dash
import pandas as pd
from dash import ALL, Input, Output, Patch, State, ctx, dcc, html

from torchscope.dashboard import history, urls
from torchscope.dashboard.components import plot_config
from torchscope.dashboard.views.run import histogram_section, live, media_page
from torchscope.dashboard.views.run.header import (
    alert_block, artifacts_block, config_block, header_parts, latest_values,
)  # fmt: skip
from torchscope.dashboard.views.run.media import (
    hparam_metrics_block, image_section, imported_graph_links, text_section,
)  # fmt: skip
from torchscope.dashboard.views.run.profiles import profiles_section
from torchscope.dashboard.views.run.scalars import SYSTEM_PREFIX, group_tags, scalar_figure, tag_prefix, x_mode_for
from torchscope.errors import BadRequestError
from torchscope.dashboard.formatting import fmt_time
from torchscope.storage.store import Store

MAX_POINTS = live.MAX_POINTS
GRAPH_CONFIG = plot_config()
ENDED = ("finished", "failed")
"""Statuses after which no value arrives: the charts stop polling (the header goes on polling)."""
POLL_STALLED_MS = 5000
"""A chart poll that has not come back for this long (an error, or its answer dropped) is restarted by the header."""
GATE_POLL = "function(n) { return [true, n]; }"
"""Clientside, on each tick of ``run-poll``: pause the timer and send the tick to the server (``run-tick``).

The charts' callback restarts the timer when it answers, so polls never overlap. Dash drops the answer of a callback
that was called again before it came back: a timer that fired regardless, faster than a slow answer (a big redraw on
a busy machine), would drop every answer and the charts would never change."""


def chart_poll_ms(refresh_ms: int) -> int:
    """How long the charts wait after one poll's answer to ask for new points again: a quarter of the header's
    refresh (250 ms by default), so a logged value is drawn within a second. Cheap: a poll with nothing new is one
    indexed lookup (``Store.scalars_after``)."""
    return max(100, refresh_ms // 4)


def _controls(query: dict[str, str]) -> tuple[str, float, bool]:
    x = query.get("x", "step")
    if x not in ("step", "wall_time"):
        raise BadRequestError(f"x must be step or wall_time, not {x!r}")
    try:
        smoothing = min(max(float(query.get("smoothing", 0)), 0.0), 0.99)
    except ValueError as exc:
        raise BadRequestError(f"smoothing must be a number from 0 to 0.99, not {query['smoothing']!r}") from exc
    return x, smoothing, query.get("log", "0") in ("1", "true", "yes")


def layout(store: Store, *, refresh_ms: int, query: dict[str, str], run_id: str) -> Any:
    """The page of one run; raises ``NotFoundError`` (shown as 404) for an unknown id."""
    run = store.run(int(run_id))
    x, smoothing, log_y = _controls(query)
    sections, cursors = chart_sections(
        store.scalars_downsampled(run["id"], MAX_POINTS), x=x, t0=run["started_at"], smoothing=smoothing, log_y=log_y
    )
    parts = header_parts(run, None)
    artifacts = store.run_artifacts(run["id"])
    # a run that logged no scalar (an imported trace): its profiles' summaries instead of an empty chart area
    profiles = profiles_section(store, int(run["id"])) if not sections else None
    quiet = not sections and run["status"] in ENDED  # no scalar will come (an imported trace or hparams session)
    return html.Div(
        [
            dcc.Store(id="run-id", data=int(run_id)),
            dcc.Store(id="run-t0", data=str(int(run["started_at"]))),  # a string: JS numbers hold 2**53 exactly
            dcc.Store(id="run-cursors", data=cursors),
            dcc.Store(id="run-drawn", data=[x, smoothing, log_y]),  # the controls the charts were drawn with
            dcc.Store(id="run-samples", data=[]),
            html.H1([run["name"], html.Span(parts["status"], className=parts["status_class"], id="run-status")]),
            html.Div(
                [
                    html.Span(f"#{run['id']}"),
                    html.Span(f"started {fmt_time(run['started_at'])}"),
                    html.Span(parts["elapsed"], id="run-elapsed"),
                    html.Span(parts["steps"], id="run-steps"),
                    html.Span(parts["rate"], id="run-rate"),
                ],
                className="meta",
            ),
            html.Div(latest_values(store.last_scalars([run["id"]])), className="latest-values", id="run-latest"),
            config_block(run["config"] or {}),
            hparam_metrics_block(store.hparam_metrics([run["id"]])),
            html.P(parts["error"], className="run-error", id="run-error"),
            html.P(parts["dropped"], className="run-dropped", id="run-dropped"),
            html.Div(alert_block(run["id"], live.alerts(cursors), artifacts), id="run-alert"),
            html.Div(artifacts_block(run["id"], artifacts, run.get("source") == "import"), id="run-artifacts"),
            imported_graph_links(run["id"], store.imported_graphs(run["id"])),
            html.Div(
                [
                    html.Label(["Smoothing", dcc.Slider(id="run-smoothing", min=0, max=0.99, step=0.01, value=smoothing,
                                                        marks={0: "0", 0.6: "0.6", 0.9: "0.9"})], className="control"),
                    dcc.Checklist(id="run-log", options=[{"label": " log scale", "value": "log"}],
                                  value=["log"] if log_y else [], className="control"),
                    dcc.RadioItems(id="run-x", options=[{"label": " step", "value": "step"},
                                                        {"label": " wall time", "value": "wall_time"}],
                                   value=x, inline=True, className="control"),
                    dcc.Input(id="run-tags", type="search", value=query.get("tags", ""), debounce=0.3,
                              placeholder="filter tags (regex)", className="control run-tags"),
                    html.Span("", id="run-tags-shown", className="muted"),
                ],
                className="controls",
                style={"display": "none"} if quiet else None,
            ),  # fmt: skip
            html.Div(sections, id="run-charts", className="chart-groups"),
            profiles,
            image_section(store.images(run["id"])),
            text_section(store.texts(run["id"])),
            histogram_section.section(store, int(run_id), query),
            dcc.Interval(id="run-refresh", interval=refresh_ms),
            dcc.Interval(id="run-poll", interval=chart_poll_ms(refresh_ms), disabled=run["status"] in ENDED),
            dcc.Store(id="run-tick", data=0),
            dcc.Store(id="run-ended", data=run["status"] in ENDED),
            dcc.Store(id="run-polled", data=_now_ms()),  # when the charts' poll last answered (server clock)
        ]
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def chart_cell(points: pd.DataFrame, tag: str, *, x: str, t0: int, smoothing: float, log_y: bool) -> tuple[Any, dict]:
    """One tag's chart (inside a cell carrying ``data-tag``) and its cursor."""
    figure, state = scalar_figure(points, tag, x=x_mode_for(tag, x), t0=t0, smoothing=smoothing, log_y=log_y)
    graph = dcc.Graph(id={"type": "scalar-chart", "tag": tag}, figure=figure, config=GRAPH_CONFIG, className="chart")
    return html.Div(graph, className="chart-cell", **{"data-tag": tag}), live.cursor_for(points, ema_state=state)


def section(prefix: str, cells: list[Any]) -> html.Section:
    """The section of one tag prefix: a title and a grid of charts."""
    title = "system" if prefix == SYSTEM_PREFIX else (prefix or "scalars")
    return html.Section([html.H3(title), html.Div(cells, className="chart-grid")], className="chart-section",
                        **{"data-prefix": prefix})  # fmt: skip


def chart_sections(frame: pd.DataFrame, *, x: str, t0: int, smoothing: float, log_y: bool) -> tuple[list[Any], dict]:
    """Every chart of a run, grouped by prefix, and the cursors of the charts."""
    if frame.empty:
        return [], {}
    by_tag = dict(tuple(frame.groupby("tag", sort=False)))
    sections, cursors = [], {}
    for prefix, tags in group_tags(list(by_tag)).items():
        cells = []
        for tag in tags:
            cell, cursors[tag] = chart_cell(by_tag[tag], tag, x=x, t0=t0, smoothing=smoothing, log_y=log_y)
            cells.append(cell)
        sections.append(section(prefix, cells))
    return sections, cursors


def _controls_of(smoothing: Any, log: Any, x: Any) -> tuple[str, float, bool]:
    return (x if x in ("step", "wall_time") else "step"), float(smoothing or 0), "log" in (log or [])


def update_charts(
    store: Store, run_id: int, t0: int, cursors: dict[str, dict], chart_tags: list[str], *, x: str, smoothing: float,
    log_y: bool,
) -> tuple[Any, list[Any], list[Any], dict[str, dict]]:
    """One poll: ``(children patch, extendData per chart, figure per chart, new cursors)``.

    ``chart_tags`` are the tags of the charts on the page, in the order Dash lists them.
    """
    fresh = store.scalars_after(run_id, live.store_cursors(cursors), max_items=MAX_POINTS)
    extend: list[Any] = [dash.no_update] * len(chart_tags)
    figures: list[Any] = [dash.no_update] * len(chart_tags)
    if fresh.empty:
        return dash.no_update, extend, figures, dash.no_update
    cursors = dict(cursors)
    by_tag = dict(tuple(fresh.groupby("tag", sort=False)))
    for i, tag in enumerate(chart_tags):
        points = by_tag.get(tag)
        if points is None or tag not in cursors:
            continue
        if live.needs_redraw(cursors[tag], len(points)):
            full = store.scalars(run_id, [tag], max_items=MAX_POINTS)
            figures[i], state = scalar_figure(full, tag, x=x_mode_for(tag, x), t0=t0, smoothing=smoothing, log_y=log_y)
            cursors[tag] = live.cursor_for(full, ema_state=state)
        else:
            extend[i], cursors[tag] = live.extension(points, cursors[tag], x=x_mode_for(tag, x), t0=t0,
                                                     smoothing=smoothing)  # fmt: skip
    children: Any = dash.no_update
    ops = live.insertions(list(cursors), [t for t in by_tag if t not in cursors])
    if ops:
        children = Patch()
        for kind, index, position, tag in ops:
            cell, cursors[tag] = chart_cell(by_tag[tag], tag, x=x, t0=t0, smoothing=smoothing, log_y=log_y)
            if kind == "section":
                children.insert(index, section(tag_prefix(tag), [cell]))
            else:
                children[index]["props"]["children"][1]["props"]["children"].insert(position, cell)
    return children, extend, figures, cursors


FILTER_TAGS = """
function(filter, _children) {
    const text = (filter || '').trim();
    let match = null;
    if (text) {
        try { const re = new RegExp(text, 'i'); match = t => re.test(t); }
        catch (e) { const low = text.toLowerCase(); match = t => t.toLowerCase().includes(low); }
    }
    const apply = () => {
        const cells = Array.from(document.querySelectorAll('#run-charts .chart-cell[data-tag]'));
        let shown = 0;
        cells.forEach(c => { const on = !match || match(c.dataset.tag); c.style.display = on ? '' : 'none';
                             shown += on ? 1 : 0; });
        document.querySelectorAll('#run-charts .chart-section').forEach(s => {
            s.style.display = Array.from(s.querySelectorAll('.chart-cell')).some(c => c.style.display !== 'none')
                ? '' : 'none';
        });
        const label = document.getElementById('run-tags-shown');
        if (label) { label.textContent = match ? `${shown} of ${cells.length} charts` : ''; }
    };
    setTimeout(apply, 0);  // after React has drawn new charts
    return window.dash_clientside.no_update;
}
"""
"""Clientside: show only the charts whose tag matches the filter (a regular expression, case-insensitive; a
malformed one matches as plain text), again whenever the charts change; say how many are shown."""


def view_href(run_id: int, smoothing: Any, log: Any, x: Any, tags: Any, hist: Any, options: Any, mode: Any) -> str:
    """The URL of the run page with these controls (defaults left out; the first histogram tag is the default)."""
    x, smoothing, log_y = _controls_of(smoothing, log, x)
    first = options[0]["value"] if options else None
    return urls.run(run_id, x=x, smoothing=smoothing, log=log_y, tags=(tags or "").strip() or None,
                    hist=hist if hist != first else None, hmode=mode if mode not in (None, "ridge") else None)  # fmt: skip


def register(app: dash.Dash, store: Store) -> None:
    """The poll that grows the charts (``run-poll``), the controls that redraw them, and the poll of the header
    (``run-refresh``, which also stops the charts' poll once the run has ended); the address bar follows the
    controls (a picked histogram is a step back/forward can return to; a slider's moves replace it); the imported
    images' sliders."""
    histogram_section.register(app, store)
    media_page.register(app, store)
    app.clientside_callback(FILTER_TAGS, Output("run-tags-shown", "title"), Input("run-tags", "value"),
                            Input("run-charts", "children"))  # fmt: skip

    @app.callback(
        Output(history.ADDRESS, "data", allow_duplicate=True),
        Input("run-smoothing", "value"), Input("run-log", "value"), Input("run-x", "value"),
        Input("run-tags", "value"), Input("hist-tag", "value"), Input("hist-mode", "value"),
        State("run-id", "data"), State("hist-tag", "options"),
        prevent_initial_call=True,
    )  # fmt: skip
    def address(smoothing: Any, log: Any, x: Any, tags: Any, hist: Any, mode: Any, run_id: int, options: Any) -> dict:
        href = view_href(int(run_id), smoothing, log, x, tags, hist, options, mode)
        return history.address(href, push=ctx.triggered_id in ("hist-tag", "hist-mode"))

    app.clientside_callback(
        GATE_POLL,
        Output("run-poll", "disabled", allow_duplicate=True),
        Output("run-tick", "data"),
        Input("run-poll", "n_intervals"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("run-charts", "children"),
        Output({"type": "scalar-chart", "tag": ALL}, "extendData"),
        Output({"type": "scalar-chart", "tag": ALL}, "figure"),
        Output("run-cursors", "data"),
        Output("run-drawn", "data"),
        Output("run-poll", "disabled", allow_duplicate=True),
        Output("run-polled", "data"),
        Input("run-tick", "data"),
        Input("run-smoothing", "value"),
        Input("run-log", "value"),
        Input("run-x", "value"),
        State("run-id", "data"),
        State("run-t0", "data"),
        State("run-cursors", "data"),
        State("run-drawn", "data"),
        State("run-ended", "data"),
        prevent_initial_call=True,
    )
    def charts(
        _tick: Any, smoothing: Any, log: Any, x_value: Any, run_id: int, t0_text: str, cursors: dict, drawn: list,
        ended: bool,
    ) -> tuple:
        return (*_charts(smoothing, log, x_value, run_id, t0_text, cursors, drawn), bool(ended), _now_ms())

    def _charts(smoothing: Any, log: Any, x_value: Any, run_id: int, t0_text: str, cursors: dict, drawn: list) -> tuple:
        x, smoothing, log_y = _controls_of(smoothing, log, x_value)
        t0 = int(t0_text)
        chart_tags = [out["id"]["tag"] for out in ctx.outputs_list[1]]
        # Redraw when a control changed, or when the charts were drawn with other controls: a poll that superseded
        # the redraw of a control change (Dash keeps only the newest call) must not extend them in the new mode.
        if ctx.triggered_id != "run-tick" or list(drawn or []) != [x, smoothing, log_y]:
            sections, cursors = chart_sections(
                store.scalars_downsampled(run_id, MAX_POINTS), x=x, t0=t0, smoothing=smoothing, log_y=log_y
            )
            none = [dash.no_update] * len(chart_tags)
            return sections, none, none, cursors, [x, smoothing, log_y]
        return (*update_charts(store, run_id, t0, cursors or {}, chart_tags, x=x, smoothing=smoothing, log_y=log_y),
                dash.no_update)  # fmt: skip

    @app.callback(
        Output("run-status", "children"),
        Output("run-status", "className"),
        Output("run-elapsed", "children"),
        Output("run-steps", "children"),
        Output("run-rate", "children"),
        Output("run-latest", "children"),
        Output("run-error", "children"),
        Output("run-dropped", "children"),
        Output("run-artifacts", "children"),
        Output("run-alert", "children"),
        Output("run-samples", "data"),
        Output("run-ended", "data"),
        Output("run-poll", "disabled", allow_duplicate=True),
        Input("run-refresh", "n_intervals"),
        State("run-id", "data"),
        State("run-samples", "data"),
        State("run-cursors", "data"),
        State("run-polled", "data"),
        prevent_initial_call=True,
    )
    def header(_n: Any, run_id: int, samples: list[list[int]], cursors: dict, polled: int | None) -> tuple:
        run = store.run(run_id)
        last = store.last_scalars([run_id])
        training = last[~last["tag"].str.startswith(SYSTEM_PREFIX + "/")]
        if training.empty:
            last_step = last_wall = None
        else:
            newest = training.loc[training["step"].idxmax()]
            last_step, last_wall = int(newest["step"]), int(training["wall_time"].max())
        samples = live.add_sample(samples or [], last_wall, last_step)
        recent = samples if run["status"] == "running" else []  # an ended run: its average speed
        rate = live.steps_per_second(recent, run["started_at"], last_step, last_wall)
        parts = header_parts(run, rate)
        artifacts = store.run_artifacts(run_id)
        ended = run["status"] in ENDED
        stalled = not ended and _now_ms() - int(polled or 0) > POLL_STALLED_MS
        return (
            parts["status"], parts["status_class"], parts["elapsed"], parts["steps"], parts["rate"],
            latest_values(last), parts["error"], parts["dropped"],
            artifacts_block(run_id, artifacts, run.get("source") == "import"),
            alert_block(run_id, live.alerts(cursors or {}), artifacts), samples, ended,
            False if stalled else dash.no_update,
        )  # fmt: skip
