"""Joining a profile of the same run to the captured graph: which profiled ATen op a graph op node is. Pure.

A graph op is a torch-API call (``F.linear``, ``Tensor.__add__``); the profiler records the ATen op that call
dispatched first (``aten::linear``, ``aten::add``). A node matches the profiled op of the same name and the same
tensor input shapes (when the profile recorded shapes), else of the same name; its time is that op's mean per
call. That is exact for ops that are one ATen call and an estimate when one call runs several (documented in
docs/views-graph.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from torchscope.dashboard.views.graph.model import GraphModel

_DUNDER = {
    "add": "add", "radd": "add", "iadd": "add_", "sub": "sub", "rsub": "rsub", "isub": "sub_", "mul": "mul",
    "rmul": "mul", "imul": "mul_", "truediv": "div", "rtruediv": "div", "itruediv": "div_", "matmul": "matmul",
    "rmatmul": "matmul", "pow": "pow", "rpow": "pow", "neg": "neg", "getitem": "select", "setitem": "copy_",
    "and": "bitwise_and", "or": "bitwise_or", "floordiv": "floor_divide", "mod": "remainder", "lt": "lt", "le": "le",
    "gt": "gt", "ge": "ge", "eq": "eq", "ne": "ne", "invert": "bitwise_not", "abs": "abs",
}  # fmt: skip
_EXTRA = {"select": ["aten::slice", "aten::index"], "softmax": ["aten::_softmax"], "linear": ["aten::addmm"]}


def aten_names(op: str | None) -> list[str]:
    """Candidate ATen names for a graph op label, best first: ``"F.linear"`` -> ``["aten::linear", "aten::addmm"]``."""
    if not op:
        return []
    short = op.rpartition(".")[2]
    if short.startswith("__") and short.endswith("__"):
        base = _DUNDER.get(short.strip("_"))
        if base is None:
            return []
        short = base
    return [f"aten::{short}", *_EXTRA.get(short, [])]


def _shape_key(shapes: Iterable[object] | None) -> str:
    """Tensor shapes without the empty ones (scalars are ``[]`` in profiler shapes and absent from graph shapes)."""
    if not shapes:
        return ""
    return json.dumps([s for s in shapes if isinstance(s, list) and s], separators=(",", ":"))


def op_times(model: GraphModel, table: pd.DataFrame) -> dict[int, dict[str, object]]:
    """Per op node: ``{"aten", "host_ns", "device_ns", "calls", "by_shape"}`` from ``store.op_table(p, True)``."""
    if table.empty:
        return {}
    shapes = table["input_shapes"] if "input_shapes" in table else pd.Series([""] * len(table))
    by_shape: dict[tuple[str, str], tuple[float, float, int]] = {}
    by_name: dict[str, list[float]] = {}
    for name, shape, calls, host, device in zip(
        table["name"], shapes, table["calls"], table["host_total_ns"], table["device_total_ns"]
    ):
        parsed = json.loads(shape) if isinstance(shape, str) and shape else None
        key = (name, _shape_key(parsed))
        h, d, c = by_shape.get(key, (0.0, 0.0, 0))
        by_shape[key] = (h + float(host), d + float(device), c + int(calls))
        agg = by_name.setdefault(name, [0.0, 0.0, 0])
        agg[0] += float(host)
        agg[1] += float(device)
        agg[2] += int(calls)
    out: dict[int, dict[str, object]] = {}
    for node in model.nodes.values():
        if node.kind != "op":
            continue
        want = _shape_key(node.in_shapes)
        for aten in aten_names(node.op):
            hit = by_shape.get((aten, want))
            exact = hit is not None
            if hit is None and aten in by_name:
                hit = tuple(by_name[aten])  # type: ignore[assignment]
            if hit is not None and hit[2]:
                host, device, calls = hit
                out[node.id] = {"aten": aten, "host_ns": host / calls, "device_ns": device / calls,
                                "calls": int(calls), "by_shape": exact}  # fmt: skip
                break
    return out


def time_values(times: dict[int, dict[str, object]]) -> dict[int, float]:
    """The number "colour by time" uses: device time per call when any op ran on a device, else host time."""
    on_device = any(float(t["device_ns"]) > 0 for t in times.values())  # type: ignore[arg-type]
    key = "device_ns" if on_device else "host_ns"
    return {k: float(t[key]) for k, t in times.items()}  # type: ignore[arg-type]
