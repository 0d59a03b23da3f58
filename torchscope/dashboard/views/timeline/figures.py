"""The timeline figure and its minimap. Pure builders: the store's window rows in, a plotly figure out.

The figures are plain dicts, not ``go.Figure``: plotly's property validation costs ~60 ms for a few thousand bars,
more than the window query itself, and this figure is rebuilt on every pan and zoom. Few traces whatever the zoom:
one horizontal bar trace per event kind (SVG bars, at most a few thousand), one for the density blocks that stand
for events narrower than a pixel, and one marker trace for search matches (at most 2,000; a match stays visible
however narrow it is): plotly.js's basic bundle draws them all. Times are drawn in milliseconds since the profile
start; rows are lanes (host threads, device streams) stacked by nesting depth, grouped by process / device.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pandas as pd

from torchscope.dashboard.formatting import chart_text, truncate

ROW_PX = 18
NAME_CHARS = 90
KIND_COLORS = {
    "cpu_op": "#4c78a8", "python_function": "#9ecae9", "user_annotation": "#b279a2", "cuda_runtime": "#f58518",
    "cuda_driver": "#e45756", "kernel": "#54a24b", "memcpy": "#eeca3b", "memset": "#ff9da6",
    "gpu_user_annotation": "#d6a5c9", "collective": "#e45756", "cuda_sync": "#bab0ac", "trace": "#d8d8d8",
    "instant": "#72b7b2", "other": "#bab0ac",
}  # fmt: skip
DENSITY_TRACE = "merged (< 1 px)"
MATCH_TRACE = "search matches"


def ms(ns: Any) -> Any:
    """Nanoseconds to the figure's millisecond axis."""
    return np.asarray(ns, dtype=np.float64) / 1e6 if not np.isscalar(ns) else float(ns) / 1e6


def total_rows(lanes: pd.DataFrame) -> int:
    """How many rows the lanes take."""
    return int((lanes["row0"] + lanes["rows"]).max()) if len(lanes) else 1


