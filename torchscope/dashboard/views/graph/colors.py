"""Colour-by for the graph view: a value per visible node from the step's statistics (or a profile), then colours.

Modes: ``op`` (op type, categorical), ``time`` (host time per call from a profile of the run; device time when the
profile has any), ``magnitude`` (RMS of the output, ``norm / sqrt(numel)``), ``std``, ``grad`` (L2 norm of the
gradient of the output) and ``anomaly`` (NaN/Inf in the output or its gradient). A closed box takes the largest
value inside it (the sum for time: a module's time is its ops' time), so a hot or broken module shows from afar.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Any

import pandas as pd
from plotly.colors import qualitative, sample_colorscale

from torchscope.dashboard.views.graph.compare import NEW, UNCHANGED, change_colour
from torchscope.dashboard.views.graph.state import View
from torchscope.dashboard.views.graph.model import GraphModel, tf_op_text

MODES = {
    "op": "op type",
    "time": "time (profile)",
    "magnitude": "activation RMS",
    "std": "activation std",
    "grad": "gradient norm",
    "anomaly": "NaN / Inf",
    "compare": "change vs compared run",
}
"""Colour-by modes; ``compare`` only with ``?compare=<run>`` (the other run's graph as the reference)."""
PALETTE = qualitative.Set3 + qualitative.Pastel1 + qualitative.Pastel2
SCALE = "Viridis"
NO_DATA = "#e5e7eb"
BOX_NODE = "#cbd5e1"  # a closed module in op-type mode
HEALTHY = "#d1fae5"
BROKEN = "#ef4444"
LOG_MODES = frozenset({"time", "magnitude", "grad", "std"})


def op_colour(op: str | None) -> str:
    """A stable colour per op type (the same op has the same colour in every view and every run)."""
    if not op:
        return NO_DATA
    return PALETTE[zlib.crc32(op.encode()) % len(PALETTE)]


def node_values(
    model: GraphModel, stats: pd.DataFrame, mode: str, times: Mapping[int, float] | None = None
) -> dict[int, float]:
    """The value ``mode`` colours by, for every model node that has one (``stats``: ``store.step_stats`` rows)."""
    if mode == "time":
        return dict(times or {})
    if mode in ("op",) or stats.empty:
        return {}
    values = stats[stats["role"] == "value"]
    grads = stats[stats["role"] == "grad"]
    out: dict[int, float] = {}
    if mode == "magnitude":
        rms = values["norm"] / values["numel"].clip(lower=1).pow(0.5)
        for node, v in zip(values["node"], rms):
            out[int(node)] = max(out.get(int(node), -math.inf), float(v))
    elif mode == "std":
        for node, v in zip(values["node"], values["std"]):
            out[int(node)] = max(out.get(int(node), -math.inf), float(v))
    elif mode == "grad":
        target_of = {g: t for t, g in model.grad_of.items()}
        for node, v in zip(grads["node"], grads["norm"]):
            if int(node) in target_of:
                out[target_of[int(node)]] = float(v)
    elif mode == "anomaly":
        target_of = {g: t for t, g in model.grad_of.items()}
        bad = stats["nan"] + stats["posinf"] + stats["neginf"]
        for node, role, count in zip(stats["node"], stats["role"], bad):
            key = target_of.get(int(node), int(node)) if role == "grad" else int(node)
            out[key] = out.get(key, 0.0) + float(count)
    return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isnan(v))}


def visible_values(model: GraphModel, view: View, values: Mapping[int, float], mode: str) -> dict[int, float]:
    """Values of the visible nodes: a closed box gets the max (sum for ``time``) of what it hides."""
    out: dict[int, float] = {}
    for node_id, shown in view.stands_for.items():
        if shown not in view.nodes or node_id not in values:
            continue
        v = values[node_id]
        if shown not in out:
            out[shown] = v
        elif mode == "time":
            out[shown] += v
        else:
            out[shown] = max(out[shown], v)
    if mode == "time":  # a module the profiler timed itself shows that time, not the sum of the ops matched in it
        out.update({n: values[n] for n in view.nodes if n in values and model.nodes[n].group})
    return out


def _scaled(values: Mapping[int, float], log: bool) -> tuple[dict[int, float], float, float]:
    """Values mapped to [0, 1]; on a log scale, zeros (an all-zero tensor) go to the bottom of the scale."""
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    positive = [v for v in finite.values() if v > 0 or not log]
    if not positive:
        return {k: 0.0 for k in finite}, 0.0, 0.0
    lo, hi = min(positive), max(positive)
    f = math.log10 if log else (lambda x: x)
    a, b = f(lo), f(hi)
    return {k: 0.0 if log and v <= 0 else (0.5 if b == a else (f(v) - a) / (b - a)) for k, v in finite.items()}, lo, hi


