"""``/compare?a=<id>&b=<id>``: two runs or two profiles side by side (``3`` is a run, ``p12`` a profile).

The page is drawn once on the server from :func:`torchscope.compare`; nothing is live. ``align=time`` lines
the scalar curves up by seconds since each run started instead of by step. The form at the top submits a plain GET,
so every comparison is a URL that can be shared and reloaded.
"""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import dcc, html

from torchscope.storage.compare.records import ONLY_A, ONLY_B, PROFILE, Comparison, Side, totals
from torchscope.dashboard.views.compare.figures import breakdown_bars, change_bars, scalar_overlay
from torchscope.dashboard import urls
from torchscope.dashboard.components import data_grid, plot_config
from torchscope.dashboard.scripts import GRID, FirstPaint
from torchscope.dashboard.formatting import fmt_ms, fmt_us
from torchscope.dashboard.views.compare.tables import (
    diff_columns, diff_rows, graph_node_columns, graph_node_rows, node_change_columns, node_change_rows,
)  # fmt: skip
from torchscope.errors import BadRequestError
from torchscope.storage.store import Store

MAX_POINTS = 2000
"""Points per tag and run read for the scalar overlays."""
MAX_TAGS = 24
"""Scalar overlays drawn at most; the rest are listed by name."""
MAX_CHOICES = 50
"""Newest runs and newest profiles offered as completions in the form."""
MAX_ROWS = 500
"""Rows per diff grid (largest changes first)."""
GRAPH_CONFIG = plot_config(responsive=True)


def _choices(store: Store) -> html.Datalist:
    """The newest runs and profiles, offered as the form's completions."""
    runs = store.runs().head(MAX_CHOICES)
    profiles = store.profiles().tail(MAX_CHOICES).iloc[::-1]
    options = [html.Option(value=str(r["id"]), label=f"run {r['id']}: {r['name']}") for r in runs.to_dict("records")]
    options += [html.Option(value=f"p{p['id']}", label=f"profile {p['id']}: {p['name']} (run {p['run_id']})")
                for p in profiles.to_dict("records")]  # fmt: skip
    return html.Datalist(options, id="compare-choices")


def _form(store: Store, a: str, b: str) -> html.Form:
    inputs = {"name": "", "list": "compare-choices", "debounce": True, "autoComplete": "off"}
    return html.Form(
        [
            html.Label(["A ", dcc.Input(id="compare-a", value=a, placeholder="3 or p12", **{**inputs, "name": "a"})]),
            html.Label(["B ", dcc.Input(id="compare-b", value=b, placeholder="4 or p13", **{**inputs, "name": "b"})]),
            html.Button("Compare", type="submit", id="compare-go"),
            html.Span("runs: 3 (or run:3); profiles: p12 (or profile:12)", className="muted"),
            _choices(store),
        ],
        action=urls.compare(),
        method="get",
        className="compare-form",
    )


def first_paint(query: dict[str, str]) -> FirstPaint:
    """Charts and grids, or just the form when the URL names no side
    (:func:`torchscope.dashboard.routes.first_paint`)."""
    if not query.get("a", "").strip() and not query.get("b", "").strip():
        return FirstPaint(plotly=None)
    return FirstPaint(components=(GRID,))


def layout(store: Store, *, refresh_ms: int, query: dict[str, str]) -> Any:
    """The comparison of ``query["a"]`` and ``query["b"]``; just the form when neither is given.

    Raises ``BadRequestError`` (400) for a malformed id or a missing side, ``NotFoundError`` (404) for an unknown one.
    """
    a, b = query.get("a", "").strip(), query.get("b", "").strip()
    if not a and not b:
        return html.Div([html.H1("Compare"), _form(store, a, b)])
    if not a or not b:
        raise BadRequestError("give both sides of the comparison: /compare?a=<id>&b=<id> (3 is a run, p12 a profile)")
    align = query.get("align", "step")
    if align not in ("step", "time"):
        raise BadRequestError(f"align must be step or time, not {align!r}")
    shapes = query.get("shapes", "0") in ("1", "true", "yes")
    cmp = store.compare(a, b, align=align, max_points=MAX_POINTS, group_by_shape=shapes)
    return html.Div(
        [
            html.H1("Compare"),
            _form(store, a, b),
            _sides(cmp),
            html.Ul([html.Li(n) for n in cmp.notes], className="compare-notes", id="compare-notes"),
            *_run_sections(cmp, a, b, align),
            *_profile_sections(cmp, a, b, shapes),
            *_graph_sections(cmp),
        ],
        className="compare-page",
    )


