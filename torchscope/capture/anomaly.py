"""Where did the first NaN/Inf come from? A pure function over one captured step's graph and statistics.

Forward: the first node, in execution order, whose output holds NaN/Inf while every input it read was finite (an
op; or an input, parameter or buffer that already held NaN/Inf). Backward: the first gradient, in the order the
backward pass produced them, that holds NaN/Inf while the gradients flowing into it (those of the outputs of the
ops that consumed the tensor) and the forward values that op read were finite; it is attributed to the consuming op
whose backward produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

# columns of a statistics row (see torchscope.capture.stats_layout.COLUMNS)
_NUMEL, _MIN, _MAX, _MEAN, _STD, _NAN, _POSINF, _NEGINF = 0, 1, 2, 3, 4, 6, 7, 8
# fields of a node tuple (see torchscope.capture.graph_record.NODE_FIELDS)
_KIND, _NAME, _OP, _MODULE, _FILE, _LINE, _OUT_SHAPES = 1, 2, 3, 4, 7, 8, 13


def _summary(values: np.ndarray, row: int, name: str, arg: str) -> dict[str, Any]:
    v = values[row]
    return {
        "arg": arg,
        "name": name,
        "numel": int(v[_NUMEL]),
        "min": None if np.isnan(v[_MIN]) else float(v[_MIN]),
        "max": None if np.isnan(v[_MAX]) else float(v[_MAX]),
        "mean": None if np.isnan(v[_MEAN]) else float(v[_MEAN]),
        "std": None if np.isnan(v[_STD]) else float(v[_STD]),
        "nan": int(v[_NAN]),
        "posinf": int(v[_POSINF]),
        "neginf": int(v[_NEGINF]),
    }


def _origin(phase: str, node: Sequence[Any], values: np.ndarray, row: int, tensor: str, inputs: list[Any]) -> dict:
    v = values[row]
    return {
        "phase": phase,
        "node": int(node[0]),
        "name": node[_NAME],
        "op": node[_OP] or node[_KIND],
        "module": node[_MODULE],
        "file": node[_FILE],
        "line": node[_LINE],
        "tensor": tensor,
        "nan": int(v[_NAN]),
        "posinf": int(v[_POSINF]),
        "neginf": int(v[_NEGINF]),
        "inputs": inputs,
    }


def find_origins(
    nodes: Sequence[Sequence[Any]],
    edges: Sequence[Sequence[Any]],
    stats: tuple[list[tuple[Any, ...]], np.ndarray],
    grad_of: dict[int, tuple[int, int]],
    *,
    deliberate: AbstractSet[int] = frozenset(),
) -> list[dict[str, Any]]:
    """At most one origin per phase (``forward``, ``backward``) as dicts; empty when every value is finite.

    ``stats`` is ``(meta, values)``: ``meta[i] = (node, output, role, ...)`` describes row ``i`` of ``values``, rows of
    role ``grad`` in the order the gradients arrived; ``grad_of`` maps a grad node to its ``(node, output)``.
    ``deliberate`` are ops given a non-finite constant (``masked_fill(mask, -inf)`` for attention masks): their
    NaN/Inf is intended, so they are never an origin, and ops reading their output are not either.
    """
    meta, values = stats
    bad = (values[:, _NAN] + values[:, _POSINF] + values[:, _NEGINF]) > 0
    if not bad.any():
        return []
    row_of = {(m[0], m[1], m[2]): i for i, m in enumerate(meta)}
    inputs_of: dict[int, list[tuple[int, int, str]]] = {}
    consumers: dict[tuple[int, int], list[int]] = {}
    for src, src_out, dst, arg, kind, *_ in edges:
        if kind == "data":
            inputs_of.setdefault(dst, []).append((src, src_out, arg))
            consumers.setdefault((src, src_out), []).append(dst)
    origins = []
    value_rows: dict[int, list[int]] = {}
    for i, (node, _output, role, *_) in enumerate(meta):
        if role == "value":
            value_rows.setdefault(node, []).append(i)
    forward = _forward_origin(nodes, values, bad, row_of, inputs_of, value_rows, deliberate)
    if forward:
        origins.append(forward)
    backward = _backward_origin(nodes, meta, values, bad, row_of, consumers, grad_of, inputs_of)
    if backward:
        origins.append(backward)
    return origins


def _forward_origin(nodes, values, bad, row_of, inputs_of, value_rows, deliberate):  # type: ignore[no-untyped-def]
    for node in nodes:
        if node[_KIND] in ("module", "output", "grad") or node[0] in deliberate:
            continue
        node_id = node[0]
        outputs = value_rows.get(node_id, ())
        hit = next((r for r in outputs if bad[r]), None)
        if hit is None:
            continue
        inputs = []
        clean = True
        for src, src_out, arg in inputs_of.get(node_id, ()):
            row = row_of.get((src, src_out, "value"))
            if row is None:
                continue
            clean = clean and not bad[row]
            inputs.append(_summary(values, row, nodes[src][_NAME], arg))
        if clean:
            return _origin("forward", node, values, hit, node[_NAME], inputs)
    return None


def _backward_origin(nodes, meta, values, bad, row_of, consumers, grad_of, inputs_of):  # type: ignore[no-untyped-def]
    grads_of_node: dict[int, list[int]] = {}
    for g, (node, _output) in grad_of.items():
        grads_of_node.setdefault(node, []).append(g)
    for row, (grad, _output, role, *_) in enumerate(meta):
        if role != "grad" or not bad[row] or grad not in grad_of:
            continue
        target = grad_of[grad]
        users = sorted(set(consumers.get(target, ())))
        upstream = []
        clean = True
        for user in users:
            for g in grads_of_node.get(user, ()):
                g_row = row_of.get((g, 0, "grad"))
                if g_row is not None:
                    clean = clean and not bad[g_row]
                    upstream.append(_summary(values, g_row, nodes[g][_NAME], nodes[user][_NAME]))
        # the op whose backward made this gradient: the last consumer (its backward runs first)
        culprit = nodes[users[-1]] if users else nodes[target[0]]
        # a backward fed by forward values that already held NaN/Inf is not where the anomaly started
        for src, src_out, _arg in inputs_of.get(culprit[0], ()) if users else ((target[0], target[1], ""),):
            row_in = row_of.get((src, src_out, "value"))
            clean = clean and (row_in is None or not bad[row_in])
        if not clean:
            continue
        return _origin("backward", culprit, values, row, nodes[grad][_NAME], upstream)
    return None
