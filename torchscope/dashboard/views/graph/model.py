"""The graph view's model: one tree of boxes (module calls or name scopes) over the nodes of a graph, and its edges.

Built once per graph version from what the store returns (``store.graph`` for captured graphs,
``store.imported_graph`` for TensorBoard ones) and cached by the page; everything the view draws is derived from it
by :mod:`torchscope.dashboard.views.graph.state`. Pure: pandas in, plain Python out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from torchscope.dashboard.formatting import truncate

HIDEABLE = frozenset({"param", "buffer", "const"})
"""Kinds the "hide parameters" switch takes off the graph."""


@dataclass
class Node:
    """One node of the view: a box (``group``) or something drawn as a single node."""

    id: int
    kind: str  # op | module | input | output | param | buffer | const | scope | tf (imported op)
    name: str  # unique in its graph: "linear_0", "encoder.layers.0", "dense/MatMul"
    label: str  # what the node shows on its first line
    op: str | None = None  # torch API call ("F.linear"), module class, TF op type
    module: str | None = None  # module path of the call that ran it ("" is the root) or the name scope
    parent: int | None = None
    group: bool = False
    file: str | None = None
    line: int | None = None
    order: int | None = None
    in_shapes: list[Any] | None = None
    out_shapes: list[Any] | None = None
    out_dtypes: list[Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GraphModel:
    """Nodes (by id), the box tree (``children``), the data edges and, for captured graphs, the gradient nodes."""

    source: str  # captured | imported
    nodes: dict[int, Node]
    children: dict[int | None, list[int]]
    edges: list[tuple[int, int, str, str]]  # (src, dst, shape text, dtype)
    grad_of: dict[int, int] = field(default_factory=dict)  # value node -> its grad node (output 0)
    by_name: dict[str, int] = field(default_factory=dict)
    by_module: dict[str, int] = field(default_factory=dict)  # module path / scope -> its first box

    @property
    def roots(self) -> list[int]:
        """Top-level ids (for a captured graph: the root module call)."""
        return self.children.get(None, [])

    def ancestors(self, node_id: int) -> list[int]:
        """The boxes enclosing ``node_id``, outermost first."""
        chain = []
        parent = self.nodes[node_id].parent
        while parent is not None:
            chain.append(parent)
            parent = self.nodes[parent].parent
        return chain[::-1]

    def descendants(self, group_id: int) -> list[int]:
        """Every node inside ``group_id`` (boxes included), depth first."""
        out: list[int] = []
        stack = list(reversed(self.children.get(group_id, [])))
        while stack:
            node_id = stack.pop()
            out.append(node_id)
            stack.extend(reversed(self.children.get(node_id, [])))
        return out

    def find(self, text: str) -> int | None:
        """A node by id, exact name or module path, else the first whose name contains ``text`` (case-insensitive)."""
        text = text.strip()
        if not text:
            return None
        if text.isdigit() and int(text) in self.nodes and self.source == "captured":
            return int(text)
        for table in (self.by_module, self.by_name):
            if text in table:
                return table[text]
        low = text.lower()
        hits = [n for n in self.nodes.values() if low in n.name.lower() and n.kind != "grad"]
        if not hits:
            return None
        return min(hits, key=lambda n: (len(n.name), n.id)).id


def _nearest_box(model: GraphModel, path: str, root: int) -> int:
    while path:
        path = path.rpartition(".")[0]
        if path in model.by_module:
            return model.by_module[path]
    return root


def _opt_int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _shape_label(shapes: list[Any] | None) -> str:
    if not shapes:
        return ""
    text = "×".join(map(str, shapes[0])) if isinstance(shapes[0], list) else str(shapes[0])
    return f"[{text}]" + (f" +{len(shapes) - 1}" if len(shapes) > 1 else "")


def captured_model(nodes: pd.DataFrame, edges: pd.DataFrame) -> GraphModel:
    """The model of a captured graph (``store.graph(...)``): module calls are the boxes; grad nodes are set aside."""
    model = GraphModel("captured", {}, {}, [])
    grads: list[tuple[int, int]] = []
    for row in nodes.itertuples(index=False):
        kind = row.kind
        node_id = int(row.id)
        if kind == "grad":
            grads.append((node_id, int(row.target)))
            continue
        out_shapes = row.out_shapes
        if kind == "module":
            label = row.name  # the root shows its class; others get their path relative to the box around them
        elif kind == "op":
            label = row.op.rpartition(".")[2]
        else:
            label = row.name.rpartition(".")[2] if kind in HIDEABLE else row.name
        node = Node(
            id=node_id, kind=kind, name=row.name, label=label, op=_opt_str(row.op), module=_opt_str(row.module),
            parent=_opt_int(row.parent), group=kind == "module", file=_opt_str(row.file), line=_opt_int(row.line),
            order=_opt_int(row.order), in_shapes=row.in_shapes, out_shapes=out_shapes, out_dtypes=row.out_dtypes,
        )  # fmt: skip
        node.extra["shape"] = _shape_label(out_shapes)
        model.nodes[node_id] = node
        if kind == "module" and node.module is not None and node.module not in model.by_module:
            model.by_module[node.module] = node_id
        model.by_name.setdefault(row.name, node_id)
    roots = [n.id for n in model.nodes.values() if n.kind == "module" and n.parent is None]
    for node in model.nodes.values():
        if node.parent is not None and node.parent not in model.nodes:
            node.parent = None
        if node.parent is None and node.kind != "module" and roots:
            # a weight of a submodule that was never called as a module (MultiheadAttention's out_proj): into the
            # box of the nearest enclosing module path, so that closing that box hides it too
            node.parent = _nearest_box(model, node.module or "", roots[0])
        if node.kind == "module" and node.parent is not None and node.module:
            outer = model.nodes[node.parent].module or ""
            node.label = node.module[len(outer) + 1 :] if outer and node.module.startswith(outer + ".") else node.module
            if node.name.rpartition("#")[2].isdigit() and "#" in node.name:
                node.label += "#" + node.name.rpartition("#")[2]
        model.children.setdefault(node.parent, []).append(node.id)
    for grad_id, target in grads:
        model.grad_of.setdefault(target, grad_id)
        if target in model.nodes:  # "grad:fc.weight" finds fc.weight, whose inspector shows its gradient
            model.by_name.setdefault(f"grad:{model.nodes[target].name}", target)
    kept = edges[edges["kind"] == "data"]
    for src, dst, shape, dtype in zip(kept["src"], kept["dst"], kept["shape"], kept["dtype"]):
        if int(src) in model.nodes and int(dst) in model.nodes:
            text = "[" + ", ".join(map(str, shape)) + "]" if isinstance(shape, list) else ""
            model.edges.append((int(src), int(dst), text, dtype if isinstance(dtype, str) else ""))
    return model


def imported_model(nodes: pd.DataFrame, edges: pd.DataFrame) -> GraphModel:
    """The model of one imported TensorBoard graph: name scopes (``a/b/c``) are the boxes, nested by prefix."""
    model = GraphModel("imported", {}, {}, [])
    ids: dict[str, int] = {}
    scopes: dict[str, int] = {}
    rows = list(nodes.itertuples(index=False))
    next_id = len(rows)

    def scope_box(path: str) -> int | None:
        nonlocal next_id
        if not path:
            return None
        hit = scopes.get(path)
        if hit is not None:
            return hit
        # a scope that is also a node's full name (Keras layers, TF ops with children) stays a box of that name
        up, _, last = path.rpartition("/")
        parent = scope_box(up)
        box = scopes[path] = next_id
        next_id += 1
        model.nodes[box] = Node(id=box, kind="scope", name=path, label=last, module=path, parent=parent, group=True)
        model.by_module[path] = box
        return box

    for index, row in enumerate(rows):
        ids[row.name] = index
    # an op whose name is also a scope ("block1/MatMul" with "block1/MatMul/ReadVariableOp") goes inside that box
    scope_names = {row.scope for row in rows if row.scope}
    for index, row in enumerate(rows):
        attrs = row.attrs if isinstance(row.attrs, dict) else {}
        shape = attrs.get("_output_shapes") or attrs.get("shape") or attrs.get("output_shape")
        node = Node(
            id=index, kind="tf", name=row.name, label=row.name.rpartition("/")[2] or row.name, op=row.op,
            module=row.scope, parent=scope_box(row.name if row.name in scope_names else row.scope),
            extra={"device": row.device, "attrs": attrs, "inputs": row.inputs, "tag": row.tag, "graph_kind": row.kind,
                   "shape": _short(shape)},
        )  # fmt: skip
        model.nodes[index] = node
        model.by_name[row.name] = index
    _group_crowds(model, next_id)
    for node in sorted(model.nodes.values(), key=lambda n: n.id):
        model.children.setdefault(node.parent, []).append(node.id)
    for src, dst in zip(edges["source"], edges["target"]):
        if src in ids and dst in ids:
            model.edges.append((ids[src], ids[dst], "", ""))
    return model


def _group_crowds(model: GraphModel, next_id: int) -> None:
    """Keep what one box shows bounded: where a scope (or the top level) holds more than :data:`CROWD` plain nodes,
    nodes of an op type that occurs there at least :data:`SERIES` times go into a box of their own (``Const ×1200``),
    as TensorBoard groups series. Graph-def exports without name scopes otherwise open as thousands of nodes."""
    members: dict[int | None, list[Node]] = {}
    for node in model.nodes.values():
        if not node.group:
            members.setdefault(node.parent, []).append(node)
    for parent, nodes in members.items():
        if len(nodes) <= CROWD:
            continue
        by_op: dict[str, list[Node]] = {}
        for node in nodes:
            by_op.setdefault(node.op or "?", []).append(node)
        for op, same in sorted(by_op.items()):
            if len(same) < SERIES:
                continue
            scope = model.nodes[parent].module if parent is not None else ""
            name = f"{scope}/[{op}]" if scope else f"[{op}]"
            model.nodes[next_id] = Node(id=next_id, kind="scope", name=name, label=f"{op} ×{len(same)}", op=op,
                                        module=scope, parent=parent, group=True)  # fmt: skip
            for node in same:
                node.parent = next_id
            next_id += 1


CROWD = 200
SERIES = 5
TF_OPS = {"_Arg": "input", "_DeviceArg": "input", "_Retval": "output", "_DeviceRetval": "output"}
"""TF's names for a function's arguments and results, as a reader knows them."""


def tf_op_text(op: str) -> str:
    """The op type of an imported TF node as its label shows it: ``_Arg`` -> ``input``, ``MatMul`` as is."""
    return TF_OPS.get(op, op)


def _short(value: Any) -> str:
    if value is None:
        return ""
    return truncate(value if isinstance(value, str) else json.dumps(value), 40)