def timeline_figure(
    lanes: pd.DataFrame,
    events: pd.DataFrame,
    blocks: pd.DataFrame,
    *,
    start_ns: int,
    end_ns: int,
    matches: pd.DataFrame | None = None,
    selected: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Lanes as rows, ``events`` as bars coloured by kind, ``blocks`` as grey density bars (an image:
    :func:`density_image`), ``matches`` marked.

    ``selected`` (a :meth:`Store.timeline_event` dict) is outlined, with an arrow from the runtime call that
    launched it (or to each kernel it launched) and from / to the ops its flows join (forward -> backward). Every
    bar's ``customdata[0]`` is its event id; a density block's (the points of the :data:`DENSITY_TRACE` line) is
    ``[-1, count, start_ns, end_ns]``.
    """
    data: list[dict[str, Any]] = []
    for kind, group in events.groupby("kind", sort=True):
        data.append(
            dict(
                type="bar", name=str(kind), orientation="h", y=group["row"].to_numpy(), base=ms(group["start"]),
                x=ms(group["dur"]), width=0.8,
                marker={"color": KIND_COLORS.get(str(kind), "#999999"), "line": {"width": 0}},
                customdata=_id_names(group),
                # a bar's %{x} in a hover is where it ends; the duration rides in customdata
                hovertemplate="%{customdata[1]}<br>%{customdata[2]:.4f} ms at %{base:.4f} ms<extra>" + str(kind)
                + "</extra>",
            )
        )  # fmt: skip
    images = []
    if len(blocks):
        images.append(density_image(blocks, start_ns, end_ns, total_rows(lanes)))
        data += _density_traces(blocks, start_ns, end_ns)
    if matches is not None and len(matches):
        data.append(
            dict(
                type="scatter", name=MATCH_TRACE, mode="markers", x=ms(matches["start"] + matches["dur"] / 2),
                y=matches["row"].to_numpy(),
                marker={"symbol": "diamond", "size": 9, "color": "#d62728", "line": {"width": 1, "color": "white"}},
                customdata=_id_names(matches),
                hovertemplate="%{customdata[1]}<extra>match</extra>",
            )
        )  # fmt: skip
    rows = total_rows(lanes)
    layout = dict(
        barmode="overlay", bargap=0, height=max(260, rows * ROW_PX + 90), margin={"l": 10, "r": 10, "t": 30, "b": 40},
        showlegend=True, legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "font": {"size": 11}},
        dragmode="zoom", hovermode="closest", hoverdistance=HOVER_PX, plot_bgcolor="white", uirevision=None,
        xaxis={"range": [ms(start_ns), ms(end_ns)], "title": {"text": "ms since profile start"}, "showgrid": True,
               "gridcolor": "#eeeeee", "zeroline": False},
        yaxis={"range": [rows - 0.5, -0.5], "fixedrange": True, "tickvals": lanes["row0"].tolist(),
               "ticktext": [chart_text(truncate(f"{g} · {lab}", 48))
                            for g, lab in zip(lanes["group"], lanes["label"])],
               "showgrid": False, "zeroline": False, "automargin": True, "tickfont": {"size": 11}},
        shapes=_separators(lanes) + _selection_shapes(selected), annotations=_link_arrows(selected), images=images,
    )  # fmt: skip
    return {"data": data, "layout": layout}


DENSITY_GREY = (90, 90, 90)
DENSITY_UNITS = 1200
"""The density image's width in its own units: about a pixel each, the smallest width a block is drawn with."""
HOVER_PX = 10
"""plotly's hover distance on the timeline (its default, 20 px, is more than a row: a density point in the next row
would take the pointer from the bar under it)."""
HOVER_SPACING = 1 / 150
"""The density trace's points are at most this share of the window apart along a block: any spot on a block is
within :data:`HOVER_PX` of one on a plot up to 1,500 px wide."""


def density_image(blocks: pd.DataFrame, start_ns: int, end_ns: int, rows: int) -> dict[str, Any]:
    """The density blocks as an SVG image under the plot's traces (a ``layout.images`` entry: a search match in a
    block is drawn over it; the light grid lines are too): a grey bar per block, as tall as an event's, its opacity
    the share of the block that events fill (at least 0.25).

    plotly.js draws an SVG bar per point at about 0.1 ms each, so two thousand blocks took 0.2 s of every redraw; the
    image is one element whatever the blocks (the hover and click targets are :func:`_density_traces`').
    """
    span = max(end_ns - start_ns, 1)
    x0 = np.clip((blocks["start"].to_numpy() - start_ns) / span * DENSITY_UNITS, 0, DENSITY_UNITS)
    x1 = np.clip((blocks["end"].to_numpy() - start_ns) / span * DENSITY_UNITS, 0, DENSITY_UNITS)
    width = np.maximum(x1 - x0, 1.0)
    top = blocks["row"].to_numpy() + 0.1  # row r spans [r, r + 1] in the image; a bar takes its middle 0.8
    alpha = np.round(np.clip(blocks["busy"].to_numpy(), 0.25, 1.0) * 20) / 20
    paths = []
    for level in np.unique(alpha):  # a path per shade
        at = alpha == level
        d = "".join(f"M{a:.2f} {y:.1f}h{w:.2f}v.8h-{w:.2f}z" for a, y, w in zip(x0[at], top[at], width[at]))
        paths.append(f'<path d="{d}" fill-opacity="{level:.2f}"/>')
    grey = "#" + "".join(f"{c:02x}" for c in DENSITY_GREY)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {DENSITY_UNITS} {max(rows, 1)}" '
           f'preserveAspectRatio="none" shape-rendering="crispEdges" fill="{grey}">{"".join(paths)}</svg>')  # fmt: skip
    return {"source": svg_uri(svg), "xref": "x", "yref": "paper", "x": ms(start_ns), "y": 1, "sizex": ms(span),
            "sizey": 1, "xanchor": "left", "yanchor": "top", "sizing": "stretch", "layer": "below"}  # fmt: skip


