"""Rows of the graph view's inspector tables: a node's facts, its tensor statistics, its profiled ops. Pure."""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd

from torchscope.dashboard import urls
from torchscope.dashboard.views.graph.model import GraphModel
from torchscope.dashboard.formatting import fmt_duration, fmt_value

STATS_HEADER = ["tensor", "shape", "dtype", "device", "numel", "min", "max", "mean", "std", "norm", "NaN", "+Inf",
                "-Inf", "zeros"]  # fmt: skip


def _shape(shape: Any) -> str:
    return "[" + ", ".join(map(str, shape)) + "]" if isinstance(shape, list) else "-"


def source_text(file: str | None, line: int | None) -> str:
    """``models.py:46`` (the file's base name; the page puts the full path in a tooltip)."""
    if not file:
        return "-"
    return f"{os.path.basename(file)}:{line}" if line is not None else os.path.basename(file)


def node_facts(model: GraphModel, node_id: int) -> list[tuple[str, str]]:
    """``(label, value)`` pairs: kind, op, module path, source, inputs and outputs with shapes and dtypes."""
    node = model.nodes[node_id]
    facts: list[tuple[str, str]] = [("kind", node.kind), ("name", node.name)]
    if node.op:
        facts.append(("op" if not node.group else "class", node.op))
    if model.source == "captured":
        facts.append(("module path", node.module if node.module else "(root)"))
        file, line = node.file, node.line
        if node.group:  # a module call: where its first op ran, the line of the user's code that called it
            first = next((model.nodes[d] for d in model.descendants(node_id) if model.nodes[d].kind == "op"), None)
            file, line = (first.file, first.line) if first else (None, None)
        facts.append(("source", source_text(file, line)))
        ins = [(model.nodes[s].name, shape, dtype) for s, d, shape, dtype in model.edges if d == node_id]
        if node.group:
            inside = set(model.descendants(node_id))
            crossing = [(s, d, shape, dtype) for s, d, shape, dtype in model.edges if (s in inside) != (d in inside)]
            ins = [(model.nodes[s].name, shape, dtype) for s, d, shape, dtype in crossing if d in inside]
            outs = [(model.nodes[s].name, shape, dtype) for s, d, shape, dtype in crossing if s in inside]
            facts.append(("inputs", "; ".join(f"{n} {s} {t}" for n, s, t in _unique(ins)[:12]) or "-"))
            facts.append(("outputs", "; ".join(f"{n} {s} {t}" for n, s, t in _unique(outs)[:12]) or "-"))
        else:
            facts.append(("inputs", "; ".join(f"{n} {s} {t}" for n, s, t in ins) or "-"))
            shapes = node.out_shapes or []
            dtypes = node.out_dtypes or []
            facts.append(("outputs", "; ".join(f"{_shape(s)} {d}" for s, d in zip(shapes, dtypes)) or "-"))
    else:
        extra = node.extra
        facts.append(("name scope", node.module or "(top)"))
        if not node.group:
            facts.append(("inputs", ", ".join(extra.get("inputs") or []) or "-"))
            if extra.get("device"):
                facts.append(("device", str(extra["device"])))
            for key, value in (extra.get("attrs") or {}).items():
                facts.append((key, value if isinstance(value, str) else json.dumps(value)[:200]))
    return facts


def _unique(items: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    seen: set[tuple[str, str, str]] = set()
    return [i for i in items if not (i in seen or seen.add(i))]


def module_outputs(model: GraphModel, box_id: int) -> list[int]:
    """Nodes inside a box whose outputs leave it: the box's output tensors, in execution order."""
    inside = set(model.descendants(box_id))
    return sorted({s for s, d, _shape, _dtype in model.edges if s in inside and d not in inside})


def stats_rows(stats: pd.DataFrame) -> list[list[str]]:
    """One row per tensor (``store.tensor_stats`` rows of one step), in :data:`STATS_HEADER` order."""
    rows = []
    for r in stats.itertuples(index=False):
        tensor = r.role if r.output == 0 else f"{r.role}[{r.output}]"
        rows.append([
            tensor, _shape(r.shape), str(r.dtype), str(r.device), str(r.numel), fmt_value(r.min), fmt_value(r.max),
            fmt_value(r.mean), fmt_value(r.std), fmt_value(r.norm), str(r.nan), str(r.posinf), str(r.neginf),
            str(r.zeros),
        ])  # fmt: skip
    return rows


def profile_rows(profile_id: int, events: pd.DataFrame, kernels: pd.DataFrame) -> list[dict[str, str]]:
    """Profiled calls of the node's op (``store.op_events``) and, per call, the device kernels it launched
    (``store.kernel_ops`` rows with that ``op_id``): ``what, name, start, duration, href`` (timeline at the event)."""
    def row(what: str, name: str, start: int, dur: int) -> dict[str, str]:
        return {"what": what, "name": name, "start": fmt_duration(start), "duration": fmt_duration(dur),
                "href": urls.timeline_around(profile_id, int(start), int(start + dur), q=name)}  # fmt: skip

    rows = []
    launched = kernels.groupby("op_id") if not kernels.empty else None
    groups = dict(list(launched)) if launched is not None else {}
    for ev in events.itertuples(index=False):
        rows.append(row("op", ev.name, ev.start, ev.dur))
        rows += [row(k.kind, k.name, k.start, k.dur) for k in groups.get(ev.id, pd.DataFrame()).itertuples(index=False)]
    return rows
