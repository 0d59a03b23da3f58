"""What a profile's summary shows wherever it is shown (the profile page's overview, the run page of a run without
scalars): per-step breakdown, device utilisation, top ops / kernels, plain-language hints and the facts line.

Pure builders: the store's analysis frames in, plotly figures, sentences or components out.
"""

from __future__ import annotations

import html as html_text
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html

from torchscope.dashboard import urls
from torchscope.dashboard.components import BREAKDOWN_COLORS
from torchscope.dashboard.formatting import chart_text, fmt_duration, truncate

CATEGORIES = ("kernel", "memcpy", "memset", "communication", "runtime", "dataloader", "cpu", "idle")
"""Breakdown categories in the order they are stacked (the store's ``<category>_ns`` columns)."""
MANY_STEPS = 200
"""Above this many steps, a step chart draws bands or lines instead of bars: its bars would be narrower than a pixel
or two, and drawing thousands of them took most of the profile overview's paint."""
STEP_POINTS = 1000
"""The most steps a step chart draws: of a longer profile, the slowest step of each run of consecutive steps (a real
step each, so a slow one never disappears; 10,000 steps of bands took 2.2 MB of JSON and 0.4 s to send)."""
IDLE_SHARE = 0.5
LOADER_SHARE = 0.3
LAUNCH_SHARE = 0.3
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 40}, "plot_bgcolor": "white", "height": 320}
CHAR_PX = 6.5
"""About the widest average width (px) of a tick label's character in plotly's default 12 px font."""
NAME_PX = 6.2
"""The same for an operator's or a kernel's name (measured 5.6-6.1 px on the reference traces' names)."""


def _step_margins(labels: list[Any], top: float, legend: bool, titled: bool = False) -> dict[str, int]:
    """Margins that hold a step chart's tick labels (and its legend below), given up front.

    plotly grows the margins to fit tick labels and legends, by drawing the chart, measuring, and drawing it again:
    with margins that already fit there is no second draw (0.2-0.3 s less before the profile overview is painted, on
    2 cores). A label wider than estimated still grows them, as before.
    """
    left = 45 + int(CHAR_PX * len(f"{top:,.0f}"))  # y tick labels and the axis title
    if titled:  # a numeric step axis: a few short tick labels and the axis title
        return {"l": left, "r": 10, "t": 40, "b": 48 + (40 if legend else 0)}
    longest = max((len(str(s)) for s in labels), default=0)
    crowded = len(labels) * (CHAR_PX * longest + 12) > 520  # plotly turns the labels upright (about, at 1400 px)
    bottom = (22 + int(CHAR_PX * longest) if crowded else 30) + (40 if legend else 0)
    return {"l": left, "r": 10, "t": 40, "b": bottom}


def step_label(step: int) -> str:
    """``step 12``, or ``whole profile`` for a trace without ``ProfilerStep`` markers (step -1)."""
    return "whole profile" if int(step) < 0 else f"step {int(step)}"


def step_axis(steps: pd.Series) -> tuple[list[Any], dict[str, Any], str]:
    """A per-step chart's x values, its x axis, and the hover text of a bar's step (``%{x}`` in a template).

    Step numbers on a numeric axis: plotly then draws a few ticks however many steps there are, where a category
    axis lays out a label per step (turned upright when they crowd: most of the drawing of a profile of 730 steps).
    A trace without ``ProfilerStep`` markers (step -1) has the one category ``whole profile``.
    """
    values = [int(s) for s in steps]
    if not values or min(values) < 0:
        return [step_label(s) for s in values], {}, "%{x}"
    axis: dict[str, Any] = {"title": {"text": "step", "standoff": 4}, "tickformat": "d"}
    if len(set(values)) <= 20:
        axis["dtick"] = 1
    return values, axis, "step %{x}"


