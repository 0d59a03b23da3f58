"""``/graph/<run>``: the executed graph of a run (or its imported TensorBoard graph) and a tensor inspector.

Query parameters: ``step`` (a captured step; default the last), ``node`` (a module path, node name or id to open
and select), ``graph`` (an imported graph's id), ``color`` (a colour-by mode), ``params=0`` (hide parameters), ``view=fx`` (the
FX graphs torch.compile made, instead of the executed graph). The
address bar follows the view: going to a step or a node is a history entry (back returns), a colour or the hidden
parameters replace the current one.
Positions are computed on the server (:mod:`torchscope.dashboard.views.graph.layout`) and drawn with a ``preset``
layout, so opening a module moves its neighbours aside and nothing else. The view's state and its transitions are
pure (:mod:`torchscope.dashboard.views.graph.state`): each callback maps its trigger to one event and draws the
state ``step`` returns.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import replace
from functools import partial
from typing import Any, cast

import dash
import dash_cytoscape as cyto
from dash import ALL, Input, Output, State, clientside_callback, ctx, dcc, html

from torchscope.dashboard import history, urls
from torchscope.dashboard.scripts import CYTOSCAPE, FirstPaint
from torchscope.dashboard.views.graph.colors import MODES
from torchscope.dashboard.views.graph.fx_view import fx_place, fx_view
from torchscope.dashboard.views.graph.data import GraphData, parse_int
from torchscope.dashboard.views.graph.elements import stylesheet
from torchscope.dashboard.views.graph.inspector import inspector
from torchscope.dashboard.views.graph.layout import MODULE_H
from torchscope.dashboard.views.graph.render import Scene, breadcrumb, draw, model_for, view_href
from torchscope.dashboard.views.graph.state import (
    CollapseAll, Event, ExpandAll, Find, GraphState, JumpTo, OpenCrumb, SetColour, SetHide, ShowGraph, ShowStep, Tap,
    default_expanded, step,
)  # fmt: skip
from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.store import Store

_DATA: weakref.WeakKeyDictionary[Store, GraphData] = weakref.WeakKeyDictionary()
_DATA_LOCK = threading.Lock()


def graph_data(store: Store) -> GraphData:
    """The page's reads of ``store`` and their caches (bounded: a few models and steps, least recently used out).

    One per store, shared by the layout and the callbacks, and gone with the store: the reads hold the store only
    weakly, so the entry does not keep its own key alive."""
    with _DATA_LOCK:
        data = _DATA.get(store)
        if data is None:
            data = _DATA[store] = GraphData(cast(Store, weakref.proxy(store)))
    return data


def _colour(query: dict[str, str], compare: int | None) -> str:
    colour = query.get("color", "compare" if compare is not None else "op")
    if colour not in MODES or (colour == "compare" and compare is None):
        raise BadRequestError(f"color must be one of {', '.join(m for m in MODES if m != 'compare')}, not {colour!r}")
    return colour


def _compare(data: GraphData, run_id: int, source: str, query: dict[str, str]) -> int | None:
    compare = parse_int(query.get("compare"), "compare")
    if compare is not None:
        data.store.run(compare)  # NotFoundError (404) for an unknown run
        if source != "captured" or data.source(compare) != "captured":
            raise NotFoundError(f"compare needs a captured graph in both runs ({run_id} and {compare})")
    return compare


def _captured_graph(data: GraphData, run_id: int, query: dict[str, str]) -> dict[str, Any]:
    """``key`` (the step: ``?step=``, default the last), ``version``, ``model`` and ``several`` of a captured run."""
    step_ = parse_int(query.get("step"), "step")
    steps = data.steps(run_id)
    wanted = query.get("model")
    if wanted is not None and "model" in steps:
        steps = steps[steps["model"] == wanted]
        if steps.empty:
            raise NotFoundError(f"run {run_id} has no watched model {wanted!r}")
    key = int(steps["step"].iloc[-1]) if step_ is None else step_
    version, model = data.locate(run_id, key, wanted)
    several = bool("model" in steps and data.steps(run_id)["model"].nunique() > 1)
    return {"key": key, "version": version, "model": model, "several": several}


def _imported_graph(data: GraphData, run_id: int, query: dict[str, str]) -> dict[str, Any]:
    """``key``: the imported graph ``?graph=`` (default the first)."""
    graphs = data.imported_graphs(run_id)
    wanted = parse_int(query.get("graph"), "graph")
    if wanted is not None and wanted not in [g for g, _ in graphs]:
        raise NotFoundError(f"run {run_id} has no imported graph {wanted}")
    return {"key": graphs[0][0] if wanted is None else wanted}


def _initial_state(data: GraphData, run_id: int, query: dict[str, str]) -> GraphState:
    """The state a URL asks for (see the module's docstring); NotFoundError or BadRequestError when it cannot be."""
    source = data.source(run_id)
    if source is None:
        raise NotFoundError(f"run {run_id} has no graph")
    compare = _compare(data, run_id, source, query)
    choice = _captured_graph if source == "captured" else _imported_graph
    hide = query.get("params", "1") in ("0", "no", "false")
    state = GraphState(run=run_id, source=source, compare=compare, colour=_colour(query, compare), hide=hide,
                       **choice(data, run_id, query))  # fmt: skip
    model_of = partial(model_for, data)
    state = replace(state, expanded=tuple(sorted(default_expanded(model_of(state)))))
    if query.get("node"):
        found = data.find(state.to_json(), query["node"])
        if found is None:
            raise NotFoundError(f"no node or module {query['node']!r} in this graph")
        state = step(model_of, state, Find(found, query["node"]))
    return state


def first_paint(query: dict[str, str]) -> FirstPaint:
    """The graph's canvas, and the inspector's charts when the URL selects a node
    (:func:`torchscope.dashboard.routes.first_paint`)."""
    return FirstPaint(plotly="basic" if query.get("node") else None, components=(CYTOSCAPE,))


def layout(store: Store, *, refresh_ms: int, query: dict[str, str], run_id: str) -> Any:
    """The graph page of one run; NotFoundError (404) for an unknown run, step, graph or node."""
    run = store.run(int(run_id))
    data = graph_data(store)
    title = html.H1(["Graph · ", dcc.Link(run["name"], href=urls.run(run["id"]))])
    if data.source(int(run_id)) is None:
        return html.Div([title, html.P("This run has no graph: call run.watch(model) before training, or import "
                                       "TensorBoard logs that hold one (torchscope import).", className="muted",
                                       id="graph-empty")])  # fmt: skip
    state = _initial_state(data, int(run_id), query)
    scene = draw(data, state)
    anomaly = data.first_anomaly(int(run_id)) if state.source == "captured" else None
    over = fx_place(data, state)
    mode = _mode(query, bool(over))
    if mode == "fx":  # the FX view the URL asks for, drawn with the page
        over[0].style, over[0].children = {"display": "flex"}, fx_view(data, state)
    return html.Div(
        [
            dcc.Store(id="graph-state", data=_saved(data, state)),
            dcc.Store(id="graph-focus", data=state.focus.to_json(0) if state.focus else None),
            dcc.Store(id="graph-selection", data=state.selection().to_json()),
            dcc.Store(id="graph-mode-shown", data=mode),  # "executed" or "fx": the address bar's ``view``
            title,
            html.Div(_toolbar(data, state, anomaly, mode), className="graph-toolbar"),
            html.Div(_versions(data, state), id="graph-versions", className="graph-versions"),
            html.Div(scene.crumbs, id="graph-crumbs", className="graph-crumbs"),
            html.Div([_canvas(scene, over),
                      html.Aside(inspector(data, state), id="graph-inspector", className="graph-inspector")],
                     className="graph-body"),  # fmt: skip
            html.Div(id="graph-focus-done", style={"display": "none"}),
            # a run still training adds captured steps (and maybe anomalies): the step list follows them
            dcc.Interval(id="graph-refresh", interval=max(5 * refresh_ms, 2000), disabled=state.source != "captured"),
        ],
        className="graph-page",
    )


def _canvas(scene: Scene, over: list[Any]) -> html.Div:
    """The Cytoscape canvas with its status line and edge hover, the legend below it; ``over``: what may be laid
    over both (the FX view)."""
    stage = html.Div(
        [
            cyto.Cytoscape(
                id="graph-cy", elements=scene.elements, stylesheet=stylesheet(),
                layout={"name": "preset", "fit": True, "padding": 30}, minZoom=0.05, maxZoom=1.6,
                boxSelectionEnabled=False, autoRefreshLayout=False, className="graph-canvas",
                style={"width": "100%", "height": "100%"},
            ),  # fmt: skip
            html.Div(scene.status, id="graph-status", className="graph-status"),
            html.Div("", id="graph-hover", className="graph-hover"),
        ],
        className="graph-stage",
    )
    # the legend is a strip below the canvas, never laid over it: it would hide nodes
    return html.Div(
        [stage, html.Div(scene.legend, id="graph-legend"), *over],
        className="graph-main",
        id="graph-executed",
    )


def _saved(data: GraphData, state: GraphState, *, push: bool = False) -> dict[str, Any]:
    """The ``graph-state`` store: the state, the URL of what it shows (the address bar follows it) and whether
    that URL is a new history entry (``push``: a step, a node the user went to) or replaces the current one."""
    return {**state.to_json(), "href": view_href(model_for(data, state), state), "push": push}


PUSHED = (Tap, Find, JumpTo, ShowStep, ShowGraph, OpenCrumb)
"""Events that go somewhere (another step or graph, a selected node): back returns to where the user was. Colour,
hidden parameters and expand/collapse all replace the current entry."""


def _step_options(data: GraphData, run_id: int) -> list[dict[str, Any]]:
    """One option per captured step and watched model; the value is ``"<step>@<model>"``."""
    steps = data.steps(run_id)
    models = steps["model"] if "model" in steps else [None] * len(steps)
    several = len(set(models)) > 1
    return [{"label": (f"{m} · " if several else "") + f"step {s} (v{v})", "value": _step_value(int(s), m)}
            for s, v, m in zip(steps["step"], steps["version_id"], models)]  # fmt: skip


def _step_value(step_: int, model: str | None) -> str:
    return f"{step_}@{model}" if model is not None else str(step_)


def _shown_value(state: GraphState) -> int | str:
    """The step picker's value for what ``state`` shows: ``"<step>@<model>"`` or an imported graph's id."""
    return _step_value(state.key, state.model) if state.source == "captured" else state.key


def _parse_step_value(value: str) -> tuple[int, str | None]:
    step_, _, model = str(value).partition("@")
    return int(step_), (model if _ else None)


def _jump_title(anomaly: dict[str, Any] | None) -> str:
    if anomaly is None:
        return "no NaN/Inf was captured"
    return f"step {anomaly['step']}: {anomaly['op'] or anomaly['name']} in {anomaly['module'] or '(root)'}"


def _mode(query: dict[str, str], has_fx: bool) -> str:
    """The view a URL asks for: ``executed`` (default) or ``fx``; NotFoundError for ``fx`` in a run without FX."""
    mode = query.get("view", "executed")
    if mode not in ("executed", "fx"):
        raise BadRequestError(f"view must be executed or fx, not {mode!r}")
    if mode == "fx" and not has_fx:
        raise NotFoundError("this run recorded no FX graph (torch.compile or watch.export)")
    return mode


def _toolbar(data: GraphData, state: GraphState, anomaly: dict[str, Any] | None, mode: str = "executed") -> list[Any]:
    if state.source == "captured":
        options, what = _step_options(data, state.run), "Step "
        modes = [{"label": v, "value": k} for k, v in MODES.items() if k != "compare" or state.compare]
    else:
        options = [{"label": label, "value": g} for g, label in data.imported_graphs(state.run)]
        what = "Graph "
        modes = [{"label": MODES["op"], "value": "op"}]
    value = _shown_value(state)
    dropdown = dcc.Dropdown(id="graph-step", options=options, value=value, clearable=False, className="graph-step")
    picker = html.Label([what, dropdown], className="control")
    fx = []
    if state.source == "captured" and not data.store.fx_graph(state.run, state.model).empty:
        fx = [dcc.RadioItems(id="graph-mode", options=[{"label": " executed", "value": "executed"},
                                                       {"label": " FX (torch.compile)", "value": "fx"}],
                             value=mode, inline=True, className="control")]  # fmt: skip
    return [
        picker,
        *fx,
        html.Label(["Colour by ", dcc.Dropdown(id="graph-colour", options=modes, value=state.colour, clearable=False,
                                               className="graph-colour")], className="control"),  # fmt: skip
        dcc.Checklist(id="graph-hide", options=[{"label": " hide parameters", "value": "hide"}],
                      value=["hide"] if state.hide else [], className="control"),  # fmt: skip
        html.Div([dcc.Input(id="graph-search", type="search", placeholder="find a node or module", debounce=True,
                            style={"width": "200px"}),
                  html.Button("Find", id="graph-find")], className="control search"),  # fmt: skip
        html.Button("Expand all", id="graph-expand-all"),
        html.Button("Collapse all", id="graph-collapse-all"),
        html.Button("Jump to first anomaly", id="graph-jump", disabled=anomaly is None, title=_jump_title(anomaly)),
        html.Span("", id="graph-message", className="graph-message"),
    ]


def _versions(data: GraphData, state: GraphState) -> list[Any]:
    if state.source != "captured":
        return []
    versions = data.store.graph_versions(state.run, state.model)
    if len(versions) < 2:
        return []
    items = [
        html.Span(f"v{r.id}: {r.n_ops} ops, first at step {r.first_step}, {r.n_steps} steps",
                  className="version" + (" current" if r.id == state.version else ""))
        for r in versions.itertuples()
    ]  # fmt: skip
    return [html.Span(f"{len(versions)} graph versions (control flow changed the graph): "), *items,
            html.Span(" — nodes only in the shown version have a dashed orange border", className="muted")]


def _event(data: GraphData, state: GraphState, trigger: Any, values: dict[str, Any]) -> Event:
    """The event a trigger of :func:`register`'s ``update`` stands for (``values``: the inputs, by name), resolved
    against the store (a search to a node id, a picked step to its graph version). PreventUpdate when it is none."""
    if trigger == "graph-cy" and values["tap"]:
        at = values["tap"].get("renderedPosition")
        return Tap(int(values["tap"]["data"]["id"]), (at["x"], at["y"]) if at else None)
    if isinstance(trigger, dict):  # a breadcrumb: a click, or a new set of buttons (no click: nothing to do)
        if not any(values["crumbs"] or []):
            raise dash.exceptions.PreventUpdate
        return OpenCrumb(int(trigger["index"]))
    if trigger in ("graph-search", "graph-find"):
        text = values["search"] or ""
        return Find(data.find(state.to_json(), text), text)
    if trigger == "graph-step" and state.source != "captured":
        return ShowGraph(values["step"])
    if trigger == "graph-step":
        picked, model = _parse_step_value(values["step"])
        return ShowStep(picked, *data.locate(state.run, picked, model))
    if trigger == "graph-jump" and (first := data.first_anomaly(state.run)) is not None:
        return JumpTo(int(first["step"]), int(first["version_id"]), first.get("model"), int(first["node"]))
    simple: dict[Any, Event] = {
        "graph-expand-all": ExpandAll(), "graph-collapse-all": CollapseAll(),
        "graph-colour": SetColour(values["colour"]), "graph-hide": SetHide(bool(values["hide"])),
    }  # fmt: skip
    if trigger in simple:
        return simple[trigger]
    raise dash.exceptions.PreventUpdate  # no tap data, or a jump in a run without anomalies: nothing to do


def _outputs(data: GraphData, state: GraphState, event: Event, was: dict[str, Any]) -> tuple[Any, ...]:
    """What ``update`` sends for ``state`` after ``event``; ``was``: the ``focus``, ``selection`` and ``picked``
    step it was called with (outputs that would not change are left alone)."""
    no = dash.no_update
    selection = state.selection().to_json()
    selection_out = selection if selection != was["selection"] else no
    if isinstance(event, Tap) and state.focus is None:  # a plain node was clicked: nothing to redraw but the crumbs
        crumbs = breadcrumb(model_for(data, state), state.selected, state.expanded)
        return no, no, crumbs, no, _saved(data, state, push=True), no, "", no, no, selection_out
    scene = draw(data, state)
    n = (was["focus"] or {}).get("n", 0) + 1
    focus = state.focus.to_json(n) if state.focus is not None else no
    shown = _shown_value(state)
    saved = _saved(data, state, push=isinstance(event, PUSHED))
    return (scene.elements, scene.legend, scene.crumbs, scene.status, saved, focus, state.message,
            shown if shown != was["picked"] else no, _versions(data, state), selection_out)  # fmt: skip


def register(app: dash.Dash, store: Store) -> None:
    """One callback turns clicks, buttons and controls into an event, the next state and a redrawn graph; one
    follows a live run's new steps; one fills the inspector; clientside ones move the view and the address bar."""
    data = graph_data(store)
    model_of = partial(model_for, data)

    @app.callback(
        Output("graph-cy", "elements"), Output("graph-legend", "children"), Output("graph-crumbs", "children"),
        Output("graph-status", "children"), Output("graph-state", "data"), Output("graph-focus", "data"),
        Output("graph-message", "children"), Output("graph-step", "value"), Output("graph-versions", "children"),
        Output("graph-selection", "data"),
        Input("graph-cy", "tapNode"), Input("graph-expand-all", "n_clicks"), Input("graph-collapse-all", "n_clicks"),
        Input({"type": "graph-crumb", "index": ALL}, "n_clicks"), Input("graph-search", "value"),
        Input("graph-find", "n_clicks"), Input("graph-jump", "n_clicks"), Input("graph-step", "value"),
        Input("graph-colour", "value"), Input("graph-hide", "value"),
        State("graph-state", "data"), State("graph-focus", "data"), State("graph-selection", "data"),
        prevent_initial_call=True,
    )  # fmt: skip
    def update(  # noqa: PLR0913 - one argument per input of the callback
        tap, _all, _none, crumbs, search, _find, _jump, picked, colour, hide, saved, focus, selection
    ) -> tuple[Any, ...]:
        state = GraphState.from_json(saved)
        values = {"tap": tap, "crumbs": crumbs, "search": search, "step": picked, "colour": colour, "hide": hide}
        event = _event(data, state, ctx.triggered_id, values)
        after = step(model_of, state, event)
        return _outputs(data, after, event, {"focus": focus, "selection": selection, "picked": picked})

    @app.callback(
        Output("graph-step", "options"), Output("graph-jump", "disabled"), Output("graph-jump", "title"),
        Input("graph-refresh", "n_intervals"), State("graph-state", "data"), State("graph-step", "options"),
        prevent_initial_call=True,
    )
    def refresh(_n: int, saved: dict[str, Any], shown: list[dict[str, Any]]) -> tuple[Any, ...]:
        if saved["source"] != "captured":
            raise dash.exceptions.PreventUpdate
        options = _step_options(data, saved["run"])
        anomaly = data.first_anomaly(saved["run"])
        return (options if options != shown else dash.no_update), anomaly is None, _jump_title(anomaly)

    @app.callback(
        Output("graph-fx", "style"), Output("graph-fx", "children"), Output("graph-mode-shown", "data"),
        Input("graph-mode", "value"), State("graph-state", "data"), prevent_initial_call=True,
    )
    def show_mode(mode: str, saved: dict[str, Any]) -> tuple[Any, ...]:
        """The toggle between the executed graph and the FX graphs torch.compile (or torch.export) made of it."""
        if mode == "fx":
            return {"display": "flex"}, fx_view(data, GraphState.from_json(saved)), "fx"
        return {"display": "none"}, [], "executed"

    @app.callback(Output("graph-inspector", "children"), Input("graph-selection", "data"), prevent_initial_call=True)
    def inspect(selection: dict[str, Any]) -> Any:
        return inspector(data, GraphState.from_json(selection))

    _register_clientside()


def _register_clientside() -> None:
    """Centre the view once Cytoscape has drawn; keep the address bar on the view; name the tensor under the mouse."""
    # centre the view on a node (or fit the graph) once Cytoscape has drawn the new elements
    clientside_callback(
        """
        function(focus) {
            const MODULE_H = MODULE_H_VALUE;
            if (!focus) { return window.dash_clientside.no_update; }
            let tries = 0;
            const go = () => {  // Cytoscape's library may still be loading (assets/lazy_libraries.js): look again
                const root = document.getElementById('graph-cy');
                const holder = root && [root, ...root.querySelectorAll('div')].find(d => d._cyreg && d._cyreg.cy);
                const cy = holder && holder._cyreg.cy;
                const node = cy && focus.id !== 'fit' ? cy.getElementById(focus.id) : null;
                if (cy && (focus.id === 'fit' || (node && node.nonempty()))) {
                    if (focus.id === 'fit') { cy.fit(undefined, 30); }
                    else if (focus.at) {
                        const b = node.renderedBoundingBox({includeLabels: false, includeOverlays: false});
                        const half = 0.5 * MODULE_H * cy.zoom();
                        const dy = focus.keep === 'top' ? (focus.at.y - half) - b.y1 : focus.at.y - (b.y1 + b.y2) / 2;
                        cy.panBy({x: focus.at.x - (b.x1 + b.x2) / 2, y: dy});
                    } else {
                        cy.zoom(Math.max(cy.zoom(), 1.0));  // readable labels
                        cy.center(node);
                    }
                    if (focus.id !== 'fit') { cy.$(':selected').unselect(); node.select(); }
                    root.dataset.focused = focus.id + ':' + focus.n;
                } else if (tries++ < 200) { setTimeout(go, 50); }  // for 10 s at most
            };
            setTimeout(go, 30);
            return '';
        }
        """.replace("MODULE_H_VALUE", str(MODULE_H)),
        Output("graph-focus-done", "children"),
        Input("graph-focus", "data"),
    )
    # the address bar follows the view (dashboard/history.py), so it can be shared, reloaded and gone back to
    # (``view=fx`` is the last parameter urls.graph writes, so it is appended here; the toggle is a history entry)
    clientside_callback(
        """
        function(state, mode) {
            if (!state || !state.href) { return window.dash_clientside.no_update; }
            const ctx = window.dash_clientside.callback_context;
            const ids = (ctx.triggered || []).map(t => t.prop_id.split('.')[0]);
            const toggled = ids.length === 1 && ids[0] === 'graph-mode-shown';  // not the first call (both)
            const href = mode === 'fx' ? state.href + (state.href.includes('?') ? '&' : '?') + 'view=fx' : state.href;
            return {href: href, push: toggled || !!state.push};
        }
        """,
        Output(history.ADDRESS, "data", allow_duplicate=True),
        Input("graph-state", "data"),
        Input("graph-mode-shown", "data"),
        prevent_initial_call="initial_duplicate",
    )
    clientside_callback(
        "function(edge) { return edge ? 'tensor ' + edge.shapes : ''; }",
        Output("graph-hover", "children"),
        Input("graph-cy", "mouseoverEdgeData"),
    )