def _density_traces(blocks: pd.DataFrame, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """What the density image needs to answer the pointer: an invisible line through points along every block
    (``customdata`` ``[-1, count, start_ns, end_ns]`` of its block; a click zooms into it). It has no legend entry,
    whose click would hide the line and leave the image (the page's help line names the grey blocks)."""
    start, end = blocks["start"].to_numpy(), blocks["end"].to_numpy()
    step = max((end_ns - start_ns) * HOVER_SPACING, 1)
    a, b = np.maximum(start, start_ns), np.minimum(end, end_ns)
    extra = np.where(b - a > step, np.ceil((b - a) / step), 0).astype(np.int64)  # a wide block: both ends and between
    block = np.repeat(np.arange(len(blocks)), 1 + extra)
    first = np.repeat(np.cumsum(1 + extra) - (1 + extra), 1 + extra)
    k = np.arange(len(block)) - first  # 0 .. extra along each block
    x = np.where(extra[block] > 0, a[block] + (b - a)[block] * k / np.maximum(extra[block], 1), (a + b)[block] / 2)
    info = np.column_stack((np.full(len(blocks), -1), blocks["count"].to_numpy(), start, end))[block]
    return [
        dict(type="scatter", mode="lines", name=DENSITY_TRACE, x=ms(x), y=blocks["row"].to_numpy()[block],
             line={"color": "rgba(0,0,0,0)", "width": 1}, showlegend=False, customdata=info,
             hovertemplate="%{customdata[1]} events narrower than a pixel<br>click to zoom in<extra></extra>"),
    ]  # fmt: skip


def svg_uri(svg: str) -> str:
    """An SVG document as a ``data:`` URI, for a plotly layout image."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _id_names(frame: pd.DataFrame) -> np.ndarray:
    """``[[id, short name, duration ms], ...]`` as objects, so ids stay integers in the figure's JSON."""
    data = np.empty((len(frame), 3), dtype=object)
    data[:, 0] = [int(i) for i in frame["id"]]
    data[:, 1] = [chart_text(truncate(n, NAME_CHARS)) for n in frame["name"]]  # kernel names run to hundreds
    data[:, 2] = ms(frame["dur"]).tolist() if "dur" in frame else [None] * len(frame)
    return data


def _separators(lanes: pd.DataFrame) -> list[dict[str, Any]]:
    """A thin line under every lane, a thicker one between processes / devices."""
    shapes = []
    groups = lanes["group"].tolist()
    for i, (row0, rows) in enumerate(zip(lanes["row0"].tolist(), lanes["rows"].tolist())):
        last = i + 1 == len(groups)
        new_group = not last and groups[i + 1] != groups[i]
        y = row0 + rows - 0.5
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
                       "line": {"color": "#6b7280" if new_group else "#e5e7eb", "width": 2 if new_group else 1},
                       "layer": "below"})  # fmt: skip
    return shapes


