"""``/timeline/<id>``: lanes per thread and stream, zoom and pan answered by the server for the visible window only.

Query parameters ``start`` and ``end`` (ns since the profile start), ``q`` (search) and ``event`` (an event id to
select) open a given view; ``ranks=1`` (``&step=N``) shows every rank of the profile's group side by side, aligned on
``ProfilerStep#N`` (``views/timeline/ranks.py``). The address bar and the "link to this view" anchor follow the view
(a zoom, pan or search replaces the current history entry, a selected event adds one, so back returns to it). Every zoom or pan (plotly's
relayout event) asks the store for that window at the level of detail of the graph's width; a click on an event
shows its details and draws its launch link, a click on a density block zooms into it, a click on the minimap
centres the view there.
"""

from __future__ import annotations

from typing import Any

import dash
import orjson
from dash import Input, Output, Patch, State, ctx, dcc, html

from torchscope.dashboard import history, urls
from torchscope.dashboard.components import plot_config
from torchscope.dashboard.scripts import FirstPaint
from torchscope.dashboard.views.timeline.figures import minimap_figure, minimap_window, timeline_figure
from torchscope.dashboard.views.timeline.ranks import ranks_view
from torchscope.errors import BadRequestError, TorchscopeError
from torchscope.dashboard.formatting import fmt_duration, fmt_ms, fmt_us
from torchscope.storage.profile.records import input_args
from torchscope.storage.store import Store

PX = 1200  # level of detail budget: the plot's width in pixels (about what a laptop screen gives it)
MAX_ITEMS = 3000
MAX_BLOCKS = 2000
GRAPH_CONFIG = plot_config(scrollZoom=True, modeBarButtonsToRemove=["select2d", "lasso2d"])
IN_FIRST_LAYOUT = True
"""Opened from its URL, the page comes with the app's layout (no router round trip before the first paint): its one
callback has its inputs and outputs in the page, but for the address, which the router's insertion would only fire
to draw the view already drawn."""


def _int(query: dict[str, str], key: str) -> int | None:
    if query.get(key) in (None, ""):
        return None
    try:
        return int(float(query[key]))
    except ValueError as exc:
        raise BadRequestError(f"{key} must be a number of nanoseconds, not {query[key]!r}") from exc


def clamp_window(start: int | None, end: int | None, duration: int) -> tuple[int, int]:
    """A valid window inside the profile (whole profile by default; at least 1 µs wide)."""
    a = 0 if start is None else max(int(start), 0)
    b = duration + 1 if end is None else min(int(end), duration + 1)
    if b - a < 1000:
        mid = (a + b) // 2
        a, b = max(mid - 500, 0), mid + 500
    return a, b


def parse_relayout(relayout: dict[str, Any] | None) -> tuple[int, int] | str | None:
    """The new window (ns) of a plotly relayout event, ``"all"`` for autorange (double click), None otherwise."""
    if not relayout:
        return None
    if relayout.get("xaxis.autorange"):
        return "all"
    if "xaxis.range[0]" in relayout and "xaxis.range[1]" in relayout:
        lo, hi = relayout["xaxis.range[0]"], relayout["xaxis.range[1]"]
    elif isinstance(relayout.get("xaxis.range"), list):
        lo, hi = relayout["xaxis.range"]
    else:
        return None
    return int(float(lo) * 1e6), int(float(hi) * 1e6)


