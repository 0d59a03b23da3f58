"""The histograms section of ``/run/<id>``: a tag picker and TensorBoard's two views of histograms over steps.

Tags are the run's imported TensorBoard histograms (``tb:<tag>``) and its watched tensors (``tensor:<name>``, the
names of the last captured step; ``tensor:<model>/<name>`` when the run watches several models). Query parameters
``hist=<tag>`` and ``hmode=ridge|distribution`` pick what is shown, so the view can be shared. The figures come
from :mod:`torchscope.dashboard.views.run.histograms`.
"""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html

from torchscope.dashboard.components import plot_config
from torchscope.dashboard.views.run.histograms import (
    MODES, distribution_figure, imported_series, ridge_figure, watched_series,
)  # fmt: skip
from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.store import Store

IMPORTED, WATCHED = "tb:", "tensor:"


def tag_options(store: Store, run_id: int) -> list[dict[str, str]]:
    """Every histogram tag of a run: imported ones (by name), then watched tensors (in the graph's order)."""
    options = [{"label": f"{tag} (TensorBoard)", "value": IMPORTED + tag} for tag in store.histogram_tags(run_id)]
    steps = store.graph_steps(run_id)
    if steps.empty:
        return options
    last = int(steps["step"].iloc[-1])
    stats = store.tensor_stats(run_id, step=last)
    several = "model" in stats and stats["model"].nunique() > 1
    for name, model in dict.fromkeys(zip(stats["name"], stats["model"] if "model" in stats else [None] * len(stats))):
        shown = f"{model}/{name}" if several else name
        options.append({"label": f"{shown} (watched)", "value": WATCHED + shown})
    return options


def series_for(store: Store, run_id: int, value: str) -> pd.DataFrame:
    """The series of one option's value (see :func:`tag_options`); BadRequestError for a value of no source."""
    if value.startswith(IMPORTED):
        return imported_series(store.histograms(run_id, [value[len(IMPORTED) :]]))
    if value.startswith(WATCHED):
        name = value[len(WATCHED) :]
        model = None
        if "/" in name and name.split("/", 1)[0] in set(store.graph_steps(run_id).get("model", [])):
            model, name = name.split("/", 1)
        return watched_series(store.tensor_stats(run_id, name, model=model))
    raise BadRequestError(f"hist must start with {IMPORTED!r} or {WATCHED!r}, not {value!r}")


def figure_for(store: Store, run_id: int, value: str | None, mode: str) -> dict[str, Any]:
    """The figure of one tag in one mode (an empty figure when no tag is picked)."""
    series = series_for(store, run_id, value) if value else pd.DataFrame(columns=["step", "lo", "hi", "buckets"])
    title = (value or "").split(":", 1)[-1]
    return ridge_figure(series, title) if mode == "ridge" else distribution_figure(series, title)


def controls(query: dict[str, str], options: list[dict[str, str]]) -> tuple[str | None, str]:
    """The tag and mode a URL asks for: ``hist`` (default the first tag), ``hmode`` (default ``ridge``)."""
    mode = query.get("hmode", "ridge")
    if mode not in MODES:
        raise BadRequestError(f"hmode must be one of {', '.join(MODES)}, not {mode!r}")
    values = [o["value"] for o in options]
    tag = query.get("hist") or (values[0] if values else None)
    if tag is not None and tag not in values:
        raise NotFoundError(f"this run has no histogram {tag!r}")
    return tag, mode


def section(store: Store, run_id: int, query: dict[str, str]) -> html.Section:
    """The section (hidden when the run has no histogram: its controls stay, so the page's callbacks find them)."""
    options = tag_options(store, run_id)
    tag, mode = controls(query, options)
    figure = figure_for(store, run_id, tag, mode) if options else {"data": [], "layout": {}}
    radio = [{"label": " offset (histograms)", "value": "ridge"}, {"label": " bands (distributions)",
                                                                  "value": "distribution"}]  # fmt: skip
    return html.Section(
        [
            html.H3("histograms"),
            html.Div(
                [
                    html.Label(["Tag ", dcc.Dropdown(id="hist-tag", options=options, value=tag, clearable=False,
                                                     className="hist-tag")], className="control"),  # fmt: skip
                    dcc.RadioItems(id="hist-mode", options=radio, value=mode, inline=True, className="control"),
                ],
                className="controls",
            ),
            dcc.Graph(id="hist-chart", figure=figure, config=plot_config(), className="hist-chart"),
        ],
        id="run-histograms",
        className="hist-section",  # not a "chart-section": those are the scalar charts' sections, by tag prefix
        style=None if options else {"display": "none"},
    )


def register(app: dash.Dash, store: Store) -> None:
    """Redraw the chart when the tag or the mode changes."""

    @app.callback(
        Output("hist-chart", "figure"),
        Input("hist-tag", "value"),
        Input("hist-mode", "value"),
        State("run-id", "data"),
        prevent_initial_call=True,
    )
    def redraw(tag: str | None, mode: str | None, run_id: int) -> dict[str, Any]:
        return figure_for(store, int(run_id), tag, mode if mode in MODES else "ridge")
