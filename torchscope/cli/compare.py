"""``torchscope compare A B``: the top of each diff table, as text for the terminal. Pure over a Comparison."""

from __future__ import annotations

import math

import click
import pandas as pd

from torchscope.cli.options import db_option
from torchscope.storage.compare.records import Comparison
from torchscope.errors import BadRequestError
from torchscope.dashboard.formatting import fmt_ns, fmt_pct, fmt_value, truncate
from torchscope.storage.compare import diff
from torchscope.storage.store import Store


def _short(name: object, width: int = 90) -> str:
    return truncate(str(name) or "(root)", width)  # the root module's path is ""


def diff_rows(table: pd.DataFrame, key: str, time: str, top: int) -> pd.DataFrame:
    """The ``top`` rows of an op/kernel/module diff formatted for print: key, status, calls, time A/B/delta."""
    head = table.head(top)
    return pd.DataFrame(
        {
            key: head[key].map(_short),
            "status": head["status"],
            "calls A": head["calls_a"],
            "calls B": head["calls_b"],
            "A": head[f"{time}_a"].map(fmt_ns),
            "B": head[f"{time}_b"].map(fmt_ns),
            "delta": head[f"{time}_delta"].map(lambda v: fmt_ns(v, signed=True)),
            "change": [_change(p, s) for p, s in zip(head["pct_change"], head["status"])],
        }
    )


def _change(pct: float, status: str) -> str:
    if status != diff.BOTH:
        return status
    return "-" if math.isnan(pct) else fmt_pct(pct)  # NaN: nothing in A to be relative to


def _section(title: str, body: str) -> str:
    return f"\n{title}\n{'-' * len(title)}\n{body}"


def _table_section(title: str, table: pd.DataFrame | None, key: str, time: str, top: int) -> str:
    if table is None:
        return ""
    if table.empty:
        return _section(title, "(none in either profile)")
    t = diff.totals(table, [time])
    only_a, only_b = (int((table["status"] == s).sum()) for s in (diff.ONLY_A, diff.ONLY_B))
    footer = (
        f"total {time}: A {fmt_ns(t.at[0, 'a'])}, B {fmt_ns(t.at[0, 'b'])}, change {fmt_ns(t.at[0, 'delta'], True)} "
        f"(= sum of the rows' deltas); {len(table)} rows, {only_a} only in A, {only_b} only in B"
    )
    shown = diff_rows(table, key, time, top).to_string(index=False)
    return _section(f"{title} by {time} (top {min(top, len(table))}, largest change first)", f"{shown}\n{footer}")


def report(cmp: Comparison, top: int = 15) -> str:
    """The whole printable comparison: sides, notes, config, scalars, steps, ops, kernels, modules, graph."""
    parts = [f"A: {cmp.a.label}", f"B: {cmp.b.label}"] + [f"note: {n}" for n in cmp.notes]
    if cmp.config is not None:
        body = "(same)" if cmp.config.empty else cmp.config.fillna("-").to_string(index=False)
        parts.append(_section("Config differences", body))
    if cmp.scalar_summary is not None and not cmp.scalar_summary.empty:
        s = cmp.scalar_summary.head(top)
        shown = pd.DataFrame({"tag": s["tag"], "status": s["status"], "last A": s["last_a"].map(_value),
                              "last B": s["last_b"].map(_value), "delta": s["last_delta"].map(_value)})  # fmt: skip
        parts.append(_section("Scalars (value at the last step)", shown.to_string(index=False)))
    if cmp.breakdown is not None:
        b = cmp.breakdown
        steps_a, steps_b = b.attrs.get("steps", ("?", "?"))
        shown = pd.DataFrame({"category": b["category"], "A": b["mean_ns_a"].map(fmt_ns),
                              "B": b["mean_ns_b"].map(fmt_ns),
                              "delta": b["mean_ns_delta"].map(lambda v: fmt_ns(v, True))})  # fmt: skip
        title = f"Step time, mean per step ({steps_a} steps in A, {steps_b} in B)"
        parts.append(_section(title, shown.to_string(index=False)))
    if cmp.ops is not None:
        parts.append(_table_section("Operators", cmp.ops, "name", cmp.ops.attrs.get("sort_by", "host_self_ns"), top))
        parts.append(_table_section("Kernels", cmp.kernels, "name", "total_ns", top))
        if cmp.modules is not None and not cmp.modules.empty:
            time = cmp.modules.attrs.get("sort_by", "host_self_ns")
            parts.append(_table_section("Modules", cmp.modules, "module", time, top))
    if cmp.graph_nodes is not None:
        parts.append(_graph_section(cmp, top))
    if cmp.module_times is not None:
        time = cmp.module_times.attrs.get("sort_by", "host_self_ns")
        parts.append(_table_section("Graph modules", cmp.module_times, "module", time, top))
    return "\n".join(p for p in parts if p)


def _value(v: float) -> str:
    return fmt_value(v, nan="-")  # NaN: a side without this value


def _graph_section(cmp: Comparison, top: int) -> str:
    nodes, modules = cmp.graph_nodes, cmp.graph_modules
    lines = []
    for status in (diff.ONLY_A, diff.ONLY_B):
        mods = modules[modules["status"] == status]
        if not mods.empty:
            lines.append(f"modules {status}: " + ", ".join(f"{m} ({c})" for m, c in zip(mods["module"],
                         mods["class_b" if status == diff.ONLY_B else "class_a"])))  # fmt: skip
        ops = nodes[(nodes["status"] == status) & (nodes["kind"] == "op")]
        if not ops.empty:
            names = ops["name_b" if status == diff.ONLY_B else "name_a"]
            lines.append(f"ops {status}: " + ", ".join(f"{n} ({o} in {m or '(root)'})" for n, o, m in
                                                     zip(names, ops["op"], ops["module"])))  # fmt: skip
    shared = int((nodes["status"] == diff.BOTH).sum())
    changed = int(nodes["shape_changed"].sum())
    lines.append(f"{shared} nodes in both graphs, {changed} of them with other output shapes")
    changes = cmp.node_changes
    if changes is not None and not changes.empty:
        c = changes.head(top)
        shown = pd.DataFrame({"node": c["name_b"], "module": c["module"], "role": c["role"],
                              "norm A": c["norm_a"].map(_value), "norm B": c["norm_b"].map(_value),
                              "change": c["norm_change"].map(fmt_pct)})  # fmt: skip
        lines.append("largest changes of the L2 norm on the shared structure:\n" + shown.to_string(index=False))
    return _section("Graph", "\n".join(lines))


def compare_report(store: Store, a: str, b: str, top: int = 15) -> str:
    """What ``torchscope compare A B`` prints: :func:`report` of :func:`torchscope.compare`."""
    if top < 1:
        raise BadRequestError("--top must be at least 1")
    return report(store.compare(a, b), top=top)


@click.command(name="compare")
@click.argument("a")
@click.argument("b")
@db_option
@click.option("--top", default=15, show_default=True, help="Rows per table.")
def compare_command(a: str, b: str, db: str | None, top: int) -> None:
    """Compare two runs (or profiles: p12 p13) and print what changed."""
    with Store(db) as store:
        click.echo(compare_report(store, a, b, top=top))
