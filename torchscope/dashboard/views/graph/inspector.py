"""The graph page's inspector panel for one node: facts, statistics at the step, histogram, history, profile."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import dcc, html

from torchscope.dashboard.components import plot_config
from torchscope.dashboard.views.graph.figures import histogram_figure, history_figure
from torchscope.dashboard.views.graph.data import GraphData
from torchscope.dashboard.views.graph.model import GraphModel
from torchscope.dashboard.views.graph.render import compile_marks_of, model_for, model_version, view_href
from torchscope.dashboard.views.graph.state import GraphState
from torchscope.dashboard.views.graph.tables import (
    STATS_HEADER, module_outputs, node_facts, profile_rows, source_text, stats_rows,
)  # fmt: skip
from torchscope.dashboard.formatting import fmt_duration

GRAPH_CONFIG = plot_config(responsive=True)


def _table(header: list[str], rows: list[list[str]], cls: str) -> html.Table:
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])),
         html.Tbody([html.Tr([html.Td(c) for c in r]) for r in rows])],  # fmt: skip
        className=cls,
    )


def inspector(data: GraphData, state: GraphState) -> list[Any]:
    """The panel for ``state.selected`` (a hint when nothing is selected)."""
    selected = state.selected
    model = model_for(data, state)
    if selected is None or selected not in model.nodes:
        return [html.P("Click a node to inspect it; click a module to open or close it.", className="muted")]
    node = model.nodes[selected]
    facts = node_facts(model, selected)
    body: list[Any] = [html.H3(node.name, id="inspector-title", title=node.name)]
    rows = []
    for label, value in facts:
        cell: Any = value
        if label == "source" and node.file:
            cell = html.Span(value, title=f"{node.file}:{node.line}")
        rows.append(html.Tr([html.Th(label), html.Td(cell, className=f"fact-{label.replace(' ', '-')}")]))
    body.append(html.Table(rows, className="facts", id="inspector-facts"))
    if model.source != "captured":
        return body
    body.extend(_anomaly_banner(data, state, model, selected))
    body.extend(_compile_section(data, state, model, selected))
    body.extend(_statistics(data, state, model, selected))
    body.extend(_profile(data, state, model, selected))
    body.append(dcc.Link("link to this view", href=view_href(model, state), className="permalink"))
    return body


def _compile_section(data: GraphData, state: GraphState, model: GraphModel, node_id: int) -> list[Any]:
    """A module's graph breaks (reason, the user's line, step) and recompiles (the failed guard)."""
    if not model.nodes[node_id].group:
        return []
    marks = compile_marks_of(data, state, model)
    breaks, recompiles = marks.breaks.get(node_id, []), marks.recompiles.get(node_id, [])
    if node_id not in marks.compiled and not breaks:
        return []
    out: list[Any] = [html.H4("torch.compile")]
    for row in breaks:
        line = None if pd.isna(row["lineno"]) else int(row["lineno"])
        where = source_text(row["filename"], line) if row["filename"] else "unknown line"
        out.append(html.Div([html.B("⚡ graph break "), html.Span(f"at {where} (step {row['step']})",
                                                                   title=f"{row['filename']}:{line}"),
                             html.Div(row["reason"], className="compile-reason", title=row["detail"])],
                            className="compile-break"))  # fmt: skip
    out.append(html.P(f"{len(recompiles)} recompiles" + (": " if recompiles else ""), className="compile-recompiles"))
    if recompiles:
        out.append(html.Ul([html.Li(f"step {r['step']} · {r['frame']}: {r['reason']}") for r in recompiles]))
    return out


def _anomaly_banner(data: GraphData, state: GraphState, model: GraphModel, node_id: int) -> list[Any]:
    frame = data.store.anomalies(state.run, state.model)
    target_of = {g: t for t, g in model.grad_of.items()}
    shown = frame["node"].map(lambda n: target_of.get(n, n))
    here = frame[(frame["version_id"] == state.version) & (shown == node_id)]
    if here.empty:
        return []
    row = here.iloc[0]
    what = "NaN" if row["nan"] else "Inf"
    text = (f"First {what} of step {row['step']} ({row['phase']}) comes from {row['op'] or row['name']} "
            f"in {row['module'] or '(root)'} at {source_text(row['file'], row['line'])}")  # fmt: skip
    more = f" — and at {len(here) - 1} more captured steps" if len(here) > 1 else ""
    return [html.Div(text + more, className="anomaly-banner", id="inspector-anomaly")]


def _statistics(data: GraphData, state: GraphState, model: GraphModel, node_id: int) -> list[Any]:
    node = model.nodes[node_id]
    run, step = state.run, state.key
    shown = node_id
    out: list[Any] = []
    if node.group:
        outputs = module_outputs(model, node_id)
        if not outputs:
            return [html.P("No tensor leaves this module.", className="muted")]
        shown = outputs[-1]
        count = f"{len(outputs)} output tensor{'s' if len(outputs) > 1 else ''}"
        out.append(html.P(f"Statistics of the module's output {model.nodes[shown].name} ({count})", className="muted"))
    if node.kind == "output":  # an output names the tensor its producer made: show that tensor
        producers = [src for src, dst, _shape, _dtype in model.edges if dst == node_id]
        if producers:
            shown = producers[0]
            out.append(html.P(f"Statistics of {model.nodes[shown].name}, the returned tensor", className="muted"))
    grad = model.grad_of.get(shown)
    watched = state.model
    now = data.store.tensor_stats(run, shown, step=step, model=watched)
    if grad is not None:
        now = pd.concat([now, data.store.tensor_stats(run, grad, step=step, model=watched)], ignore_index=True)
    out.append(html.H4(f"Statistics at step {step}"))
    if now.empty:
        out.append(html.P("No statistics were captured for this node (tensors='none'?).", className="muted"))
        return out
    out.append(_table(STATS_HEADER, stats_rows(now), "stats-table"))
    name = model.nodes[shown].name
    first = now[now["output"] == 0]
    out.append(html.H4(f"Histogram of {name} at step {step}"))
    out.append(dcc.Graph(figure=histogram_figure(first, f"histogram of {name} at step {step}"),
                         config=GRAPH_CONFIG, id="inspector-histogram", style={"height": "200px"}))  # fmt: skip
    values = data.store.tensor_stats(run, name, model=watched)
    grads = data.store.tensor_stats(run, f"grad:{name}", model=watched) if grad is not None else values.iloc[0:0]
    out.append(html.H4("Across captured steps"))
    out.append(dcc.Graph(figure=history_figure(values, grads, step), config=GRAPH_CONFIG, id="inspector-history",
                         style={"height": "360px"}))
    return out


def _profile(data: GraphData, state: GraphState, model: GraphModel, node_id: int) -> list[Any]:
    profile_id, times = data.times(state.run, model_version(state))
    if profile_id is None:
        return []
    node = model.nodes[node_id]
    head = html.H4(f"Profile #{profile_id}")
    if node.group and node_id in times:
        own = times[node_id]
        text = (f"module time per call: host {fmt_duration(own['host_ns'])}, device {fmt_duration(own['device_ns'])} "
                f"({own['calls']} calls profiled)")  # fmt: skip
        return [head, html.P(text, className="profile-summary")]
    if node.group:
        inside = [times[d] for d in model.descendants(node_id) if d in times and not model.nodes[d].group]
        host = sum(float(t["host_ns"]) for t in inside)
        device = sum(float(t["device_ns"]) for t in inside)
        return [head, html.P(f"{len(inside)} profiled ops inside: host {fmt_duration(host)}, device "
                             f"{fmt_duration(device)} per call", className="profile-summary")]  # fmt: skip
    hit = times.get(node_id)
    if hit is None:
        return [head, html.P("No profiled op matched this node.", className="muted")]
    summary = (f"{hit['aten']}: host {fmt_duration(hit['host_ns'])}, device {fmt_duration(hit['device_ns'])} per call "
               f"over {hit['calls']} calls" + (" with these input shapes" if hit["by_shape"] else ""))  # fmt: skip
    events = data.store.op_events(profile_id, [str(hit["aten"])], max_items=20)
    kernels = data.store.kernel_ops(profile_id)
    kernels = kernels[kernels["op_id"].isin(events["id"].tolist())] if not kernels.empty else kernels
    rows = profile_rows(profile_id, events, kernels)
    table = html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in ("", "name", "start", "duration")]))]
        + [html.Tr([html.Td(r["what"]), html.Td(dcc.Link(r["name"], href=r["href"])), html.Td(r["start"]),
                    html.Td(r["duration"])]) for r in rows],  # fmt: skip
        className="profile-table",
    )
    return [head, html.P(summary, className="profile-summary"), table]
