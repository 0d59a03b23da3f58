"""What ``torch.compile`` made of the executed graph, for the graph page. Pure builders over ``Store`` frames.

- :func:`compile_marks`: the executed graph's module nodes that ran in a compiled frame (outlined) and those where a
  graph break happened (marked), with the breaks and recompiles of each module for the inspector;
- :func:`fx_scene`: the FX graphs Dynamo captured, one compound box per compiled frame, each op coloured by whether
  the executed graph has the same op in the same module (``both``), only the FX graph has it (``fx-only``); the
  executed ops no FX graph has (they ran eagerly, between graphs) are listed with it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from torchscope.dashboard.views.graph.model import GraphModel

FX_OPS = ("call_function", "call_method", "call_module")
FX_COLOURS = {"both": "#cbd5e1", "fx-only": "#fb923c", "input": "#e0f2fe"}
"""Fills of the FX view: an op the executed graph also ran in that module, an op only the FX graph has, inputs."""


@dataclass
class CompileMarks:
    """Module nodes of an executed graph touched by ``torch.compile``, and what happened there."""

    compiled: set[int] = field(default_factory=set)  # module nodes whose code ran in a compiled frame
    breaks: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # module node -> its graph breaks
    recompiles: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # module node -> its recompiles
    summary: str = ""


def op_key(name: str | None) -> str:
    """An op name both graphs agree on: ``F.linear``/``linear`` -> ``linear``, ``Tensor.__mul__``/``mul`` -> ``mul``."""
    short = str(name or "").rpartition(".")[2]
    return short.strip("_").removesuffix("_") or short


def _module_nodes(model: GraphModel, path: Any) -> list[int]:
    """Module-call nodes of ``path`` (every call of it)."""
    if path is None or (isinstance(path, float) and pd.isna(path)):
        return []
    return [i for i, n in model.nodes.items() if n.group and n.kind == "module" and n.module == path]


def compile_marks(model: GraphModel, breaks: pd.DataFrame, events: pd.DataFrame) -> CompileMarks:
    """See :class:`CompileMarks`; ``breaks`` and ``events`` are ``store.graph_breaks`` / ``compile_events`` rows."""
    marks = CompileMarks()
    for row in events.to_dict("records"):
        for node in _module_nodes(model, row["module"]):
            marks.compiled.add(node)
            if row["kind"] == "recompile":
                marks.recompiles.setdefault(node, []).append(row)
    for row in breaks.to_dict("records"):
        for node in _module_nodes(model, row["module"]):
            marks.breaks.setdefault(node, []).append(row)
    if len(events):
        n_re = int((events["kind"] == "recompile").sum())
        marks.summary = (f"torch.compile: {len(events) - n_re} frames compiled, {n_re} recompiles, "
                         f"{len(breaks)} graph breaks")  # fmt: skip
    return marks


@dataclass
class FxScene:
    """The FX view: Cytoscape elements and, per group (``dynamo``: the frames torch.compile captured, ``export``:
    the graph ``watch.export`` recorded), counts by status and the executed ops the group's graphs do not have."""

    elements: list[dict[str, Any]]
    counts: dict[str, dict[str, int]]  # group -> both | fx-only | executed-only
    executed_only: dict[str, list[str]]  # group -> "op in module" of executed ops no graph of the group has
    fused: dict[str, tuple[int, int]] = field(default_factory=dict)  # group -> (FX ops fused, Inductor kernels)


