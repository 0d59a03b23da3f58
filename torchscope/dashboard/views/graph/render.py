"""The graph page's drawing: from the page state to Cytoscape elements, legend and breadcrumb.

Called by the page's layout (the first paint comes with the page, no round trip) and by its callback; both hand in
the same state, so a reload draws exactly what the callback drew.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from dash import html

from torchscope.dashboard import urls
from torchscope.dashboard.views.graph import colors as graph_colors
from torchscope.dashboard.views.graph.compiled import CompileMarks, compile_marks
from torchscope.dashboard.views.graph.elements import graph_elements
from torchscope.dashboard.views.graph.state import GraphState, View, visible_view
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


def model_for(data: GraphData, state: GraphState) -> GraphModel:
    """The model the state shows: a captured version, or an imported graph."""
    if state.source == "captured":
        return data.captured(state.run, model_version(state))
    return data.imported(state.run, state.key)


def model_version(state: GraphState) -> int:
    """The graph version a captured state shows (every captured state names one)."""
    if state.version is None:
        raise TypeError(f"a captured graph state without a version: {state!r}")
    return state.version


def draw(data: GraphData, state: GraphState) -> Scene:
    """Elements, legend, breadcrumb and a status line for ``state``."""
    model = model_for(data, state)
    view = visible_view(model, state.expanded, state.hide)
    positions = layout(model, view)
    mode = state.colour
    flagged: set[int] = set()
    only: set[int] = set()
    origin = None
    profile_id: int | None = None
    values: dict[int, float] = {}
    marks = CompileMarks()
    if state.source == "captured":
        run, step, watched, version = state.run, state.key, state.model, model_version(state)
        stats = data.step_stats(run, step, watched)
        bad = stats[(stats["nan"] + stats["posinf"] + stats["neginf"]) > 0]
        target_of = {g: t for t, g in model.grad_of.items()}
        flagged = {target_of.get(int(n), int(n)) for n in bad["node"]}
        only = data.only_here(run, version, watched)
        origins = data.anomaly_nodes(run, step, watched)
        origin = target_of.get(origins[0], origins[0]) if origins else None
        profile_id, joined = data.times(run, version) if mode == "time" else (None, {})
        values = graph_colors.node_values(model, stats, mode, time_values(joined))
        marks = compile_marks_of(data, state, model)
    elif mode != "op":
        mode = "op"  # imported graphs carry no values: only op types colour them
    if mode == "compare" and state.compare is not None:
        info, only_other = data.compare(state.run, state.compare, state.key)
        fills = graph_colors.compare_fills(model, view, info)
        spec = graph_colors.compare_legend(state.compare, only_other)
    else:
        mode = "op" if mode == "compare" else mode
        fills = graph_colors.colours(model, view, values, mode)
        spec = graph_colors.legend(model, view, values, mode)
    shown = view.stands_for
    elements = graph_elements(
        model, view, positions, fills, flagged=flagged, only_here=only, origin=origin,
        compiled={shown[n] for n in marks.compiled if n in shown},
        breaks={shown[n] for n in marks.breaks if n in shown},
    )  # fmt: skip
    if mode == "time" and profile_id is None:
        spec["note"] = "this run has no profile: profile a few steps with run.profile(...) to colour by time"
    legend = legend_block(spec, mode, several_versions=bool(only), has_origin=origin is not None,
                          compiled=bool(marks.compiled))  # fmt: skip
    n_ops = sum(1 for n in view.nodes if model.nodes[n].kind in ("op", "tf"))
    status = f"{len(view.nodes)} nodes ({n_ops} ops) · {len(view.boxes)} open boxes · {len(view.edges)} edges shown"
    if marks.summary:
        status += f" · {marks.summary}"
    return Scene(model, view, elements, legend, breadcrumb(model, state.selected, state.expanded), status)


def compile_marks_of(data: GraphData, state: GraphState, model: GraphModel) -> CompileMarks:
    """What ``torch.compile`` did to the shown model's modules (nothing for a run that never compiled)."""
    store = data.store
    breaks, events = store.graph_breaks(state.run, state.model), store.compile_events(state.run, state.model)
    return compile_marks(model, breaks, events)


def view_href(model: GraphModel, state: GraphState) -> str:
    """The URL of what ``state`` shows (step or graph, selected node, colour, hidden parameters, model, compare)."""
    captured = state.source == "captured"
    node = None
    if state.selected is not None and state.selected in model.nodes:
        picked = model.nodes[state.selected]
        node = picked.module if picked.group and picked.module is not None else picked.name
    implied = "compare" if state.compare is not None else "op"  # ``?compare=`` alone colours by change
    return urls.graph(
        state.run, step=state.key if captured else None, graph_id=None if captured else state.key,
        model=state.model if state.several and state.model else None, node=node, compare=state.compare,
        color=None if state.colour in (None, "op", implied) else state.colour, params=0 if state.hide else None,
    )  # fmt: skip


def legend_block(
    spec: dict[str, Any], mode: str, *, several_versions: bool, has_origin: bool, compiled: bool = False
) -> html.Div:
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
    if compiled:
        marks.append(("mark-compiled", "blue double border: ran in a torch.compile frame"))
        marks.append(("mark-break", "purple border, ⚡: a graph break happened here"))
    for cls, text in marks:
        parts.append(html.Div([html.Span(className=f"swatch {cls}"), html.Span(text)], className="legend-item"))
    return html.Div(parts, className="graph-legend", id="graph-legend-body")


def breadcrumb(model: GraphModel, selected: int | None, expanded: Iterable[int]) -> list[Any]:
    """Buttons for the boxes from the top down to the selected node's box; a click closes what is inside that box."""
    opened = set(expanded)
    if selected is not None and selected in model.nodes:
        node = model.nodes[selected]
        chain = [*model.ancestors(selected), *([selected] if node.group else [])]
    else:
        chain = [r for r in model.roots if model.nodes[r].group and r in opened][:1]
    crumbs: list[Any] = []
    if model.source == "imported":
        crumbs.append(html.Button("(top)", id={"type": "graph-crumb", "index": -1}, className="crumb"))
    for box in chain:
        if crumbs:
            crumbs.append(html.Span("›", className="crumb-sep"))
        crumbs.append(html.Button(model.nodes[box].label, id={"type": "graph-crumb", "index": box}, className="crumb",
                                  title=model.nodes[box].module or model.nodes[box].name))  # fmt: skip
    return crumbs
