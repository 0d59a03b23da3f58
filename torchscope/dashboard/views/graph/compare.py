"""Colours for the graph view's ``?compare=<other run>`` mode: each node of the shown run's graph coloured by how
it differs from the other run's. Pure functions over ``store.graph_diff`` and ``store.graph_node_diff`` tables.

The graph page (``/graph/<run>?compare=<other>``) shows its own run as B: it calls
``structure = store.graph_diff(other, run)``, ``changes = store.graph_node_diff(other, run)`` and
``node_colours(structure, changes)``, then styles each node by its id.
"""

from __future__ import annotations

import math

import pandas as pd

NEW = "#2563eb"
"""A node only in the shown graph (B)."""
UNCHANGED = "#d1d5db"
"""A shared node without statistics, or whose norm did not change."""
UP, DOWN = (214, 39, 40), (44, 160, 44)
SATURATE_AT = 1.0
"""A relative change of the L2 norm of 100% or more gets the full colour."""


def change_colour(change: float | None) -> str:
    """Red for a larger norm, green for a smaller one, fading to grey as the relative change goes to 0."""
    if change is None or (isinstance(change, float) and math.isnan(change)) or change == 0:
        return UNCHANGED
    weight = min(abs(change) / SATURATE_AT, 1.0)
    target = UP if change > 0 else DOWN
    grey = (209, 213, 219)
    r, g, b = (round(c0 + (c1 - c0) * weight) for c0, c1 in zip(grey, target))
    return f"#{r:02x}{g:02x}{b:02x}"


def node_colours(structure: pd.DataFrame, changes: pd.DataFrame) -> dict[int, dict[str, object]]:
    """``{node id in B: {"status", "change", "colour"}}`` for every node of B's graph.

    Nodes only in B are :data:`NEW`; shared nodes are coloured by ``norm_change`` (:func:`change_colour`).
    Nodes only in A are not in B's graph: list them beside it from ``structure`` (status ``only A``).
    """
    by_b = dict(zip(changes["id_b"].astype("int64"), changes["norm_change"]))
    out: dict[int, dict[str, object]] = {}
    for row in structure[structure["id_b"].notna()].itertuples(index=False):
        node = int(row.id_b)
        change = by_b.get(node)
        change = None if change is None or pd.isna(change) else float(change)
        colour = NEW if row.status == "only B" else change_colour(change)
        out[node] = {"status": row.status, "change": change, "colour": colour}
    return out