def worst_steps(frame: pd.DataFrame, column: str, largest: bool = True) -> tuple[pd.DataFrame, int]:
    """At most :data:`STEP_POINTS` rows of ``frame`` (one per step, in step order): of each run of ``k`` consecutive
    rows, the one with the largest (or smallest) ``column``; and ``k`` (1: every row)."""
    k = -(-len(frame) // STEP_POINTS)
    if k <= 1:
        return frame, 1
    values = frame[column].to_numpy(dtype=np.float64)
    runs = np.arange(len(frame)) // k
    order = np.lexsort((values if not largest else -values, runs))  # by run, the worst first
    first = np.flatnonzero(np.r_[True, runs[order][1:] != runs[order][:-1]])
    return frame.iloc[np.sort(order[first])], k


def breakdown_figure(breakdown: pd.DataFrame) -> go.Figure:
    """Stacked bars: where each step's wall time went, in ms (the categories add up to the step's wall time).
    Of more than :data:`STEP_POINTS` steps, the slowest of every ``k`` (:func:`worst_steps`)."""
    breakdown, k = worst_steps(breakdown, "wall_ns")
    x, xaxis, at = step_axis(breakdown["step"])
    fig = go.Figure()
    for cat in CATEGORIES:
        column = f"{cat}_ns"
        if column not in breakdown:
            continue
        share = (breakdown[column] / breakdown["wall_ns"].where(breakdown["wall_ns"] > 0) * 100).fillna(0)
        values = {"name": cat, "x": x, "y": (breakdown[column] / 1e6).round(4), "customdata": share.round(2),
                  "hovertemplate": at + " · " + cat + ": %{y:.3f} ms (%{customdata:.1f}%)<extra></extra>"}
        if len(x) > MANY_STEPS:  # one filled band per category instead of a bar per step and category
            fig.add_trace(go.Scatter(**values, stackgroup="steps", mode="lines", line={"width": 0},
                                     fillcolor=BREAKDOWN_COLORS[cat], line_color=BREAKDOWN_COLORS[cat]))  # fmt: skip
        else:
            fig.add_trace(go.Bar(**values, marker_color=BREAKDOWN_COLORS[cat]))
    top = float((breakdown["wall_ns"] / 1e6).max()) if len(breakdown) else 0.0
    title = "Step time breakdown" + (f" (the slowest of every {k} steps)" if k > 1 else "")
    fig.update_layout(barmode="stack", title={"text": title, "x": 0}, yaxis_title="ms", xaxis=xaxis,
                      legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},  # under the labels
                      **{**_LAYOUT, "margin": _step_margins(x, top, legend=True, titled=bool(xaxis))})  # fmt: skip
    return fig


def utilization_figure(utilization: pd.DataFrame) -> go.Figure:
    """Device utilisation per step (kernel time / wall time), one bar group per device. Of more than
    :data:`STEP_POINTS` steps, the least busy of every ``k`` (:func:`worst_steps`)."""
    fig = go.Figure()
    every = 1
    for device, group in utilization.groupby("device", sort=True):
        group, every = worst_steps(group, "utilization", largest=False)
        x, _, at = step_axis(group["step"])
        values = {"name": f"GPU {int(device)}", "x": x, "y": (group["utilization"] * 100).round(2),
                  "customdata": (group["idle_ns"] / 1e6).round(4),
                  "hovertemplate": at + ": %{y:.1f}% busy, idle %{customdata:.3f} ms<extra></extra>"}
        many = len(x) > MANY_STEPS  # a line per device instead of a bar per step and device
        fig.add_trace(go.Scatter(**values, mode="lines") if many else go.Bar(**values))
    x, xaxis, _ = step_axis(utilization["step"].drop_duplicates())
    title = "Device utilisation (kernel time / step time)"
    title += f", the least of every {every} steps" if every > 1 else ""
    fig.update_layout(title={"text": title, "x": 0}, yaxis={"title": "%",
                      "range": [0, 100]}, barmode="group", xaxis=xaxis,
                      **{**_LAYOUT, "margin": _step_margins(x, 100, legend=False, titled=bool(xaxis))})  # fmt: skip
    return fig


def top_figure(frame: pd.DataFrame, label: str, value: str, title: str, n: int = 10) -> go.Figure:
    """Horizontal bars of the ``n`` largest ``value`` (ns) rows, labelled by ``label``, largest on top."""
    top = frame.nlargest(n, value) if len(frame) else frame
    # numbered: two long names cut to the same prefix must stay two bars
    names = [f"{i}. {chart_text(truncate(s, 60))}" for i, s in enumerate(top[label].astype(str), start=1)]
    fig = go.Figure(
        go.Bar(orientation="h", x=top[value] / 1e3, y=names, marker_color="#4c78a8",
               customdata=[chart_text(s) for s in top[label].astype(str)],
               hovertemplate="%{customdata}<br>%{x:,.1f} µs<extra></extra>")
    )  # fmt: skip
    # the names' margin given up front (see _step_margins): plotly would draw the chart twice to find it
    left = 16 + int(NAME_PX * max((len(html_text.unescape(s)) for s in names), default=0))
    fig.update_layout(title={"text": title, "x": 0}, xaxis_title="µs",
                      yaxis={"autorange": "reversed", "automargin": True},
                      **{**_LAYOUT, "height": max(220, 60 + 24 * len(top)),
                         "margin": {"l": left, "r": 20, "t": 40, "b": 55}})  # fmt: skip
    return fig