def fused_nodes(kernels: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """``(compile id, FX node name) -> kernel`` for each Inductor kernel of ``store.compiled_kernels`` that computes
    several FX nodes at once (a fusion: ``cpp_fused_add_mul_relu_0`` of ``mul``, ``add`` and ``relu``)."""
    fused: dict[tuple[str, str], str] = {}
    if kernels is None or kernels.empty:
        return fused
    for row in kernels[kernels["kind"] != "extern"].itertuples(index=False):  # cpp or triton kernels
        nodes = list(row.source_nodes or [])
        if len(nodes) > 1:
            for node in nodes:
                fused[(str(row.compile_id), str(node))] = str(row.kernel)
    return fused


def fx_scene(fx: pd.DataFrame, model: GraphModel | None, kernels: pd.DataFrame | None = None) -> FxScene:
    """The FX graphs of ``store.fx_graph`` rows (the latest compile of each frame) against the executed ``model``.

    Dynamo's graphs together cover what ran compiled, so they are matched against the executed ops together;
    an export graph covers the whole model and is matched on its own. FX ops that Inductor fused into one kernel
    with others (``kernels``: ``store.compiled_kernels``) are marked ``fx-fused`` and carry the kernel's name."""
    fused = fused_nodes(kernels)
    executed: Counter[tuple[str, str]] = Counter()
    if model is not None:
        for node in model.nodes.values():
            if node.kind == "op":
                executed[(node.module or "", op_key(node.op))] += 1
    latest = fx.drop_duplicates("graph_id")
    latest = latest.assign(frame=latest["compile_id"].str.split("/").str[0])
    fx = fx[fx["graph_id"].isin(set(latest.drop_duplicates("frame", keep="last")["graph_id"]))]
    scene = FxScene([], {}, {})
    column = 0
    for group, graphs in (("dynamo", fx[fx["compile_id"] != "export"]), ("export", fx[fx["compile_id"] == "export"])):
        if graphs.empty:
            continue
        left = executed.copy()
        counts = {"both": 0, "fx-only": 0}
        kernels_used: set[str] = set()
        for graph_id, nodes in graphs.groupby("graph_id", sort=True):
            _draw_graph(scene.elements, graph_id, nodes, column, left, counts, fused, kernels_used)
            column += 1
        n_fused = sum(1 for e in scene.elements if "fx-fused" in e.get("classes", "") and e["data"].get("group") == group)
        if n_fused:
            scene.fused[group] = (n_fused, len(kernels_used))
        covered = {m for m in graphs["module"].dropna()} | {""}
        if group == "export":
            covered = {mod for mod, _ in executed}
        missing = {(mod, op): n for (mod, op), n in left.items() if n > 0 and mod in covered}
        counts["executed-only"] = sum(missing.values())
        scene.counts[group] = counts
        scene.executed_only[group] = sorted(f"{op} in {mod or '(root)'}" for mod, op in missing)
    return scene


def _draw_graph(
    out: list[dict[str, Any]], graph_id: int, nodes: pd.DataFrame, column: int, left: Counter, counts: dict[str, int],
    fused: dict[tuple[str, str], str], kernels_used: set[str],
) -> None:  # fmt: skip
    """One FX graph as a box of nodes in graph order, each op matched against (and taken from) ``left``."""
    first = nodes.iloc[0]
    group = "export" if first["compile_id"] == "export" else "dynamo"
    box = f"fx{graph_id}"
    where = first["graph_module"] if isinstance(first["graph_module"], str) else "?"
    title = "torch.export" if first["compile_id"] == "export" else f"compiled frame {first['compile_id']}"
    out.append({"data": {"id": box, "label": f"{title} · {where or '(root)'}", "kind": "box"},
                "classes": "box fx-graph"})  # fmt: skip
    outputs = set(nodes[nodes["op"] == "output"]["id"])
    row = 0
    for node in nodes.to_dict("records"):
        if node["op"] == "output":
            continue
        module = node["module"] if isinstance(node["module"], str) else ""
        if node["op"] in FX_OPS:
            key = (module, op_key(node["target"]))
            status = "both" if left[key] > 0 else "fx-only"
            if status == "both":
                left[key] -= 1
            counts[status] += 1
        else:
            status = "input"
        label = f"{node['target']}\n{module or '(root)'}" if node["op"] in FX_OPS else str(node["name"])
        kernel = fused.get((str(first["compile_id"]), str(node["name"]))) if node["op"] in FX_OPS else None
        data = {"id": f"{box}n{node['id']}", "parent": box, "label": label, "kind": "op", "group": group,
                "color": FX_COLOURS[status], "module": module, "line": _int(node["lineno"])}  # fmt: skip
        if kernel:
            data["kernel"] = kernel
            data["label"] = f"{label}\n⊂ {kernel}"
            kernels_used.add(kernel)
        out.append({
            "data": data, "position": {"x": 60 + 280 * column, "y": 40 + 64 * row},
            "classes": f"op fx-{status}" + (" fx-fused" if kernel else ""),
        })  # fmt: skip
        row += 1
        for src in node["inputs"]:
            if src not in outputs:
                out.append({"data": {"id": f"{box}e{src}-{node['id']}", "source": f"{box}n{src}",
                                     "target": f"{box}n{node['id']}", "shapes": "tensor"}})  # fmt: skip


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)
