"""Positions for the graph view, computed on the server: a layered layout nested box by box, data flowing down.

Each open box is laid out on its own, from its direct children (nodes and the boxes inside it, sized by their own
layouts) and the edges between them. Opening a box therefore only changes that box's size: its siblings move
aside or down, but nothing is re-arranged elsewhere, and the same view always gets the same positions — a re-render
never jumps around, and Cytoscape just draws the given (``preset``) positions.

Layers are longest paths from the sources over the strongly connected components (imported graphs may have
cycles), with sources pulled down next to their first consumer (a weight sits beside the op using it, not at the
top). In a layer, a node goes under the mean of its predecessors when there is room, so chains stay straight.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import networkx as nx

from torchscope.dashboard.views.graph.state import View
from torchscope.dashboard.views.graph.model import GraphModel

NODE_W, NODE_H = 150.0, 40.0
MODULE_W, MODULE_H = 170.0, 46.0
PAD = 14.0  # box padding: must equal the stylesheet's compound-node padding
LABEL_H = 22.0  # room above a box for its label
GAP_X, GAP_Y = 24.0, 34.0


@dataclass
class _Slot:
    w: float
    h: float
    x: float = 0.0
    y: float = 0.0


def node_size(model: GraphModel, node_id: int) -> tuple[float, float]:
    """The drawn size of a visible node (a closed box is a bigger node)."""
    return (MODULE_W, MODULE_H) if model.nodes[node_id].group else (NODE_W, NODE_H)


def layout(model: GraphModel, view: View) -> dict[int, tuple[float, float]]:
    """Centre ``(x, y)`` of every visible node of ``view``; boxes get their bounds from their children."""
    members: dict[int | None, list[int]] = defaultdict(list)
    for node_id, box in view.nodes.items():
        members[box].append(node_id)
    for box_id, box in view.boxes.items():
        members[box].append(box_id)
    chain: dict[int, list[int | None]] = {}

    def boxes_of(x: int) -> list[int | None]:
        hit = chain.get(x)
        if hit is None:
            up = view.nodes[x] if x in view.nodes else view.boxes[x]
            hit = chain[x] = [None] if up is None else [*boxes_of(up), up]
        return hit

    local_edges: dict[int | None, set[tuple[int, int]]] = defaultdict(set)
    for a, b in view.edges:
        ca, cb = [*boxes_of(a), a], [*boxes_of(b), b]
        k = 0
        while k + 1 < min(len(ca), len(cb)) and ca[k + 1] == cb[k + 1]:
            k += 1
        if k + 1 < len(ca) and k + 1 < len(cb):
            local_edges[ca[k]].add((ca[k + 1], cb[k + 1]))

    slots: dict[int, _Slot] = {}

    def place(container: int | None) -> tuple[float, float]:
        kids = sorted(members.get(container, []))  # ids are in execution order: a box's call comes first
        for kid in kids:
            if kid in view.boxes:
                w, h = place(kid)
                slots[kid] = _Slot(w + 2 * PAD, h + 2 * PAD + LABEL_H)
            else:
                slots[kid] = _Slot(*node_size(model, kid))
        return _arrange(kids, local_edges.get(container, set()), slots)

    place(None)
    out: dict[int, tuple[float, float]] = {}

    def absolute(container: int | None, ox: float, oy: float) -> None:
        for kid in members.get(container, []):
            s = slots[kid]
            if kid in view.boxes:
                absolute(kid, ox + s.x + PAD, oy + s.y + LABEL_H + PAD)
            else:
                out[kid] = (round(ox + s.x + s.w / 2, 1), round(oy + s.y + s.h / 2, 1))

    absolute(None, 0.0, 0.0)
    return out


def _arrange(kids: list[int], edges: set[tuple[int, int]], slots: dict[int, _Slot]) -> tuple[float, float]:
    """Set ``x, y`` (top-left, relative to the container) of each kid's slot; returns the container's content size."""
    if not kids:
        return 0.0, 0.0
    graph = nx.DiGraph()
    graph.add_nodes_from(kids)
    graph.add_edges_from(edges)
    dag = nx.condensation(graph)
    comp = dag.graph["mapping"]
    layer_of_comp: dict[int, int] = {}
    for depth, generation in enumerate(nx.topological_generations(dag)):
        for c in generation:
            layer_of_comp[c] = depth
    for c in sorted(dag.nodes, key=lambda c: -layer_of_comp[c]):  # pull sources down to just above their consumers
        if dag.in_degree(c) == 0 and dag.out_degree(c) > 0:
            layer_of_comp[c] = min(layer_of_comp[s] for s in dag.successors(c)) - 1
    layer = {k: layer_of_comp[comp[k]] for k in kids}
    low = min(layer.values())
    rows: dict[int, list[int]] = defaultdict(list)
    for k in kids:  # kids come in execution order, which is the tie-break
        rows[layer[k] - low].append(k)
    preds = {k: [p for p in graph.predecessors(k) if layer[p] < layer[k]] for k in kids}
    succs = {k: [s for s in graph.successors(k) if layer[s] > layer[k]] for k in kids}
    centre: dict[int, float] = {}
    y = 0.0
    width = 0.0
    for r in sorted(rows):
        row = rows[r]
        wants = {}
        for k in row:
            placed = [centre[p] for p in preds[k] if p in centre]
            wants[k] = sum(placed) / len(placed) if placed else None
        _sweep(row, wants, slots, centre)
        height = max(slots[k].h for k in row)
        for k in row:
            slots[k].y = y
        y += height + GAP_Y
    for r in sorted(rows):  # sources (weights, inputs) go above their consumers once those are placed
        row = rows[r]
        if any(not preds[k] and succs[k] for k in row):
            wants = {}
            for k in row:
                near = preds[k] or succs[k]
                placed = [centre[p] for p in near if p in centre]
                wants[k] = sum(placed) / len(placed) if placed else centre[k]
            _sweep(row, wants, slots, centre)
    shift = min(slots[k].x for k in kids)
    for k in kids:
        slots[k].x -= shift
        width = max(width, slots[k].x + slots[k].w)
    return width, y - GAP_Y


def _sweep(row: list[int], wants: dict[int, float | None], slots: dict[int, _Slot], centre: dict[int, float]) -> None:
    """Place ``row`` left to right, each as close to where it wants to be as the ones before allow."""
    index = {k: i for i, k in enumerate(row)}
    order = sorted(row, key=lambda k: (wants[k] if wants[k] is not None else float("inf"), index[k]))
    cursor = float("-inf")
    for k in order:
        s = slots[k]
        want = wants[k]
        left = (want - s.w / 2) if want is not None else (cursor if cursor > float("-inf") else 0.0)
        left = max(left, cursor)
        s.x = left
        centre[k] = left + s.w / 2
        cursor = left + s.w + GAP_X
