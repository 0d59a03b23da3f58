"""Cytoscape elements and stylesheet of the graph view, from a model, a view, positions and colours. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from torchscope.dashboard.views.graph.state import View
from torchscope.dashboard.views.graph.layout import LABEL_H, MODULE_H, MODULE_W, NODE_H, NODE_W, PAD
from torchscope.dashboard.views.graph.model import GraphModel, tf_op_text


def node_label(model: GraphModel, node_id: int) -> str:
    """Two lines: what it is (op, module, tensor name) and its output shape (a closed module: its class; an
    imported TF node: its op type and output shape, ``MatMul (?, 10)``)."""
    node = model.nodes[node_id]
    if node.group:
        second = node.op or ("scope" if node.kind == "scope" else "")
    elif node.kind == "tf":
        second = " ".join(part for part in (tf_op_text(node.op or ""), node.extra.get("shape", "")) if part)
    else:
        second = node.extra.get("shape", "")
    return f"{node.label}\n{second}" if second else node.label


def graph_elements(
    model: GraphModel,
    view: View,
    positions: Mapping[int, tuple[float, float]],
    colours: Mapping[int, str],
    *,
    flagged: Collection[int] = (),
    only_here: Collection[int] = (),
    origin: int | None = None,
    compiled: Collection[int] = (),
    breaks: Collection[int] = (),
) -> list[dict[str, object]]:
    """Elements: open boxes (compound nodes), visible nodes at ``positions`` and the lifted edges.

    ``compiled``: module nodes whose code ran in a ``torch.compile`` frame (a blue double outline); ``breaks``:
    module nodes where a graph break happened (a purple border and a ``⚡`` before the name).

    ``flagged``: nodes with NaN/Inf (a red border, also on boxes holding one); ``only_here``: nodes of this graph
    version that no other version has (dashed orange); ``origin``: the first NaN/Inf's op (a thick dark border).
    Flags on hidden nodes are shown on the node or box that stands for them.
    """
    shown_flag = {view.stands_for[n] for n in flagged if n in view.stands_for}
    shown_only = {view.stands_for[n] for n in only_here if n in view.stands_for}
    for n in flagged:  # open boxes around a flagged node are marked too
        for box in model.ancestors(n):
            if box in view.boxes:
                shown_flag.add(box)
    shown_origin = view.stands_for.get(origin) if origin is not None else None
    out: list[dict[str, object]] = []
    for box_id, parent in view.boxes.items():
        node = model.nodes[box_id]
        label = f"{node.label}  ·  {node.op or node.kind}" + ("  ·  ⚡ graph break" if box_id in breaks else "")
        data: dict[str, object] = {"id": str(box_id), "label": label, "kind": "box"}
        if parent is not None:
            data["parent"] = str(parent)
        classes = ["box", *_flags(box_id, shown_flag, shown_only, None), *_compile_flags(box_id, compiled, breaks)]
        out.append({"data": data, "classes": " ".join(classes)})
    for node_id, parent in view.nodes.items():
        node = model.nodes[node_id]
        kind = "module" if node.group else node.kind
        fill = colours.get(node_id, "#e5e7eb")
        label = ("⚡ " if node_id in breaks else "") + node_label(model, node_id)
        data = {"id": str(node_id), "label": label, "kind": kind, "color": fill}
        if parent is not None:
            data["parent"] = str(parent)
        x, y = positions[node_id]
        flags = [*_flags(node_id, shown_flag, shown_only, shown_origin), *_compile_flags(node_id, compiled, breaks)]
        classes = " ".join([kind, *flags])
        out.append({"data": data, "position": {"x": x, "y": y}, "classes": classes})
    for (a, b), (count, shapes) in view.edges.items():
        tip = ", ".join(shapes) + (f" ({count} tensors)" if count > 1 else "")
        out.append({"data": {"id": f"e{a}-{b}", "source": str(a), "target": str(b), "shapes": tip or "tensor"}})
    return out


def _flags(node_id: int, flagged: set[int], only: set[int], origin: int | None) -> list[str]:
    out = []
    if node_id in flagged:
        out.append("anomaly")
    if node_id in only:
        out.append("only-version")
    if node_id == origin:
        out.append("origin")
    return out


def _compile_flags(node_id: int, compiled: Collection[int], breaks: Collection[int]) -> list[str]:
    return (["compiled"] if node_id in compiled else []) + (["graph-break"] if node_id in breaks else [])


def stylesheet() -> list[dict[str, object]]:
    """The Cytoscape stylesheet (sizes match :mod:`torchscope.dashboard.views.graph.layout`)."""
    return [
        {"selector": "node", "style": {
            "shape": "round-rectangle", "width": NODE_W, "height": NODE_H, "label": "data(label)",
            "text-wrap": "wrap", "text-max-width": NODE_W - 8, "text-valign": "center", "text-halign": "center",
            "font-size": 11, "font-family": "ui-monospace, SFMono-Regular, Menlo, monospace", "color": "#111827",
            "background-color": "data(color)", "border-width": 1, "border-color": "#64748b",
            "text-outline-color": "#ffffff", "text-outline-width": 2, "text-outline-opacity": 0.85,
        }},
        {"selector": "node.module", "style": {
            "width": MODULE_W, "height": MODULE_H, "border-width": 2, "border-color": "#334155", "font-weight": "bold",
            "shape": "round-rectangle",
        }},
        {"selector": "node.param, node.buffer, node.const", "style": {
            "shape": "ellipse", "border-style": "dotted", "font-size": 10, "color": "#374151",
        }},
        {"selector": "node.input, node.output", "style": {"shape": "round-tag", "border-width": 2}},
        {"selector": "node.box", "style": {
            "background-color": "#f8fafc", "background-opacity": 0.55, "border-color": "#94a3b8", "border-width": 1,
            "border-style": "solid", "padding": PAD, "label": "data(label)", "text-valign": "top",
            "text-halign": "center", "text-margin-y": -4, "font-size": 12, "font-weight": "bold", "color": "#334155",
            "min-height": LABEL_H, "text-max-width": 600, "text-wrap": "ellipsis",
        }},
        {"selector": "node.anomaly", "style": {"border-color": "#dc2626", "border-width": 3}},
        {"selector": "node.only-version", "style": {
            "border-color": "#f59e0b", "border-width": 3, "border-style": "dashed",
        }},
        {"selector": "node.origin", "style": {"border-color": "#7f1d1d", "border-width": 6}},
        {"selector": "node.compiled", "style": {
            "border-color": "#2563eb", "border-width": 5, "border-style": "double",
        }},
        {"selector": "node.graph-break", "style": {"border-color": "#9333ea", "border-width": 4}},
        {"selector": "node.fx-fused", "style": {
            "border-color": "#7c3aed", "border-width": 3, "border-style": "dashed", "height": NODE_H + 16,
            "font-size": 10, "text-overflow-wrap": "anywhere",  # the third line names the kernel, a long word
        }},
        {"selector": "node:selected", "style": {
            "overlay-color": "#2563eb", "overlay-opacity": 0.18, "overlay-padding": 4,
        }},
        {"selector": "edge", "style": {
            "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.4, "arrow-scale": 0.8,
            "line-color": "#94a3b8", "target-arrow-color": "#94a3b8",
        }},
        {"selector": "edge:selected", "style": {
            "line-color": "#2563eb", "target-arrow-color": "#2563eb", "width": 2.5,
        }},
    ]  # fmt: skip
