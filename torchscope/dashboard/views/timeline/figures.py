"""The timeline figure and its minimap. Pure builders: the store's window rows in, a plotly figure out.

The figures are plain dicts, not ``go.Figure``: plotly's property validation costs ~60 ms for a few thousand bars,
more than the window query itself, and this figure is rebuilt on every pan and zoom. Few traces whatever the zoom:
one horizontal bar trace per event kind (SVG bars, at most a few thousand), one for
the density blocks that stand for events narrower than a pixel, and one WebGL marker trace for search matches (a
match stays visible however narrow it is). Times are drawn in milliseconds since the profile start; rows are lanes
(host threads, device streams) stacked by nesting depth, grouped by process / device.
"""

from __future__ import annotations

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
    """Lanes as rows, ``events`` as bars coloured by kind, ``blocks`` as grey density bars, ``matches`` marked.

    ``selected`` (a :meth:`Store.timeline_event` dict) is outlined, with an arrow from the runtime call that
    launched it (or to each kernel it launched) and from / to the ops its flows join (forward -> backward). Every bar's ``customdata[0]`` is its event id; a density block's
    is ``[-1, count, start_ns, end_ns]``.
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
    if len(blocks):
        width = ms(blocks["end"] - blocks["start"])
        data.append(
            dict(
                type="bar", name=DENSITY_TRACE, orientation="h", y=blocks["row"].to_numpy(), base=ms(blocks["start"]),
                x=width, width=0.8,
                marker={"color": [f"rgba(90,90,90,{a:.2f})" for a in np.clip(blocks["busy"].to_numpy(), 0.25, 1.0)],
                        "line": {"width": 0}},
                customdata=np.column_stack((np.full(len(blocks), -1), blocks["count"].to_numpy(),
                                            blocks["start"].to_numpy(), blocks["end"].to_numpy())),
                hovertemplate="%{customdata[1]} events narrower than a pixel<br>click to zoom in<extra></extra>",
            )
        )  # fmt: skip
    if matches is not None and len(matches):
        data.append(
            dict(
                type="scattergl", name=MATCH_TRACE, mode="markers", x=ms(matches["start"] + matches["dur"] / 2),
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
        dragmode="zoom", hovermode="closest", plot_bgcolor="white", uirevision=None,
        xaxis={"range": [ms(start_ns), ms(end_ns)], "title": {"text": "ms since profile start"}, "showgrid": True,
               "gridcolor": "#eeeeee", "zeroline": False},
        yaxis={"range": [rows - 0.5, -0.5], "fixedrange": True, "tickvals": lanes["row0"].tolist(),
               "ticktext": [chart_text(truncate(f"{g} · {lab}", 48))
                            for g, lab in zip(lanes["group"], lanes["label"])],
               "showgrid": False, "zeroline": False, "automargin": True, "tickfont": {"size": 11}},
        shapes=_separators(lanes) + _selection_shapes(selected), annotations=_link_arrows(selected),
    )  # fmt: skip
    return {"data": data, "layout": layout}


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
    """The whole profile as a heat strip (events per lane and time bin), the visible window outlined."""
    bin_ms = ms(counts.attrs.get("bin_ns", max(duration_ns, 1) / max(counts.shape[1], 1)))
    x = (np.arange(counts.shape[1]) + 0.5) * bin_ms
    labels = [truncate(lab, 30) for lab in counts.attrs.get("labels", [str(i) for i in counts.index])]
    heat = dict(
        type="heatmap", z=np.log1p(counts.to_numpy(dtype=np.float64)), x=x, y=list(range(len(labels))),
        colorscale=[[0, "#ffffff"], [0.001, "#dbe6f6"], [1, "#1f4e99"]], showscale=False,
        customdata=counts.to_numpy(), text=[[chart_text(lab)] * len(x) for lab in labels],
        hovertemplate="%{text}: %{customdata} events<extra></extra>",
    )  # fmt: skip
    layout = dict(
        height=40 + 10 * max(len(labels), 1), margin={"l": 10, "r": 10, "t": 4, "b": 18}, dragmode=False,
        xaxis={"range": [0, ms(duration_ns)], "fixedrange": True, "showgrid": False, "tickfont": {"size": 10}},
        yaxis={"fixedrange": True, "showticklabels": False, "autorange": "reversed"},
        shapes=[{"type": "rect", "x0": ms(start_ns), "x1": ms(end_ns), "yref": "paper", "y0": 0, "y1": 1,
                 "line": {"color": "#d62728", "width": 2}, "fillcolor": "rgba(214,39,40,0.08)"}],
    )  # fmt: skip
    return {"data": [heat], "layout": layout}