def _selection_shapes(selected: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not selected:
        return []
    s, d, r = ms(selected["start"]), ms(selected["dur"]), selected["row"]
    return [{"type": "rect", "x0": s, "x1": s + d, "y0": r - 0.5, "y1": r + 0.5,
             "line": {"color": "#d62728", "width": 2}, "fillcolor": "rgba(0,0,0,0)"}]  # fmt: skip


def _link_arrows(selected: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Arrows from a runtime call to the device work it launched (flow links), drawn in data coordinates."""
    if not selected:
        return []
    red, blue = "#d62728", "#1f77b4"  # launches red, forward -> backward flows blue
    pairs = [(src, selected, red) for src in selected.get("launched_by", [])]
    pairs += [(selected, dst, red) for dst in selected.get("launched", [])]
    pairs += [(selected, dst, blue) for dst in selected.get("flows_out", [])]
    pairs += [(src, selected, blue) for src in selected.get("flows_in", [])]
    return [
        {"x": ms(dst["start"]), "y": dst["row"], "ax": ms(src["start"]), "ay": src["row"], "xref": "x", "yref": "y",
         "axref": "x", "ayref": "y", "showarrow": True, "arrowhead": 3, "arrowsize": 1.2, "arrowwidth": 2,
         "arrowcolor": color, "text": ""}
        for src, dst, color in pairs
    ]  # fmt: skip


def minimap_figure(counts: pd.DataFrame, *, duration_ns: int, start_ns: int, end_ns: int) -> dict[str, Any]:
    """The whole profile as a heat strip (events per lane and time bin), the visible window outlined.

    The strip is an SVG image under the plot (:func:`heat_strip`), so plotly.js's basic bundle draws it in a few
    milliseconds whatever the lanes; an invisible line through every bin answers hovers (events in that bin, the
    busiest lane) and clicks (``clickData``'s ``x`` is the bin's centre, ms) anywhere above it.
    """
    matrix = counts.to_numpy(dtype=np.int64).reshape(counts.shape)
    bins = matrix.shape[1]
    bin_ms = ms(counts.attrs.get("bin_ns", max(duration_ns, 1) / max(bins, 1)))
    labels = [chart_text(truncate(lab, 30)) for lab in counts.attrs.get("labels", [str(i) for i in counts.index])]
    totals = matrix.sum(axis=0)
    hover = np.empty((bins, 2), dtype=object)  # [events in the bin, its busiest lane], ints staying ints in JSON
    hover[:, 0] = totals.tolist()
    busiest = matrix.argmax(axis=0) if matrix.size else np.zeros(bins, dtype=np.int64)
    hover[:, 1] = [labels[i] if total else "" for i, total in zip(busiest, totals)] if labels else ""
    line = dict(
        type="scatter", mode="lines", x=(np.arange(bins) + 0.5) * bin_ms, y=np.full(bins, 0.5), showlegend=False,
        line={"color": "rgba(0,0,0,0)", "width": 1}, customdata=hover,
        hovertemplate="%{x:.1f} ms: %{customdata[0]} events, most in %{customdata[1]}<extra></extra>",
    )  # fmt: skip
    layout = dict(
        height=40 + 10 * max(len(labels), 1), margin={"l": 10, "r": 10, "t": 4, "b": 18}, dragmode=False,
        hovermode="x", showlegend=False, plot_bgcolor="white",
        xaxis={"range": [0, ms(duration_ns)], "fixedrange": True, "showgrid": False, "zeroline": False,
               "tickfont": {"size": 10}},
        yaxis={"range": [0, 1], "fixedrange": True, "showticklabels": False, "showgrid": False, "zeroline": False},
        images=[{"source": heat_strip(matrix), "xref": "x", "yref": "paper", "x": 0, "y": 1, "sizex": bins * bin_ms,
                 "sizey": 1, "xanchor": "left", "yanchor": "top", "sizing": "stretch", "layer": "below"}],
        shapes=minimap_window(start_ns, end_ns),
    )  # fmt: skip
    return {"data": [line], "layout": layout}


def minimap_window(start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """The minimap's outline of the visible window (its ``layout.shapes``)."""
    return [{"type": "rect", "x0": ms(start_ns), "x1": ms(end_ns), "yref": "paper", "y0": 0, "y1": 1,
             "line": {"color": "#d62728", "width": 2}, "fillcolor": "rgba(214,39,40,0.08)"}]  # fmt: skip


HEAT_LOW, HEAT_HIGH, HEAT_LEVELS = (0xDB, 0xE6, 0xF6), (0x1F, 0x4E, 0x99), 12
"""The heat strip's colours: a bin with one event, the busiest bin, and the shades between them."""


def heat_strip(matrix: np.ndarray) -> str:
    """``matrix`` (lanes x bins of event counts) as an SVG image (a data URI): a row per lane, a bin per unit of
    width, shaded by ``log(1 + count)`` from :data:`HEAT_LOW` (nearly empty) to :data:`HEAT_HIGH` (the busiest bin)
    in :data:`HEAT_LEVELS` steps, empty bins left blank. Runs of bins of the same shade are one rectangle."""
    lanes, bins = matrix.shape if matrix.ndim == 2 else (0, 0)
    top = np.log1p(matrix.max()) if matrix.size else 0.0
    level = np.ceil(np.log1p(matrix) / top * HEAT_LEVELS).astype(np.int64) if top > 0 else np.zeros_like(matrix)
    rects = []
    for lane, row in enumerate(level):
        edges = np.flatnonzero(np.diff(row, prepend=0, append=0))  # where the shade changes
        for a, b in zip(edges[:-1], edges[1:]):
            if row[a]:
                rects.append(f'<rect x="{a}" y="{lane}" width="{b - a}" height="1" fill="{heat_shade(int(row[a]))}"/>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {max(bins, 1)} {max(lanes, 1)}" '
           f'preserveAspectRatio="none" shape-rendering="crispEdges">{"".join(rects)}</svg>')  # fmt: skip
    return svg_uri(svg)


def heat_shade(level: int) -> str:
    """The heat strip's colour for ``level`` (1 to :data:`HEAT_LEVELS`)."""
    t = (level - 1) / max(HEAT_LEVELS - 1, 1)
    return "#" + "".join(f"{round(lo + (hi - lo) * t):02x}" for lo, hi in zip(HEAT_LOW, HEAT_HIGH))