def register(app: dash.Dash, store: Store) -> None:
    """Nothing to register: the page is static, and its form and links are plain URLs."""


def _link(side: Side) -> Any:
    return dcc.Link(side.label, href=urls.profile(side.id) if side.kind == PROFILE else urls.run(side.run_id))


def _sides(cmp: Comparison) -> html.Div:
    return html.Div(
        [
            html.Div([html.Span("A", className="side-tag side-a"), _link(cmp.a)], id="compare-side-a"),
            html.Div([html.Span("B", className="side-tag side-b"), _link(cmp.b)], id="compare-side-b"),
        ],
        className="compare-sides",
    )


def _grid(grid_id: str, rows: list[dict[str, Any]], columns: list[dict[str, Any]]) -> Any:
    return data_grid(grid_id, rows, columns, page_size=20, height=640, shrink=True, class_name="compare-grid")


# -- runs: config and scalars ---------------------------------------------------------------------------------------


def _run_sections(cmp: Comparison, a: str, b: str, align: str) -> list[Any]:
    if cmp.config is None:
        return []
    config = cmp.config
    if config.empty:
        config_block: Any = html.P("same config", className="muted")
    else:
        rows = [html.Tr([html.Td(r["key"]), html.Td(r["status"]), html.Td(r["value_a"] or "-"),
                         html.Td(r["value_b"] or "-")]) for r in config.to_dict("records")]  # fmt: skip
        head = html.Tr([html.Th("key"), html.Th("status"), html.Th("A"), html.Th("B")])
        config_block = html.Table([html.Thead(head), html.Tbody(rows)], className="compare-config", id="compare-config")
    other = "time" if align == "step" else "step"
    toggle = dcc.Link(f"align by {'relative time' if other == 'time' else 'step'}",
                      href=urls.compare(a, b, align=other), id="compare-align")  # fmt: skip
    return [
        html.Section([html.H3("Config differences"), config_block]),
        html.Section([html.H3(["Scalars ", html.Span(f"(aligned by {align})", className="muted"), " ", toggle]),
                      _scalar_charts(cmp.scalars, align)], id="compare-scalars"),  # fmt: skip
    ]


def _scalar_charts(points: pd.DataFrame, align: str) -> Any:
    if points is None or points.empty:
        return html.P("neither run logged scalars", className="muted")
    tags = list(dict.fromkeys(points["tag"]))
    cells = []
    x_title = "step" if align == "step" else "seconds since start"
    for tag, group in list(points.groupby("tag", sort=True))[:MAX_TAGS]:
        figure = scalar_overlay(group, tag, x_title=x_title)
        cells.append(html.Div(dcc.Graph(figure=figure, config=GRAPH_CONFIG, className="chart"),
                              className="chart-cell", **{"data-tag": tag}))  # fmt: skip
    more = [] if len(tags) <= MAX_TAGS else [html.P(f"{len(tags) - MAX_TAGS} more tags not drawn", className="muted")]
    return html.Div([html.Div(cells, className="chart-grid"), *more])


# -- profiles -------------------------------------------------------------------------------------------------------


