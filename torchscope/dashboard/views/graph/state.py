"""What the graph view shows for a set of expanded boxes: which nodes are visible, inside which box, and the edges.

A box that is not expanded is drawn as one node standing for everything inside it; an edge between two hidden
nodes is drawn between the visible nodes that stand for them (once per pair, with the shapes it carries). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from torchscope.dashboard.views.graph.model import HIDEABLE, GraphModel

MAX_VISIBLE = 1500
"""Expand-all stops before more than this many nodes would be visible (the canvas slows past a few thousand)."""


@dataclass
class View:
    """The visible part of a model: ``nodes`` (id -> enclosing visible box or None), ``boxes`` (expanded, drawn as
    compound nodes) and ``edges`` ``(src, dst) -> (count, shapes)``."""

    nodes: dict[int, int | None]
    boxes: dict[int, int | None]
    edges: dict[tuple[int, int], tuple[int, list[str]]] = field(default_factory=dict)
    stands_for: dict[int, int] = field(default_factory=dict)  # every model node -> the visible node drawing it

    @property
    def size(self) -> int:
        """Elements Cytoscape draws: visible nodes, boxes and edges."""
        return len(self.nodes) + len(self.boxes) + len(self.edges)


def default_expanded(model: GraphModel) -> set[int]:
    """The first view: a captured graph's root module call is open (its top-level modules show as boxes)."""
    if model.source == "captured":
        return {r for r in model.roots if model.nodes[r].group}
    return set()


def visible_view(model: GraphModel, expanded: Iterable[int], hide_params: bool = False) -> View:
    """The view with ``expanded`` boxes open (a box counts as open only if all boxes around it are)."""
    opened = set(expanded)
    view = View({}, {})
    stack: list[tuple[int, int | None, int | None]] = [(r, None, None) for r in reversed(model.roots)]
    # (node, enclosing visible box, the collapsed node it hides under)
    while stack:
        node_id, box, under = stack.pop()
        node = model.nodes[node_id]
        if under is not None:
            view.stands_for[node_id] = under
            stack.extend((c, box, under) for c in model.children.get(node_id, ()))
            continue
        if hide_params and node.kind in HIDEABLE:
            continue
        kids = model.children.get(node_id, ())
        if node.group and node_id in opened and _has_visible(model, kids, hide_params):
            view.boxes[node_id] = box
            view.stands_for[node_id] = node_id
            stack.extend((c, node_id, None) for c in reversed(kids))
        else:
            view.nodes[node_id] = box
            view.stands_for[node_id] = node_id
            stack.extend((c, box, node_id) for c in kids)
    for src, dst, shape, _dtype in model.edges:
        a, b = view.stands_for.get(src), view.stands_for.get(dst)
        if a is None or b is None or a == b or a not in view.nodes or b not in view.nodes:
            continue
        count, shapes = view.edges.get((a, b), (0, []))
        if shape and shape not in shapes and len(shapes) < 4:
            shapes = [*shapes, shape]
        view.edges[(a, b)] = (count + 1, shapes)
    return view


def _has_visible(model: GraphModel, kids: Iterable[int], hide_params: bool) -> bool:
    return any(not (hide_params and model.nodes[k].kind in HIDEABLE) for k in kids)


def expand_to(model: GraphModel, node_id: int, expanded: Iterable[int]) -> set[int]:
    """``expanded`` plus every box around ``node_id``, so that the node itself becomes visible."""
    return set(expanded) | set(model.ancestors(node_id))


def collapse_below(model: GraphModel, box_id: int, expanded: Iterable[int]) -> set[int]:
    """``expanded`` with every box inside ``box_id`` closed (``box_id`` itself stays as it was)."""
    inside = set(model.descendants(box_id))
    return {e for e in expanded if e not in inside}


def toggle(model: GraphModel, box_id: int, expanded: Iterable[int]) -> set[int]:
    """Open a closed box; close an open one (and what is open inside it)."""
    current = set(expanded)
    if box_id in current:
        return collapse_below(model, box_id, current) - {box_id}
    return current | {box_id}


def expand_all(model: GraphModel, hide_params: bool = False, budget: int = MAX_VISIBLE) -> tuple[set[int], bool]:
    """Open boxes level by level while the visible nodes stay within ``budget``; ``(expanded, complete)``.

    A whole level is opened or none of it, so the view stays balanced; ``complete`` says whether every box is open.
    """
    expanded = default_expanded(model)
    level = [g for g in expanded]
    frontier = [c for g in level for c in model.children.get(g, ()) if model.nodes[c].group]
    if model.source != "captured":
        frontier = [r for r in model.roots if model.nodes[r].group]
    while frontier:
        trial = expanded | set(frontier)
        if len(visible_view(model, trial, hide_params).nodes) > budget:
            return expanded, False
        expanded = trial
        frontier = [c for g in frontier for c in model.children.get(g, ()) if model.nodes[c].group]
    return expanded, True