def window_figure(
    store: Store, profile_id: int, start: int | None, end: int | None, query: str, event_id: int | None, px: int = PX,
    ranks: bool = False, step: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Everything one view needs: the figure, the window, the selected event and the counts shown above it."""
    meta = store.profile(profile_id)
    a, b = clamp_window(start, end, int(meta["duration_ns"]))
    if ranks:
        return ranks_view(store, profile_id, a, b, query, event_id, step, px, MAX_ITEMS, MAX_BLOCKS)
    lanes = store.timeline_lanes(profile_id)
    events, blocks = store.timeline_window(profile_id, a, b, px=px, max_items=MAX_ITEMS, max_blocks=MAX_BLOCKS)
    matches = store.timeline_search(profile_id, query, a, b) if query else None
    selected = None
    if event_id is not None:
        try:
            selected = store.timeline_event(profile_id, int(event_id))
        except TorchscopeError:
            selected = None
    fig = timeline_figure(lanes, events, blocks, start_ns=a, end_ns=b, matches=matches, selected=selected)
    return {
        "figure": fig, "start": a, "end": b, "selected": selected, "events": len(events), "blocks": len(blocks),
        "in_window": int(events.attrs.get("in_window", 0)),
        "matches": None if matches is None else int(matches.attrs.get("total", 0)),
    }  # fmt: skip


def _status(view: dict[str, Any]) -> str:
    text = (f"{fmt_duration(view['end'] - view['start'])} window · {view['in_window']:,} events · "
            f"{view['events']:,} drawn, {view['blocks']:,} density blocks")  # fmt: skip
    if view["matches"] is not None:
        text += f" · {view['matches']:,} matches"
    return text


def _share(profile_id: int, view: dict[str, Any], query: str) -> str:
    return urls.timeline(profile_id, start=view["start"], end=view["end"], q=query or None,
                         event=view["selected"]["id"] if view["selected"] else None, ranks="step" in view,
                         step=view.get("step"))  # fmt: skip


def _ranks_toggle(store: Store, pid: int, view: dict[str, Any]) -> Any:
    """"all ranks side by side" (or back to this rank alone) when the profile belongs to a group of several ranks."""
    if len(store.rank_group(pid)) < 2:
        return None
    if "step" in view:
        return dcc.Link("this rank only", id="tl-ranks", href=urls.timeline(pid, start=view["start"], end=view["end"]),
                        style={"whiteSpace": "nowrap"})  # fmt: skip
    return dcc.Link("all ranks side by side", id="tl-ranks", style={"whiteSpace": "nowrap"},
                    href=urls.timeline(pid, start=view["start"], end=view["end"], ranks=True))  # fmt: skip


def _inputs(event: dict[str, Any]) -> list[tuple[str, str]]:
    """An event's info as detail rows: an op's input args (dims, types, strides, concrete values), an 'other'
    event's category."""
    if event["kind"] == "other":
        return [("category", event["info"])]
    return [(key.lower(), orjson.dumps(value).decode()) for key, value in input_args(event["info"]).items()]


def details_panel(event: dict[str, Any] | None) -> Any:
    """The clicked event: name, lane, times, arguments, device details, call stack, launch links."""
    if not event:
        return html.P("Click an event for its details; click a grey density block to zoom into it.", className="muted")
    rows = [("kind", event["kind"]), ("lane", f"{event['group']} · {event['lane_label']}"),
            ("start", fmt_ms(event["start"], 6)), ("duration", fmt_us(event["dur"])),
            ("id", event["id"])]  # fmt: skip
    for key in ("corr", "ext_id"):
        if event.get(key) is not None:
            rows.append((key, event[key]))
    if event.get("info"):
        rows += _inputs(event)
    rows += list(event.get("details", {}).items())
    if event.get("op"):
        rows.append(("op", event["op"]["name"]))
    if event.get("stack"):
        rows.append(("stack", " › ".join(event["stack"][-6:])))
    links = [html.Li(["launched by ", _event_link(e)]) for e in event.get("launched_by", [])]
    links += [html.Li(["launched ", _event_link(e)]) for e in event.get("launched", [])]
    links += [html.Li([f"{e['flow']} flow to ", _event_link(e)]) for e in event.get("flows_out", [])]
    links += [html.Li([f"{e['flow']} flow from ", _event_link(e)]) for e in event.get("flows_in", [])]
    return html.Div(
        [
            html.H3(event["name"], className="tl-event-name"),
            html.Table([html.Tr([html.Td(str(k)), html.Td(str(v))]) for k, v in rows], className="tl-details-table"),
            html.Ul(links, className="tl-links") if links else None,
        ],
        id="tl-event",
        **{"data-event": str(event["id"])},
    )


def _event_link(e: dict[str, Any]) -> Any:
    return html.Span(f"{e['name']} ({e['kind']}, {fmt_us(e['dur'])} at {fmt_ms(e['start'], 6)})",
                     className="tl-link", **{"data-event": str(e["id"])})  # fmt: skip


def first_paint(query: dict[str, str]) -> FirstPaint:
    """Bars and markers, which plotly.js's basic bundle draws (:func:`torchscope.dashboard.routes.first_paint`)."""
    return FirstPaint(plotly="basic")


def layout(store: Store, *, refresh_ms: int, query: dict[str, str], profile_id: str) -> Any:
    """The timeline of one profile; NotFoundError (404) for an unknown id, BadRequestError for bad parameters."""
    pid = int(profile_id)
    meta = store.profile(pid)
    q = query.get("q", "")
    ranks = query.get("ranks") in ("1", "true", "yes")
    view = window_figure(store, pid, _int(query, "start"), _int(query, "end"), q, _int(query, "event"), ranks=ranks,
                         step=_int(query, "step"))  # fmt: skip
    state = {"profile_id": pid, "start": view["start"], "end": view["end"], "q": q,
             "event": view["selected"]["id"] if view["selected"] else None, "ranks": ranks, "step": view.get("step")}  # fmt: skip
    return html.Div(
        [
            dcc.Store(id="tl-state", data=state),
            html.H1(["Timeline", html.Span(meta["name"], className="muted"),
                     html.Span(f"rank {meta['rank']}", className="badge") if meta.get("rank") is not None else None]),
            html.Div(
                [
                    dcc.Link("← profile", href=urls.profile(pid)),
                    _ranks_toggle(store, pid, view),
                    dcc.Input(id="tl-search", type="search", value=q, placeholder="search events by name",
                              debounce=0.3, className="tl-search"),
                    html.Span(_status(view), id="tl-status", className="muted"),
                    html.A("link to this view", id="tl-share", href=_share(pid, view, q)),
                ],
                className="controls",
            ),  # fmt: skip
            dcc.Graph(id="tl-minimap", config=plot_config(displayModeBar=False), className="tl-minimap",
                      figure=minimap_figure(store.timeline_minimap(pid), duration_ns=int(meta["duration_ns"]),
                                            start_ns=view["start"], end_ns=view["end"])),  # fmt: skip
            dcc.Graph(id="tl-graph", figure=view["figure"], config=GRAPH_CONFIG, className="tl-graph"),
            html.Div(details_panel(view["selected"]), id="tl-details", className="tl-details"),
        ]
    )


def register(app: dash.Dash, store: Store) -> None:
    """One callback for every way the view changes: zoom/pan, search, a click on an event, block or the minimap."""

    @app.callback(
        Output("tl-graph", "figure"),
        Output("tl-minimap", "figure"),
        Output("tl-details", "children"),
        Output("tl-state", "data"),
        Output("tl-status", "children"),
        Output("tl-share", "href"),
        Output(history.ADDRESS, "data", allow_duplicate=True),
        Input("tl-graph", "relayoutData"),
        Input("tl-search", "value"),
        Input("tl-graph", "clickData"),
        Input("tl-minimap", "clickData"),
        State("tl-state", "data"),
        prevent_initial_call=True,
    )
    def update(relayout: Any, search: Any, click: Any, mini_click: Any, state: dict[str, Any]) -> tuple[Any, ...]:
        pid = int(state["profile_id"])
        a, b, event = state["start"], state["end"], state.get("event")
        # the box's current text, whatever triggered this call: a zoom answered after a search must not undo it
        q = (search or "").strip()
        trigger = ctx.triggered_id
        if trigger == "tl-graph" and "relayoutData" in ctx.triggered[0]["prop_id"]:
            window = parse_relayout(relayout)
            if window is None:
                raise dash.exceptions.PreventUpdate
            a, b = (None, None) if window == "all" else window
        elif trigger == "tl-search":
            pass  # q is read above
        elif trigger == "tl-graph":
            point = (click or {}).get("points", [{}])[0]
            data = point.get("customdata")
            if not data:
                raise dash.exceptions.PreventUpdate
            if int(data[0]) >= 0:
                event = int(data[0])
            else:  # a density block: zoom into it
                a, b = int(float(data[2])), int(float(data[3]))
        elif trigger == "tl-minimap":
            x = float((mini_click or {}).get("points", [{}])[0].get("x", 0)) * 1e6
            half = (b - a) // 2
            a, b = int(x) - half, int(x) + half
        view = window_figure(store, pid, a, b, q, event, ranks=bool(state.get("ranks")), step=state.get("step"))
        mini = Patch()  # the whole profile stays as drawn: only the window's outline moves
        mini["layout"]["shapes"] = minimap_window(view["start"], view["end"])
        new_state = {"profile_id": pid, "start": view["start"], "end": view["end"], "q": q,
                     "event": view["selected"]["id"] if view["selected"] else None, "ranks": state.get("ranks"),
                     "step": view.get("step")}  # fmt: skip
        details = details_panel(view["selected"]) if trigger == "tl-graph" or event is not None else dash.no_update
        share = _share(pid, view, q)
        # a selected event is a step back can return to; zoom, pan and search replace the current entry
        picked = new_state["event"] is not None and new_state["event"] != state.get("event")
        return view["figure"], mini, details, new_state, _status(view), share, history.address(share, push=picked)
