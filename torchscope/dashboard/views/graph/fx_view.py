"""The graph page's FX view: the FX graphs torch.compile (and ``watch.export``) made of the executed graph, laid
over the executed canvas while the toolbar's "executed | FX" toggle says FX. See docs/views-graph.md."""

from __future__ import annotations

from typing import Any

import dash_cytoscape as cyto
from dash import html

from torchscope.dashboard.views.graph.compiled import FX_COLOURS, fx_scene
from torchscope.dashboard.views.graph.data import GraphData
from torchscope.dashboard.views.graph.elements import stylesheet
from torchscope.dashboard.views.graph.render import model_for
from torchscope.dashboard.views.graph.state import GraphState


def fx_place(data: GraphData, state: GraphState) -> list[Any]:
    """The (empty, hidden) place of the FX view, laid over the executed canvas; none when the run recorded no FX
    graph. Its canvas is made when the toolbar's "FX" is picked and dropped when "executed" is, and the executed
    canvas is covered, never hidden: a Cytoscape whose container was hidden or had a sibling instance lost its taps.
    """
    if state.source != "captured" or data.store.fx_graph(state.run, state.model).empty:
        return []
    return [html.Div(id="graph-fx", className="graph-fx", style={"display": "none"})]


def fx_view(data: GraphData, state: GraphState) -> list[Any]:
    """The FX graphs of the shown run and model, coloured against the executed graph, with their notes."""
    built = fx_scene(data.store.fx_graph(state.run, state.model), model_for(data, state),
                     data.store.compiled_kernels(state.run, state.model))
    legend = []
    for group, counts in built.counts.items():
        what = "torch.compile's graphs" if group == "dynamo" else "torch.export"
        eager = "ran eagerly, between graphs" if group == "dynamo" else "decomposed or not in the export"
        legend.append(html.Div(f"{what}: {counts['both']} ops also in the executed graph (grey) · {counts['fx-only']} "
                               f"only in the FX graph (orange) · {counts['executed-only']} executed ops in none "
                               f"({eager})", className="graph-fx-note", id=f"graph-fx-counts-{group}"))  # fmt: skip
        if group in built.fused:
            ops, kernels = built.fused[group]
            legend.append(html.Div(f"{ops} ops fused by Inductor into {kernels} kernels (dashed border; each op "
                                   "names its kernel)", className="graph-fx-note",
                                   id=f"graph-fx-fused-{group}"))  # fmt: skip
        missing = built.executed_only[group]
        if missing:
            shown = ", ".join(missing[:12]) + (" …" if len(missing) > 12 else "")
            legend.append(html.Div(f"only executed: {shown}", className="graph-fx-note", id=f"graph-fx-eager-{group}"))
    canvas = cyto.Cytoscape(
        id="graph-fx-cy", elements=built.elements, stylesheet=stylesheet(), layout={"name": "preset", "fit": True,
        "padding": 30}, minZoom=0.05, maxZoom=1.6, autoRefreshLayout=False, className="graph-canvas",
        style={"width": "100%", "height": "100%"},
    )  # fmt: skip
    swatches = [html.Div([html.Span(className="swatch", style={"background": FX_COLOURS[k]}), html.Span(text)],
                         className="legend-item")
                for k, text in (("both", "in both graphs"), ("fx-only", "only in the FX graph"),
                                ("input", "graph input"))]  # fmt: skip
    if built.fused:
        swatches.append(html.Div([html.Span(className="swatch swatch-fused"), html.Span("fused into one kernel")],
                                 className="legend-item"))  # fmt: skip
    return [html.Div(canvas, className="graph-stage"),
            html.Div([*swatches, *legend], className="graph-legend", id="graph-fx-legend")]
