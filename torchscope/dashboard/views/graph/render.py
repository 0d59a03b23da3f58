"""The graph page's drawing: from the page state to Cytoscape elements, legend and breadcrumb.

Called by the page's layout (the first paint comes with the page, no round trip) and by its callback; both hand in
the same state, so a reload draws exactly what the callback drew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from dash import html

from torchscope.dashboard.views.graph import colors as graph_colors
from torchscope.dashboard.views.graph.elements import graph_elements
from torchscope.dashboard.views.graph.state import View, visible_view
from torchscope.dashboard.views.graph.data import GraphData
from torchscope.dashboard.views.graph.layout import layout
from torchscope.dashboard.views.graph.model import GraphModel
from torchscope.dashboard.views.graph.timing import time_values
from torchscope.dashboard.formatting import fmt_duration, fmt_value


@dataclass
class Scene:
    """Everything drawn for one state."""

    model: GraphModel
    view: View
    elements: list[dict[str, Any]]
    legend: Any
    crumbs: Any
    status: str


def model_for(data: GraphData, state: dict[str, Any]) -> GraphModel:
    """The model the state shows: a captured version, or an imported graph."""
    if state["source"] == "captured":
        return data.captured(state["run"], state["version"])
    return data.imported(state["run"], state["key"])


def draw(data: GraphData, state: dict[str, Any]) -> Scene:
    """Elements, legend, breadcrumb and a status line for ``state`` (``run, source, key, version, expanded,
    hide, colour, selected``)."""
    model = model_for(data, state)
    view = visible_view(model, state["expanded"], state["hide"])
    positions = layout(model, view)
    mode = state["colour"]
    flagged: set[int] = set()
    only: set[int] = set()
    origin = None
    profile_id: int | None = None
    values: dict[int, float] = {}
    if state["source"] == "captured":
        stats = data.step_stats(state["run"], state["key"], state.get("model"))
        bad = stats[(stats["nan"] + stats["posinf"] + stats["neginf"]) > 0]
        target_of = {g: t for t, g in model.grad_of.items()}
        flagged = {target_of.get(int(n), int(n)) for n in bad["node"]}
        only = data.only_here(state["run"], state["version"], state.get("model"))
        origins = data.anomaly_nodes(state["run"], state["key"], state.get("model"))
        origin = target_of.get(origins[0], origins[0]) if origins else None
        profile_id, joined = data.times(state["run"], state["version"]) if mode == "time" else (None, {})
        values = graph_colors.node_values(model, stats, mode, time_values(joined))
    elif mode != "op":
        mode = "op"  # imported graphs carry no values: only op types colour them
    if mode == "compare" and state.get("compare") is not None:
        info, only_other = data.compare(state["run"], state["compare"], state["key"])
        fills = graph_colors.compare_fills(model, view, info)
        spec = graph_colors.compare_legend(state["compare"], only_other)
    else:
        mode = "op" if mode == "compare" else mode
        fills = graph_colors.colours(model, view, values, mode)
        spec = graph_colors.legend(model, view, values, mode)
    elements = graph_elements(model, view, positions, fills, flagged=flagged, only_here=only, origin=origin)
    if mode == "time" and profile_id is None:
        spec["note"] = "this run has no profile: profile a few steps with run.profile(...) to colour by time"
    legend = legend_block(spec, mode, several_versions=bool(only), has_origin=origin is not None)
    n_ops = sum(1 for n in view.nodes if model.nodes[n].kind in ("op", "tf"))
    status = f"{len(view.nodes)} nodes ({n_ops} ops) · {len(view.boxes)} open boxes · {len(view.edges)} edges shown"
    return Scene(model, view, elements, legend, breadcrumb(model, state.get("selected"), state["expanded"]), status)


def view_href(model: GraphModel, state: dict[str, Any]) -> str:
    """The URL of what ``state`` shows (step or graph, selected node, colour, hidden parameters, model, compare)."""
    query: dict[str, Any] = {"step": state["key"]} if state["source"] == "captured" else {"graph": state["key"]}
    if state.get("several") and state.get("model"):
        query["model"] = state["model"]
    selected = state.get("selected")
    if selected is not None and selected in model.nodes:
        node = model.nodes[selected]
        query["node"] = node.module if node.group and node.module is not None else node.name
    if state.get("compare") is not None:
        query["compare"] = state["compare"]
    if state.get("colour") not in (None, "op") and not (state["colour"] == "compare" and "compare" in query):
        query["color"] = state["colour"]
    if state.get("hide"):
        query["params"] = 0
    return f"/graph/{state['run']}?{urlencode(query)}"


def legend_block(spec: dict[str, Any], mode: str, *, several_versions: bool, has_origin: bool) -> html.Div:
    """The legend: colour swatches or a colour bar, then the border marks."""
    fmt = fmt_duration if mode == "time" else fmt_value
    parts: list[Any] = [html.Div(spec["title"], className="legend-title")]
    if spec.get("scale"):
        lo, hi, gradient = spec["scale"]
        parts.append(html.Div([html.Span(fmt(lo)), html.Span(className="legend-bar", style={"background": gradient}),
                               html.Span(fmt(hi))], className="legend-scale"))  # fmt: skip
    if spec.get("note"):
        parts.append(html.Div(spec["note"], className="legend-note"))
    for colour, text in spec["items"]:
        parts.append(html.Div([html.Span(className="swatch", style={"background": colour}), html.Span(text)],
                              className="legend-item"))  # fmt: skip
    marks = [("mark-anomaly", "red border: NaN/Inf in its output or gradient (a box: inside it)")]
    if has_origin:
        marks.append(("mark-origin", "thick dark border: where this step's first NaN/Inf came from"))
    if several_versions:
        marks.append(("mark-version", "dashed orange: only in this graph version"))
    for cls, text in marks:
        parts.append(html.Div([html.Span(className=f"swatch {cls}"), html.Span(text)], className="legend-item"))
    return html.Div(parts, className="graph-legend", id="graph-legend-body")


def breadcrumb(model: GraphModel, selected: int | None, expanded: list[int]) -> list[Any]:
    """Buttons for the boxes from the top down to the selected node's box; a click closes what is inside that box."""
    if selected is not None and selected in model.nodes:
        node = model.nodes[selected]
        chain = [*model.ancestors(selected), *([selected] if node.group else [])]
    else:
        chain = [r for r in model.roots if model.nodes[r].group and r in expanded][:1]
    crumbs: list[Any] = []
    if model.source == "imported":
        crumbs.append(html.Button("(top)", id={"type": "graph-crumb", "index": -1}, className="crumb"))
    for box in chain:
        if crumbs:
            crumbs.append(html.Span("›", className="crumb-sep"))
        crumbs.append(html.Button(model.nodes[box].label, id={"type": "graph-crumb", "index": box}, className="crumb",
                                  title=model.nodes[box].module or model.nodes[box].name))  # fmt: skip
    return crumbs