def step_hints(
    breakdown: pd.DataFrame, utilization: pd.DataFrame | None = None, runtime: pd.DataFrame | None = None
) -> list[str]:
    """Plain-language hints, one per step that is mostly idle, data-loading bound, launch bound or mostly CUDA
    set-up.

    Shares are of the step's wall time: idle (nothing ran on host or device) over 50%; waiting for the DataLoader
    over 30%; from ``runtime`` (:meth:`Store.runtime_split`): kernel launches (each under 1 ms) over 30% while
    kernels fill less of the step than the launches do, or set-up calls (context and stream creation, allocations,
    first launches that load a module) over 30%. A trace whose runtime time is CUDA start-up is not called launch
    bound.
    """
    hints = []
    split = {} if runtime is None else {int(r["step"]): r for r in runtime.to_dict("records")}
    for row in breakdown.to_dict("records"):
        wall = row.get("wall_ns") or 0
        if wall <= 0:
            continue
        share = {cat: row.get(f"{cat}_ns", 0) / wall for cat in CATEGORIES}
        calls = split.get(int(row["step"]), {})
        launch, setup = calls.get("launch_ns", 0) / wall, calls.get("setup_ns", 0) / wall
        name = step_label(row["step"]).capitalize()
        if share["idle"] > IDLE_SHARE:
            hints.append(f"{name} is mostly idle: nothing ran on the CPU or the GPU for {share['idle']:.0%} of it. "
                         "Look for waits between iterations (synchronisation, logging, I/O).")  # fmt: skip
        if share["dataloader"] > LOADER_SHARE:
            hints.append(f"{name} is data-loading bound: {share['dataloader']:.0%} of it waits for the DataLoader. "
                         "Try more workers (num_workers), pin_memory=True and prefetching.")  # fmt: skip
        if launch > LAUNCH_SHARE and share["kernel"] < launch:
            hints.append(f"{name} is launch bound: {launch:.0%} of it is spent launching kernels (CUDA runtime "
                         f"calls) while kernels run only {share['kernel']:.0%} of it. Fuse small ops "
                         "(torch.compile), use CUDA graphs or larger batches.")  # fmt: skip
        if setup > LAUNCH_SHARE:
            hints.append(f"{name} is mostly CUDA set-up: {setup:.0%} of it is spent creating the context and "
                         "streams, allocating, and loading kernels on their first launch, not running the model. "
                         "Profile after a few warm-up steps (torch.profiler.schedule(wait=1, warmup=1, active=3)) "
                         "to see the steady state.")  # fmt: skip
    if utilization is not None and len(utilization) and not hints:
        mean = float(utilization["utilization"].mean())
        if mean >= 0.8:
            hints.append(f"The GPU is busy {mean:.0%} of the time: this profile is compute bound; look at the top "
                         "kernels.")  # fmt: skip
    return hints


def profile_facts(pid: int, meta: dict[str, Any], link_id: str | None = None) -> list[Any]:
    """A profile's device, steps, events, kernels and duration, and a link to its timeline (the meta line)."""
    steps = "no steps" if not meta["step_count"] else f"steps {meta['step_first']}–{meta['step_last']}"
    link = {"id": link_id} if link_id else {}
    device = meta["device_name"] or ("GPU (not named in the trace)" if meta["kernel_count"] else "CPU only")
    return [html.Span(device), html.Span(steps),
            html.Span(f"{meta['event_count']:,} events"), html.Span(f"{meta['kernel_count']:,} kernels"),
            html.Span(fmt_duration(meta["duration_ns"])),
            dcc.Link("Open timeline →", href=urls.timeline(pid), **link)]  # fmt: skip
