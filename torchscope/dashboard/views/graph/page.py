"""``/graph/<run>``: the executed graph of a run (or its imported TensorBoard graph) and a tensor inspector.

Query parameters: ``step`` (a captured step; default the last), ``node`` (a module path, node name or id to open
and select), ``graph`` (an imported graph's id), ``color`` (a colour-by mode), ``params=0`` (hide parameters).
Positions are computed on the server (:mod:`torchscope.dashboard.views.graph.layout`) and drawn with a ``preset`` layout,
so opening a module moves its neighbours aside and nothing else.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_cytoscape as cyto
from dash import ALL, Input, Output, State, clientside_callback, ctx, dcc, html

from torchscope.dashboard.views.graph.colors import MODES
from torchscope.dashboard.views.graph.elements import stylesheet
from torchscope.dashboard.views.graph.state import collapse_below, default_expanded, expand_all, expand_to, toggle
from torchscope.dashboard.views.graph.data import GraphData, parse_int
from torchscope.dashboard.views.graph.layout import MODULE_H
from torchscope.dashboard.views.graph.inspector import inspector
from torchscope.dashboard.views.graph.render import breadcrumb, draw, model_for, view_href
from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.store import Store

PATH = r"/graph/(?P<run_id>\d+)"
_DATA: dict[int, GraphData] = {}


def _data(store: Store) -> GraphData:
    data = _DATA.get(id(store))
    if data is None or data.store is not store:
        data = _DATA[id(store)] = GraphData(store)
    return data


def _initial_state(data: GraphData, run_id: int, query: dict[str, str]) -> dict[str, Any]:
    source = data.source(run_id)
    compare = parse_int(query.get("compare"), "compare")
    if compare is not None:
        data.store.run(compare)  # NotFoundError (404) for an unknown run
        if source != "captured" or data.source(compare) != "captured":
            raise NotFoundError(f"compare needs a captured graph in both runs ({run_id} and {compare})")
    colour = query.get("color", "compare" if compare is not None else "op")
    if colour not in MODES or (colour == "compare" and compare is None):
        raise BadRequestError(f"color must be one of {', '.join(m for m in MODES if m != 'compare')}, not {colour!r}")
    state: dict[str, Any] = {"run": run_id, "source": source, "hide": query.get("params", "1") in ("0", "no", "false"),
                             "colour": colour, "selected": None, "focus": None, "compare": compare}  # fmt: skip
    if source == "captured":
        step = parse_int(query.get("step"), "step")
        steps = data.steps(run_id)
        wanted_model = query.get("model")
        if wanted_model is not None and "model" in steps:
            steps = steps[steps["model"] == wanted_model]
            if steps.empty:
                raise NotFoundError(f"run {run_id} has no watched model {wanted_model!r}")
        state["key"] = int(steps["step"].iloc[-1]) if step is None else step
        state["version"], state["model"] = data.locate(run_id, state["key"], wanted_model)
        state["several"] = "model" in steps and data.steps(run_id)["model"].nunique() > 1
    else:
        graphs = data.imported_graphs(run_id)
        wanted = parse_int(query.get("graph"), "graph")
        if wanted is not None and wanted not in [g for g, _ in graphs]:
            raise NotFoundError(f"run {run_id} has no imported graph {wanted}")
        state["key"] = graphs[0][0] if wanted is None else wanted
        state["version"] = None
    model = model_for(data, state)
    state["expanded"] = sorted(default_expanded(model))
    if query.get("node"):
        found = data.find(state, query["node"])
        if found is None:
            raise NotFoundError(f"no node or module {query['node']!r} in this graph")
        state["expanded"] = sorted(expand_to(model, found, state["expanded"]))
        state["selected"] = found
        state["focus"] = {"id": str(found), "n": 0}
    state["href"] = view_href(model, state)
    return state


def layout(store: Store, *, refresh_ms: int, query: dict[str, str], run_id: str) -> Any:
    """The graph page of one run; NotFoundError (404) for an unknown run, step, graph or node."""
    run = store.run(int(run_id))
    data = _data(store)
    title = html.H1(["Graph · ", dcc.Link(run["name"], href=f"/run/{run['id']}")])
    if data.source(int(run_id)) is None:
        return html.Div([title, html.P("This run has no graph: call run.watch(model) before training, or import "
                                       "TensorBoard logs that hold one (torchscope import).", className="muted",
                                       id="graph-empty")])  # fmt: skip
    state = _initial_state(data, int(run_id), query)
    scene = draw(data, state)
    anomaly = data.first_anomaly(int(run_id)) if state["source"] == "captured" else None
    return html.Div(
        [
            dcc.Store(id="graph-state", data=state),
            dcc.Store(id="graph-focus", data=state["focus"]),
            dcc.Store(id="graph-selection", data=_selection(state)),
            title,
            html.Div(_toolbar(data, state, anomaly), className="graph-toolbar"),
            html.Div(_versions(data, state), id="graph-versions", className="graph-versions"),
            html.Div(scene.crumbs, id="graph-crumbs", className="graph-crumbs"),
            html.Div(
                [
                    html.Div(
                        [
                            cyto.Cytoscape(
                                id="graph-cy", elements=scene.elements, stylesheet=stylesheet(),
                                layout={"name": "preset", "fit": True, "padding": 30}, minZoom=0.05, maxZoom=1.6,
                                boxSelectionEnabled=False, autoRefreshLayout=False, className="graph-canvas",
                                style={"width": "100%", "height": "100%"},
                            ),  # fmt: skip
                            html.Div(scene.legend, id="graph-legend"),
                            html.Div(scene.status, id="graph-status", className="graph-status"),
                            html.Div("", id="graph-hover", className="graph-hover"),
                        ],
                        className="graph-main",
                    ),
                    html.Aside(inspector(data, state), id="graph-inspector", className="graph-inspector"),
                ],
                className="graph-body",
            ),
            html.Div(id="graph-focus-done", style={"display": "none"}),
            # a run still training adds captured steps (and maybe anomalies): the step list follows them
            dcc.Interval(
                id="graph-refresh", interval=max(5 * refresh_ms, 2000), disabled=state["source"] != "captured"
            ),
        ],
        className="graph-page",
    )


def _selection(state: dict[str, Any]) -> dict[str, Any]:
    """What the inspector shows: the selected node of one graph (opening or closing boxes does not change it)."""
    keys = ("run", "source", "key", "version", "model", "several", "compare", "selected")
    return {k: state.get(k) for k in keys}


def _step_options(data: GraphData, run_id: int) -> list[dict[str, Any]]:
    """One option per captured step and watched model; the value is ``"<step>@<model>"``."""
    steps = data.steps(run_id)
    models = steps["model"] if "model" in steps else [None] * len(steps)
    several = len(set(models)) > 1
    return [{"label": (f"{m} · " if several else "") + f"step {s} (v{v})", "value": _step_value(int(s), m)}
            for s, v, m in zip(steps["step"], steps["version_id"], models)]  # fmt: skip


def _step_value(step: int, model: str | None) -> str:
    return f"{step}@{model}" if model is not None else str(step)


def _parse_step_value(value: str) -> tuple[int, str | None]:
    step, _, model = str(value).partition("@")
    return int(step), (model if _ else None)


def _jump_title(anomaly: dict[str, Any] | None) -> str:
    if anomaly is None:
        return "no NaN/Inf was captured"
    return f"step {anomaly['step']}: {anomaly['op'] or anomaly['name']} in {anomaly['module'] or '(root)'}"


def _toolbar(data: GraphData, state: dict[str, Any], anomaly: dict[str, Any] | None) -> list[Any]:
    if state["source"] == "captured":
        options, value, what = _step_options(data, state["run"]), _step_value(state["key"], state.get("model")), "Step "
        modes = [{"label": v, "value": k} for k, v in MODES.items() if k != "compare" or state.get("compare")]
    else:
        options = [{"label": label, "value": g} for g, label in data.imported_graphs(state["run"])]
        value, what = state["key"], "Graph "
        modes = [{"label": MODES["op"], "value": "op"}]
    dropdown = dcc.Dropdown(id="graph-step", options=options, value=value, clearable=False, className="graph-step")
    picker = html.Label([what, dropdown], className="control")
    return [
        picker,
        html.Label(["Colour by ", dcc.Dropdown(id="graph-colour", options=modes, value=state["colour"], clearable=False,
                                               className="graph-colour")], className="control"),  # fmt: skip
        dcc.Checklist(id="graph-hide", options=[{"label": " hide parameters", "value": "hide"}],
                      value=["hide"] if state["hide"] else [], className="control"),  # fmt: skip
        html.Div([dcc.Input(id="graph-search", type="search", placeholder="find a node or module", debounce=True,
                            style={"width": "200px"}),
                  html.Button("Find", id="graph-find")], className="control search"),  # fmt: skip
        html.Button("Expand all", id="graph-expand-all"),
        html.Button("Collapse all", id="graph-collapse-all"),
        html.Button("Jump to first anomaly", id="graph-jump", disabled=anomaly is None, title=_jump_title(anomaly)),
        html.Span("", id="graph-message", className="graph-message"),
    ]


def _versions(data: GraphData, state: dict[str, Any]) -> list[Any]:
    if state["source"] != "captured":
        return []
    versions = data.store.graph_versions(state["run"], state.get("model"))
    if len(versions) < 2:
        return []
    items = [
        html.Span(f"v{r.id}: {r.n_ops} ops, first at step {r.first_step}, {r.n_steps} steps",
                  className="version" + (" current" if r.id == state["version"] else ""))
        for r in versions.itertuples()
    ]  # fmt: skip
    return [html.Span(f"{len(versions)} graph versions (control flow changed the graph): "), *items,
            html.Span(" — nodes only in the shown version have a dashed orange border", className="muted")]


def register(app: dash.Dash, store: Store) -> None:
    """One callback turns clicks, buttons and controls into a new state and a redrawn graph; one fills the inspector."""
    data = _data(store)

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
        tap, _all, _none, crumbs, search, _find, _jump, step, colour, hide, state, focus, picked
    ) -> tuple[Any, ...]:
        trigger = ctx.triggered_id
        if isinstance(trigger, dict) and not any(crumbs or []):
            raise dash.exceptions.PreventUpdate  # new breadcrumb buttons, not a click
        state = dict(state)
        state["colour"], state["hide"] = colour, bool(hide)
        model = model_for(data, state)
        message, target, fit, keep = "", None, False, {}
        current = _step_value(state["key"], state.get("model")) if state["source"] == "captured" else state["key"]
        if trigger == "graph-step" and step != current:
            if state["source"] == "captured":
                state["key"], model_name = _parse_step_value(step)
                version, state["model"] = data.locate(state["run"], state["key"], model_name)
                if version != state["version"]:
                    state["version"] = version
                    state["expanded"], state["selected"] = sorted(default_expanded(model_for(data, state))), None
            else:
                state["key"] = step
                state["expanded"], state["selected"] = sorted(default_expanded(model_for(data, state))), None
            model = model_for(data, state)
        elif trigger == "graph-cy" and tap:
            node_id = int(tap["data"]["id"])
            if node_id in model.nodes:
                if model.nodes[node_id].group:
                    was_open = node_id in state["expanded"]
                    state["expanded"] = sorted(toggle(model, node_id, state["expanded"]))
                    # the clicked module stays where it was on screen: its top edge when it opens, its centre
                    # when it closes (a click on a plain node redraws nothing, so nothing needs to move)
                    keep = {"at": tap.get("renderedPosition"), "keep": "centre" if was_open else "top"}
                state["selected"], target = node_id, node_id if model.nodes[node_id].group else None
        elif trigger == "graph-expand-all":
            expanded, complete = expand_all(model, state["hide"])
            state["expanded"], fit = sorted(expanded), True
            message = "" if complete else "Opened as many levels as stay readable; open deeper modules by clicking."
        elif trigger == "graph-collapse-all":
            state["expanded"], fit = sorted(default_expanded(model)), True
        elif isinstance(trigger, dict):
            box = int(trigger["index"])
            if box < 0:
                state["expanded"], fit = [], True
            else:
                state["expanded"] = sorted(collapse_below(model, box, state["expanded"]) | {box})
                state["selected"], target = box, box
        elif trigger in ("graph-search", "graph-find"):
            found = data.find(state, search or "")
            if found is None:
                message = f"nothing named {search!r}" if search else ""
            else:
                state["expanded"] = sorted(expand_to(model, found, state["expanded"]))
                state["selected"], target = found, found
        elif trigger == "graph-jump":
            first = data.first_anomaly(state["run"])
            if first is not None:
                state["key"], state["version"] = int(first["step"]), int(first["version_id"])
                state["model"] = first.get("model")
                model = model_for(data, state)
                node_id = {g: t for t, g in model.grad_of.items()}.get(int(first["node"]), int(first["node"]))
                state["expanded"] = sorted(expand_to(model, node_id, default_expanded(model)))
                state["selected"], target = node_id, node_id
        state["href"] = view_href(model_for(data, state), state)
        selection = _selection(state)
        selection_out = selection if selection != picked else dash.no_update
        if trigger == "graph-cy" and target is None:  # a plain node was clicked: nothing to redraw but the crumbs
            crumbs_out = breadcrumb(model, state["selected"], state["expanded"])
            no = dash.no_update
            return no, no, crumbs_out, no, state, no, "", no, no, selection_out
        scene = draw(data, state)
        n = (focus or {}).get("n", 0) + 1
        new_focus: Any = dash.no_update
        if fit:
            new_focus = {"id": "fit", "n": n}
        elif target is not None:
            new_focus = {"id": str(target), "n": n, **keep}
        shown = _step_value(state["key"], state.get("model")) if state["source"] == "captured" else state["key"]
        step_out = shown if shown != step else dash.no_update
        return (scene.elements, scene.legend, scene.crumbs, scene.status, state, new_focus, message, step_out,
                _versions(data, state), selection_out)  # fmt: skip

    @app.callback(
        Output("graph-step", "options"), Output("graph-jump", "disabled"), Output("graph-jump", "title"),
        Input("graph-refresh", "n_intervals"), State("graph-state", "data"), State("graph-step", "options"),
        prevent_initial_call=True,
    )
    def refresh(_n: int, state: dict[str, Any], shown: list[dict[str, Any]]) -> tuple[Any, ...]:
        if state["source"] != "captured":
            raise dash.exceptions.PreventUpdate
        options = _step_options(data, state["run"])
        anomaly = data.first_anomaly(state["run"])
        return (options if options != shown else dash.no_update), anomaly is None, _jump_title(anomaly)

    @app.callback(Output("graph-inspector", "children"), Input("graph-selection", "data"), prevent_initial_call=True)
    def inspect(selection: dict[str, Any]) -> Any:
        return inspector(data, selection)

    # centre the view on a node (or fit the graph) once Cytoscape has drawn the new elements
    clientside_callback(
        """
        function(focus) {
            const MODULE_H = MODULE_H_VALUE;
            if (!focus) { return window.dash_clientside.no_update; }
            const root = document.getElementById('graph-cy');
            let tries = 0;
            const go = () => {
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
                } else if (tries++ < 40) { setTimeout(go, 50); }
            };
            setTimeout(go, 30);
            return '';
        }
        """.replace("MODULE_H_VALUE", str(MODULE_H)),
        Output("graph-focus-done", "children"),
        Input("graph-focus", "data"),
    )
    # the address bar follows the view (replaceState: no navigation, no Dash routing), so it can be shared
    clientside_callback(
        """
        function(state) {
            const here = window.location.pathname + window.location.search;
            if (state && state.href && state.href !== here) { window.history.replaceState(null, '', state.href); }
            return window.dash_clientside.no_update;
        }
        """,
        Output("graph-message", "title"),
        Input("graph-state", "data"),
    )
    clientside_callback(
        "function(edge) { return edge ? 'tensor ' + edge.shapes : ''; }",
        Output("graph-hover", "children"),
        Input("graph-cy", "mouseoverEdgeData"),
    )