def _profile_sections(cmp: Comparison, a: str, b: str, shapes: bool) -> list[Any]:
    if cmp.breakdown is None:
        return []
    wall = cmp.breakdown[cmp.breakdown["category"] == "wall"].iloc[0]
    steps_a, steps_b = cmp.breakdown.attrs.get("steps", (0, 0))
    summary = html.Div(
        [
            html.Span(f"A: {fmt_ms(wall['mean_ns_a'])} per step ({steps_a} steps)"),
            html.Span(f"B: {fmt_ms(wall['mean_ns_b'])} per step ({steps_b} steps)"),
            html.Span(f"change {fmt_ms(wall['mean_ns_delta'], signed=True)}", id="compare-step-delta"),
        ],
        className="meta",
    )
    sections = [html.Section([html.H3("Step time"), summary,
                              dcc.Graph(figure=breakdown_bars(cmp.breakdown), config=GRAPH_CONFIG),
                              _steps_table(cmp.steps)], id="compare-steps")]  # fmt: skip
    for title, table, key, mean, grid_id in (
        ("Kernels", cmp.kernels, "name", "mean_ns", "compare-kernels"),
        ("Operators", cmp.ops, "name", None, "compare-ops"),
        ("Modules", cmp.modules, "module", None, "compare-modules"),
    ):
        if table is None or table.empty:
            continue
        heading: list[Any] = [title]
        if grid_id == "compare-ops":
            toggle = "0" if shapes else "1"
            label = "ungroup input shapes" if shapes else "group by input shapes"
            heading += [" ", dcc.Link(label, id="compare-shapes", href=urls.compare(a, b, shapes=toggle))]
            if shapes:  # one key column for the grid and the chart: the op and its input shapes
                table = table.assign(name=table["name"] + " " + table["input_shapes"].fillna("")).rename_axis(None)
        time = table.attrs.get("sort_by", "total_ns")
        mean_col = mean or ("device_mean_ns" if time.startswith("device") else "host_mean_ns")
        sums = totals(table, [time]).iloc[0]
        caption = (f"{len(table)} rows: {int((table['status'] == ONLY_A).sum())} only in A, "
                   f"{int((table['status'] == ONLY_B).sum())} only in B; total {time}: "
                   f"{fmt_us(sums['a'], 1, grouped=True)} → {fmt_us(sums['b'], 1, grouped=True)} "
                   f"({fmt_us(sums['delta'], 1, signed=True, grouped=True)}, "
                   "the sum of the rows' changes)")  # fmt: skip
        sections.append(
            html.Section(
                [
                    html.H3(heading),
                    dcc.Graph(figure=change_bars(table, key, time, title=f"{title.lower()}: largest changes"),
                              config=GRAPH_CONFIG, id=f"{grid_id}-bars"),
                    html.P(caption, className="muted", id=f"{grid_id}-totals"),
                    _grid(grid_id, diff_rows(table.head(MAX_ROWS), key, time, mean_col), diff_columns(key, time)),
                ],
                className="compare-table",
            )  # fmt: skip
        )
    return sections


def _steps_table(steps: pd.DataFrame, limit: int = 50) -> html.Table:
    """Each step's wall time, A's i-th step beside B's i-th step (step numbers differ between traces)."""
    head = html.Tr([html.Th(h) for h in ("#", "step A", "step B", "A (ms)", "B (ms)", "B - A (ms)")])
    body = [html.Tr([html.Td(int(r["index"])), html.Td("-" if pd.isna(r["step_a"]) else int(r["step_a"])),
                     html.Td("-" if pd.isna(r["step_b"]) else int(r["step_b"])),
                     html.Td(fmt_ms(r["wall_ns_a"], unit=False)), html.Td(fmt_ms(r["wall_ns_b"], unit=False)),
                     html.Td(fmt_ms(r["wall_ns_delta"], signed=True, unit=False))])
            for r in steps.head(limit).to_dict("records")]  # fmt: skip
    return html.Table([html.Thead(head), html.Tbody(body)], className="compare-config", id="compare-step-table")


# -- graphs ---------------------------------------------------------------------------------------------------------


def _graph_sections(cmp: Comparison) -> list[Any]:
    if cmp.graph_nodes is None:
        return []
    nodes, modules = cmp.graph_nodes, cmp.graph_modules
    items = []
    for status, cls in ((ONLY_A, "class_a"), (ONLY_B, "class_b")):
        mods = modules[modules["status"] == status]
        text = ", ".join(f"{m or '(root)'} ({c})" for m, c in zip(mods["module"], mods[cls])) or "none"
        items.append(html.Li([html.B(f"modules {status}: "), text], id=f"compare-modules-{status.split()[-1].lower()}"))
    link = dcc.Link("open B's graph coloured by change", href=urls.graph(cmp.b.run_id, compare=cmp.a.run_id))
    rows = graph_node_rows(nodes)
    parts: list[Any] = [html.H3("Graph"), html.Ul(items, className="compare-graph-summary"), link]
    if rows:
        parts += [html.H4("Nodes only in A or only in B, or with a new output shape"),
                  _grid("compare-graph-nodes", rows, graph_node_columns())]  # fmt: skip
    if cmp.node_changes is not None and not cmp.node_changes.empty:
        rows = node_change_rows(cmp.node_changes.head(MAX_ROWS))
        parts += [html.H4("Activation and gradient statistics on the shared structure"),
                  _grid("compare-node-changes", rows, node_change_columns())]
    times = cmp.module_times
    if times is not None and not times.empty:
        time = times.attrs.get("sort_by", "host_self_ns")
        mean = "device_mean_ns" if time.startswith("device") else "host_mean_ns"
        rows = diff_rows(times.assign(module=times["module"].replace("", "(root)")), "module", time, mean)
        parts += [html.H4("Time per module of the captured graph (from each run's latest profile)"),
                  _grid("compare-module-times", rows, diff_columns("module", time))]
    return [html.Section(parts, id="compare-graph")]
