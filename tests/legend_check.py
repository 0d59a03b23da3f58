"""A browser check for the graph page: no node is drawn under the legend."""

from __future__ import annotations

from typing import Any


def nodes_under_legend(tab: Any, cy: str, canvas_id: str, legend_id: str) -> list[str]:
    """Ids of the nodes of Cytoscape instance ``cy`` (a JS expression) whose drawn box meets the legend's box on
    the page; the canvas's and the legend's boxes are read from the DOM, the nodes' boxes from Cytoscape."""
    canvas = tab.locator(f"#{canvas_id}").bounding_box()
    legend = tab.locator(f"#{legend_id}").bounding_box()
    assert canvas and legend and legend["height"] > 0, "the canvas and its legend are on the page"
    boxes = tab.evaluate(
        f"{cy}.nodes().map(n => {{ const b = n.renderedBoundingBox({{includeLabels: true}}); "
        "return [n.id(), b.x1, b.y1, b.x2, b.y2]; })"
    )
    lx1, ly1 = legend["x"], legend["y"]
    lx2, ly2 = lx1 + legend["width"], ly1 + legend["height"]
    under = []
    for node, x1, y1, x2, y2 in boxes:
        x1, x2 = canvas["x"] + max(x1, 0), canvas["x"] + min(x2, canvas["width"])
        y1, y2 = canvas["y"] + max(y1, 0), canvas["y"] + min(y2, canvas["height"])  # what the canvas shows of it
        if x1 < lx2 and lx1 < x2 and y1 < ly2 and ly1 < y2:
            under.append(node)
    return under
