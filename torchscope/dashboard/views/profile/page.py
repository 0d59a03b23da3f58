"""``/profile/<id>``: overview, operators, kernels, modules and memory of one profile.

Tabs are URL-addressable (``?tab=overview|operators|kernels|modules|memory``; ``&shapes=1`` groups operators by
input shape; ``&q=text`` fills the grid's quick search): each tab is a link (a history entry), the page renders
only the tab it shows, and the address bar follows the quick search (replacing the entry). Grids are AG Grid with sorting,
column filters, a quick search and CSV export; each row links to its events in the timeline and, for operators and
modules, to the graph node.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from torchscope.dashboard import history, urls
from torchscope.dashboard.components import data_grid, plot_config
from torchscope.dashboard.scripts import GRID, FirstPaint
from torchscope.dashboard.views.profile.memory import device_label, memory_figure
from torchscope.dashboard.profile_summary import (
    breakdown_figure, profile_facts, step_hints, top_figure, utilization_figure,
)  # fmt: skip
from torchscope.dashboard.views.profile import ranks, tables
from torchscope.errors import BadRequestError
from torchscope.dashboard.formatting import fmt_bytes, fmt_ms
from torchscope.storage.store import Store

TABS = ("overview", "operators", "kernels", "modules", "memory")
IN_FIRST_LAYOUT = True
"""Opened from its URL, the page comes with the app's layout (no router round trip before the first paint): each of
its callbacks has its input and its output in the page, except the quick search's address, which the router's
insertion would only fire to write the address already shown."""
GRAPH_CONFIG = plot_config()


def first_paint(query: dict[str, str]) -> FirstPaint:
    """The overview's charts; the operators', kernels' and modules' grid, without a chart; the memory tab's chart
    and grid (:func:`torchscope.dashboard.routes.first_paint`)."""
    tab = query.get("tab", "overview")
    if tab in ("operators", "kernels", "modules"):
        return FirstPaint(plotly=None, components=(GRID,))
    return FirstPaint(components=(GRID,) if tab == "memory" else ())


def _tab_bar(profile_id: int, current: str) -> html.Nav:
    links = [
        dcc.Link(tab.capitalize(), href=urls.profile(profile_id, tab=tab), id=f"tab-{tab}",
                 className="prof-tab prof-tab-active" if tab == current else "prof-tab")
        for tab in TABS
    ]  # fmt: skip
    return html.Nav(links, className="prof-tabs")


def _grid(
    grid_id: str, rows: list[dict[str, Any]], columns: list[dict[str, Any]], file_name: str, search: str = ""
) -> html.Div:
    """A grid with its quick search (``search`` already typed) and CSV export button."""
    return html.Div(
        [
            html.Div(
                [
                    dcc.Input(id="prof-search", type="search", placeholder="quick search", debounce=False,
                              value=search, className="prof-search"),
                    html.Button("Export CSV", id="prof-csv", n_clicks=0, className="prof-button"),
                    html.Span(f"{len(rows)} rows", className="muted", id="prof-rows"),
                ],
                className="controls",
            ),  # fmt: skip
            data_grid(grid_id, rows, columns, row_id="row", page_size=50, height=620, floating_filters=True,
                      csv_file=file_name, csv_columns=[c["field"] for c in columns if c["field"] != "links"],
                      class_name="prof-grid", options={"quickFilterText": search} if search else None),  # fmt: skip
        ]
    )


def _overview(store: Store, pid: int, meta: dict[str, Any]) -> list[Any]:
    breakdown = store.step_breakdown(pid)
    utilization = store.device_utilization(pid)
    ops = store.op_table(pid)
    kernels = store.kernel_table(pid)
    hints = step_hints(breakdown, utilization, store.runtime_split(pid))
    parts: list[Any] = [
        html.Div([html.P(h, className="prof-hint") for h in hints], id="prof-hints") if hints else None,
        ranks.section(store, pid),  # a job's profiles: step time per rank, stragglers, comm/compute overlap
        html.Div(
            [dcc.Graph(id="prof-breakdown", figure=breakdown_figure(breakdown), config=GRAPH_CONFIG, className="chart"),
             dcc.Graph(id="prof-utilization", figure=utilization_figure(utilization), config=GRAPH_CONFIG,
                       className="chart") if len(utilization) else html.P("No device activity in this profile.",
                                                                          className="muted chart")],
            className="prof-overview-grid",
        ),  # fmt: skip
        html.Div(
            [dcc.Graph(id="prof-top-ops", config=GRAPH_CONFIG, className="chart",
                       figure=top_figure(ops, "name", "host_self_ns", "Top operators (host self time)")),
             dcc.Graph(id="prof-top-kernels", config=GRAPH_CONFIG, className="chart",
                       figure=top_figure(kernels, "name", "total_ns", "Top kernels (device time)"))
             if len(kernels) else html.P("No GPU kernels.", className="muted chart")],
            className="prof-overview-grid",
        ),  # fmt: skip
    ]
    return [p for p in parts if p is not None]


def _tab_content(store: Store, pid: int, meta: dict[str, Any], tab: str, query: dict[str, str]) -> list[Any]:
    run_id = int(meta["run_id"])
    if tab == "overview":
        return _overview(store, pid, meta)
    spans = store.name_spans(pid).set_index("name")
    base = f"profile{pid}"
    search = query.get("q", "")
    if tab == "operators":
        shapes = query.get("shapes", "0") in ("1", "true", "yes")
        ops = store.op_table(pid, group_by_shape=shapes)
        modules = dict(store.op_modules(pid)[["name", "module"]].itertuples(index=False))
        toggle = dcc.Link("ungroup input shapes" if shapes else "group by input shape", id="prof-shapes",
                          href=urls.profile(pid, tab="operators", shapes=0 if shapes else 1))
        return [toggle, _grid("prof-grid", tables.op_rows(ops, pid, run_id, spans, modules), tables.op_columns(shapes),
                              f"{base}_operators.csv", search)]  # fmt: skip
    if tab == "kernels":
        kernels = store.kernel_table(pid)
        if kernels.empty:
            return [html.P("No device kernels in this profile: it ran on the CPU only, or was recorded without "
                           "ProfilerActivity.CUDA.", className="muted", id="prof-empty")]  # fmt: skip
        return [_grid("prof-grid", tables.kernel_rows(kernels, pid, spans), tables.kernel_columns(),
                      f"{base}_kernels.csv", search)]  # fmt: skip
    if tab == "modules":
        modules = store.module_table(pid)
        compiled = store.compiled_module_table(pid) if modules.empty else modules.iloc[:0]
        if not compiled.empty:  # compiled code has no module events: its time comes from Inductor's kernels
            return [html.P("Compiled code: time per module attributed from Inductor's kernels and extern calls "
                           "(forward).", className="muted", id="prof-compiled-note"),
                    _grid("prof-grid", tables.compiled_module_rows(compiled, run_id), tables.compiled_module_columns(),
                          f"{base}_modules.csv", search)]  # fmt: skip
        if modules.empty:
            return [html.P("No module events in this profile: profile with with_stack=True (run.profile) to see time "
                           "per nn.Module.", className="muted", id="prof-empty")]  # fmt: skip
        return [_grid("prof-grid", tables.module_rows(modules, pid, run_id, spans), tables.module_columns(),
                      f"{base}_modules.csv", search)]  # fmt: skip
    peaks = store.memory_peak(pid)
    if peaks.empty:
        return [html.P("No memory events in this profile: profile with profile_memory=True to see allocations.",
                       className="muted", id="prof-empty")]  # fmt: skip
    peak_text = [
        html.Span(f"peak {device_label(p['device_type'], p['device'])}: {fmt_bytes(p['peak_allocated'])} "
                  f"at {fmt_ms(p['peak_at'])}", className="prof-peak")
        for p in peaks.to_dict("records")
    ]  # fmt: skip
    return [
        html.Div(peak_text, className="meta", id="prof-peaks"),
        dcc.Graph(id="prof-memory", figure=memory_figure(store.memory_curve(pid), peaks), config=GRAPH_CONFIG,
                  className="chart"),
        html.H3("Operators that allocated most"),
        html.P("Allocations are counted in the operator running when they happened, frees in the one running when "
               "they happened. \u201cAllocated and not freed within the window\u201d is what an operator allocated "
               "that was still allocated when the profile ended: memory kept across the window (weights, optimizer "
               "state, activations saved for backward) shows there, which is not a leak by itself.",
               className="muted", id="prof-memory-note"),
        _grid("prof-grid", tables.memory_op_rows(store.memory_by_op(pid), pid, spans), tables.memory_op_columns(),
              f"{base}_memory_ops.csv", search),
    ]  # fmt: skip


def layout(store: Store, *, refresh_ms: int, query: dict[str, str], profile_id: str) -> Any:
    """The page of one profile; NotFoundError (404) for an unknown id, BadRequestError (400) for an unknown tab."""
    pid = int(profile_id)
    meta = store.profile(pid)
    tab = query.get("tab", "overview")
    if tab not in TABS:
        raise BadRequestError(f"tab must be one of {', '.join(TABS)}, not {tab!r}")
    content = _tab_content(store, pid, meta, tab, query)
    store.timeline_prefetch(pid)  # the timeline is one click away: load its index while the browser draws this
    return html.Div(
        [
            html.H1([meta["name"], html.Span(meta["source"], className="badge status-finished")]),
            html.Div(
                [html.Span(f"profile #{pid}"), dcc.Link(f"run #{meta['run_id']}", href=urls.run(meta["run_id"])),
                 *profile_facts(pid, meta, link_id="prof-timeline-link")],
                className="meta",
            ),  # fmt: skip
            dcc.Store(id="prof-view", data={"pid": pid, "tab": tab, "shapes": query.get("shapes")}),
            _tab_bar(pid, tab),
            html.Div(content, id=f"prof-{tab}", className="prof-tab-content"),
        ]
    )


def register(app: dash.Dash, store: Store) -> None:
    """Quick search (in the URL) and CSV export of whichever grid the tab shows."""

    @app.callback(
        Output("prof-grid", "dashGridOptions"),
        Input("prof-search", "value"),
        State("prof-grid", "dashGridOptions"),
        prevent_initial_call=True,
    )
    def quick_search(text: str | None, options: dict[str, Any] | None) -> dict[str, Any]:
        return {**(options or {}), "quickFilterText": text or ""}

    @app.callback(
        Output(history.ADDRESS, "data", allow_duplicate=True),
        Input("prof-search", "value"),
        State("prof-view", "data"),
        prevent_initial_call=True,
    )
    def address(text: str | None, view: dict[str, Any]) -> dict[str, Any]:
        """The address bar follows the quick search (replacing the entry: each key typed is no step to go back to)."""
        tab = None if view["tab"] == "overview" else view["tab"]
        href = urls.profile(view["pid"], tab=tab, shapes=view.get("shapes"), q=(text or "").strip() or None)
        return history.address(href)

    @app.callback(Output("prof-grid", "exportDataAsCsv"), Input("prof-csv", "n_clicks"), prevent_initial_call=True)
    def export_csv(_clicks: int) -> bool:
        return True