def colours(model: GraphModel, view: View, values: Mapping[int, float], mode: str) -> dict[int, str]:
    """A fill colour for every visible node."""
    out: dict[int, str] = {}
    if mode == "op":
        for node_id in view.nodes:
            node = model.nodes[node_id]
            out[node_id] = BOX_NODE if node.group else op_colour(node.op if node.kind in ("op", "tf") else node.kind)
        return out
    shown = visible_values(model, view, values, mode)
    if mode == "anomaly":
        has_stats = set(view.stands_for[k] for k in values if k in view.stands_for)
        for node_id in view.nodes:
            if shown.get(node_id, 0) > 0:
                out[node_id] = BROKEN
            else:
                out[node_id] = HEALTHY if node_id in has_stats else NO_DATA
        return out
    unit, _lo, _hi = _scaled(shown, mode in LOG_MODES)
    samples = sample_colorscale(SCALE, [unit[k] for k in unit]) if unit else []
    by_node = dict(zip(unit, samples))
    for node_id in view.nodes:
        out[node_id] = by_node.get(node_id, NO_DATA)
    return out


def legend(
    model: GraphModel, view: View, values: Mapping[int, float], mode: str, *, max_items: int = 14
) -> dict[str, Any]:
    """What the legend shows: ``{"title", "items": [(colour, text)], "scale": (lo, hi, css gradient) | None}``."""
    if mode == "op":
        counts: dict[str, int] = {}
        text: dict[str, str] = {}  # what the legend calls an op type: a TF node's _Arg / _Retval read input / output
        for node_id in view.nodes:
            node = model.nodes[node_id]
            key = ("module (closed)" if node.group else (node.op if node.kind in ("op", "tf") else node.kind)) or "?"
            counts[key] = counts.get(key, 0) + 1
            text[key] = tf_op_text(key) if node.kind == "tf" and not node.group else key
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        items = [(BOX_NODE if k == "module (closed)" else op_colour(k), f"{text[k]} ({n})")
                 for k, n in ranked[:max_items]]  # fmt: skip
        if len(ranked) > max_items:
            items.append((NO_DATA, f"… {len(ranked) - max_items} more op types"))
        return {"title": "op type", "items": items, "scale": None}
    if mode == "anomaly":
        return {
            "title": "NaN / Inf",
            "items": [(BROKEN, "NaN or Inf in the output or its gradient (a box: somewhere inside)"),
                      (HEALTHY, "finite"), (NO_DATA, "no statistics this step")],
            "scale": None,
        }  # fmt: skip
    shown = visible_values(model, view, values, mode)
    _unit, lo, hi = _scaled(shown, mode in LOG_MODES)
    stops = sample_colorscale(SCALE, [i / 8 for i in range(9)])
    gradient = f"linear-gradient(to right, {', '.join(stops)})"
    what = {
        "time": "time per call, device time when profiled on a GPU, else host; a closed module: the profiler's "
        "module time (with_stack=True), else its ops' total",
        "magnitude": "RMS of the output, ‖x‖/√n; a closed module: the largest inside",
        "std": "standard deviation of the output; a closed module: the largest inside",
        "grad": "L2 norm of the output's gradient; a closed module: the largest inside",
    }[mode]
    items = [(NO_DATA, "no data" if mode != "time" else "no profiled op matched")]
    scale = (lo, hi, gradient) if shown else None
    return {"title": MODES[mode] + (" (log scale)" if mode in LOG_MODES else ""), "items": items, "scale": scale,
            "note": what}  # fmt: skip


def compare_fills(model: GraphModel, view: View, info: Mapping[int, Mapping[str, Any]]) -> dict[int, str]:
    """Fills for ``?compare=``: ``info`` is :func:`compare_graph.node_colours` (by node id of the shown run).

    A node takes its own colour; a closed box takes the colour of the largest change of norm inside it (blue when
    the box itself is only in the shown run).
    """
    out: dict[int, str] = {}
    for node_id in view.nodes:
        own = info.get(node_id)
        if not model.nodes[node_id].group or (own is not None and own["status"] == "only B"):
            out[node_id] = str(own["colour"]) if own is not None else UNCHANGED
            continue
        changes = [info[d]["change"] for d in model.descendants(node_id) if d in info and info[d]["change"] is not None]
        out[node_id] = change_colour(max(changes, key=abs)) if changes else UNCHANGED  # type: ignore[arg-type]
    return out


def compare_legend(other: int, only_other: list[str]) -> dict[str, Any]:
    """The legend of ``?compare=<other>``: what blue, red, green and grey mean, and what only the other run has."""
    note = f"{len(only_other)} nodes only in run {other}" + (": " + ", ".join(only_other[:6]) if only_other else "")
    if len(only_other) > 6:
        note += ", …"
    return {
        "title": f"change of the output's L2 norm vs run {other}",
        "items": [(NEW, "only in this run"), (change_colour(1.0), f"larger than in run {other} (full at +100%)"),
                  (change_colour(-1.0), f"smaller than in run {other}"), (UNCHANGED, "unchanged or no statistics")],
        "scale": None,
        "note": note,
    }  # fmt: skip
