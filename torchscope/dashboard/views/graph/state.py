"""The graph view's state and its one transition, ``step(model_of, state, event) -> state``; all pure.

:class:`GraphState` is what the page keeps in its ``dcc.Store`` (which graph, which boxes are open, what is
selected, how it is coloured); an event (:data:`Event`) is one thing the user did, already resolved against the
store by the page's callback (a searched name is a node id, a picked step is a graph version). The callback maps
its trigger to one event, calls :func:`step` and draws the result; tests call :func:`step` directly.

First come its building blocks: what is visible for a set of expanded boxes (a box that is not
expanded is drawn as one node standing for everything inside it; an edge between two hidden nodes is drawn between
the visible nodes that stand for them, once per pair, with the shapes it carries), and the pure set operations on
the expanded boxes (toggle, expand all, collapse below, expand to a node).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Union

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


# -- the state machine -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Focus:
    """Where the canvas goes after an event: the whole graph (``node`` None: fit) or one node, centred; after a
    click on a module, ``keep`` holds it where it was on screen (``at``, the click's rendered position): its top
    edge when it opens (``"top"``), its centre when it closes (``"centre"``)."""

    node: int | None
    at: tuple[float, float] | None = None
    keep: str | None = None

    def to_json(self, n: int) -> dict[str, Any]:
        """The ``graph-focus`` store's value; ``n`` counts focus requests, so that the same node can be refocused."""
        if self.node is None:
            return {"id": "fit", "n": n}
        out: dict[str, Any] = {"id": str(self.node), "n": n}
        if self.keep is not None:
            out["at"] = None if self.at is None else {"x": self.at[0], "y": self.at[1]}
            out["keep"] = self.keep
        return out


FIT = Focus(None)
_KEPT = ("run", "source", "key", "version", "model", "several", "compare", "colour", "hide", "selected")
"""The fields of :class:`GraphState` a ``dcc.Store`` keeps as they are (``expanded`` becomes a list)."""


@dataclass(frozen=True)
class GraphState:
    """What the graph view shows.

    ``run``; ``source`` ``"captured"`` (``key`` a captured step, ``version`` its graph version, ``model`` the
    watched model's name, ``several`` whether the run watches more than one) or ``"imported"`` (``key`` an imported
    graph's id); ``compare`` another run to colour against; ``colour`` a mode of :data:`colors.MODES`; ``hide``
    parameters; ``expanded`` the open boxes (sorted); ``selected`` the node the inspector shows. ``focus`` and
    ``message`` say what the last event asks of the page (centre on a node; a line for the user); they are not kept.
    """

    run: int
    source: str
    key: int
    version: int | None = None
    model: str | None = None
    several: bool = False
    compare: int | None = None
    colour: str = "op"
    hide: bool = False
    expanded: tuple[int, ...] = ()
    selected: int | None = None
    focus: Focus | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``dcc.Store`` value (everything but ``focus`` and ``message``)."""
        return {**{k: getattr(self, k) for k in _KEPT}, "expanded": list(self.expanded)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GraphState:
        """The state a ``dcc.Store`` holds (unknown keys, such as the page's ``href``, are ignored)."""
        given = {k: data[k] for k in _KEPT if k in data}
        return cls(**given, expanded=tuple(data.get("expanded") or ()))

    def selection(self) -> GraphState:
        """What the inspector shows: the selected node of one graph (opening boxes or recolouring keep it)."""
        return GraphState(run=self.run, source=self.source, key=self.key, version=self.version, model=self.model,
                          several=self.several, compare=self.compare, selected=self.selected)  # fmt: skip


@dataclass(frozen=True)
class Tap:
    """A click on a node (``at``: where, on screen): a module opens or closes; any node is selected."""

    node: int
    at: tuple[float, float] | None = None


@dataclass(frozen=True)
class ExpandAll:
    """Open boxes level by level while the view stays readable (:func:`expand_all`)."""


@dataclass(frozen=True)
class CollapseAll:
    """Back to the first view's boxes (:func:`default_expanded`); the selection stays."""


@dataclass(frozen=True)
class OpenCrumb:
    """A breadcrumb: close everything inside ``box`` (keeping it open) and select it; ``box`` < 0 is the top of an
    imported graph: close everything."""

    box: int


@dataclass(frozen=True)
class Find:
    """A search for ``text`` that found ``node`` (None: nothing): open the boxes around it and select it."""

    node: int | None
    text: str


@dataclass(frozen=True)
class ShowStep:
    """Show captured ``step`` (of graph ``version``, watched ``model``); another version starts from its first view."""

    step: int
    version: int
    model: str | None = None


@dataclass(frozen=True)
class ShowGraph:
    """Show the imported graph ``graph``, from its first view."""

    graph: int


@dataclass(frozen=True)
class JumpTo:
    """Show captured ``step`` (``version``, ``model``) from its first view, opened down to ``node`` (a gradient
    stands for its tensor), selected and centred: the first anomaly."""

    step: int
    version: int
    model: str | None
    node: int


@dataclass(frozen=True)
class SetColour:
    """Colour nodes by another mode."""

    colour: str


@dataclass(frozen=True)
class SetHide:
    """Hide (or show) parameters."""

    hide: bool


Event = Union[Tap, ExpandAll, CollapseAll, OpenCrumb, Find, ShowStep, ShowGraph, JumpTo, SetColour, SetHide]
ModelOf = Callable[[GraphState], GraphModel]
"""The graph a state shows (the page reads it through its cache; a test can hand in one model)."""


def step(model_of: ModelOf, state: GraphState, event: Event) -> GraphState:
    """The state after ``event``; pure, given ``model_of``. ``focus`` and ``message`` describe this event only."""
    state = replace(state, focus=None, message="")
    model = model_of(state)
    if isinstance(event, Tap):
        return _tap(model, state, event)
    if isinstance(event, ExpandAll):
        expanded, complete = expand_all(model, state.hide)
        message = "" if complete else "Opened as many levels as stay readable; open deeper modules by clicking."
        return replace(state, expanded=_sorted(expanded), focus=FIT, message=message)
    if isinstance(event, CollapseAll):
        return replace(state, expanded=_sorted(default_expanded(model)), focus=FIT)
    if isinstance(event, OpenCrumb):
        if event.box < 0:
            return replace(state, expanded=(), focus=FIT)
        expanded = collapse_below(model, event.box, state.expanded) | {event.box}
        return replace(state, expanded=_sorted(expanded), selected=event.box, focus=Focus(event.box))
    if isinstance(event, Find):
        if event.node is None:
            return replace(state, message=f"nothing named {event.text!r}" if event.text else "")
        return _select(model, state, event.node)
    if isinstance(event, (ShowStep, ShowGraph, JumpTo)):
        return _show(model_of, state, event)
    if isinstance(event, SetColour):
        return replace(state, colour=event.colour)
    if isinstance(event, SetHide):
        return replace(state, hide=event.hide)
    raise TypeError(f"not a graph view event: {event!r}")


def _sorted(boxes: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(boxes))


def _select(model: GraphModel, state: GraphState, node_id: int) -> GraphState:
    """``node_id`` selected, made visible (the boxes around it open) and centred."""
    expanded = _sorted(expand_to(model, node_id, state.expanded))
    return replace(state, expanded=expanded, selected=node_id, focus=Focus(node_id))


def _tap(model: GraphModel, state: GraphState, event: Tap) -> GraphState:
    if event.node not in model.nodes:
        return state
    if not model.nodes[event.node].group:
        return replace(state, selected=event.node)  # nothing opens or moves
    was_open = event.node in state.expanded
    expanded = _sorted(toggle(model, event.node, state.expanded))
    focus = Focus(event.node, event.at, "centre" if was_open else "top")
    return replace(state, expanded=expanded, selected=event.node, focus=focus)


def _show(model_of: ModelOf, state: GraphState, event: ShowStep | ShowGraph | JumpTo) -> GraphState:
    """Another step or graph. Another graph (version) starts from its first view with nothing selected; the same
    version at another step keeps the view."""
    if isinstance(event, ShowGraph):
        return state if event.graph == state.key else _first_view(model_of, replace(state, key=event.graph))
    shown = replace(state, key=event.step, version=event.version, model=event.model)
    if isinstance(event, ShowStep):
        return shown if event.version == state.version else _first_view(model_of, shown)
    shown = _first_view(model_of, shown)
    model = model_of(shown)
    return _select(model, shown, {g: t for t, g in model.grad_of.items()}.get(event.node, event.node))


def _first_view(model_of: ModelOf, state: GraphState) -> GraphState:
    return replace(state, expanded=_sorted(default_expanded(model_of(state))), selected=None)
