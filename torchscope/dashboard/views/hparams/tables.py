"""Rows and columns of the hparams grid: one row per run with hparams, one column per hparam and per metric. Pure.

AG Grid reads a dotted field (``opt.name``) as a path into nested objects, so every hparam and metric gets a plain
field id (``h0``, ``m0``, ...) and its real name as the header; :class:`HparamsTable` keeps the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from torchscope.dashboard import urls
from torchscope.dashboard.formatting import is_missing


@dataclass(frozen=True)
class HparamsTable:
    """The grid's rows, the hparam and metric names in column order, and their field ids."""

    rows: list[dict[str, Any]]
    hparams: list[str]
    metrics: list[str]

    def field(self, kind: str, index: int) -> str:
        """The grid field of the ``index``-th hparam (``kind == "hparam"``) or metric."""
        return f"{'h' if kind == 'hparam' else 'm'}{index}"

    @property
    def fields(self) -> dict[str, str]:
        """``{field: name}`` of every hparam and metric column."""
        names = {self.field("hparam", i): n for i, n in enumerate(self.hparams)}
        names.update({self.field("metric", i): n for i, n in enumerate(self.metrics)})
        return names

    def metric_field(self, name: str | None) -> str | None:
        """The field of metric ``name``, None when there is no such metric."""
        return self.field("metric", self.metrics.index(name)) if name in self.metrics else None


def hparams_table(hparams: pd.DataFrame, runs: pd.DataFrame) -> HparamsTable:
    """The table of ``Store.hparams()`` (long: ``run_id, kind, key, value``) with the runs' names and statuses
    (``Store.runs()``), newest run first."""
    names = sorted(set(hparams.loc[hparams["kind"] == "hparam", "key"]))
    metrics = sorted(set(hparams.loc[hparams["kind"] == "metric", "key"]))
    table = HparamsTable([], names, metrics)
    index = {("hparam", n): table.field("hparam", i) for i, n in enumerate(names)}
    index.update({("metric", n): table.field("metric", i) for i, n in enumerate(metrics)})
    info = runs.set_index("id")
    rows: dict[int, dict[str, Any]] = {}
    for run_id, kind, key, value in zip(hparams["run_id"], hparams["kind"], hparams["key"], hparams["value"]):
        run_id = int(run_id)
        if run_id not in rows:
            name = str(info.loc[run_id, "name"]) if run_id in info.index else str(run_id)
            rows[run_id] = {"id": run_id, "run": f"[{_escape(name)}]({urls.run(run_id)})", "name": name,
                            "source": str(info.loc[run_id, "source"]) if run_id in info.index else ""}  # fmt: skip
        rows[run_id][index[(kind, key)]] = _cell(value)
    return HparamsTable([rows[r] for r in sorted(rows, reverse=True)], names, metrics)


def _cell(value: Any) -> Any:
    """A JSON-safe cell: numbers stay numbers (NaN/Inf as None, which sorts last), the rest as text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return None if is_missing(value) or value in (float("inf"), float("-inf")) else value
    return None if value is None else str(value)


def _escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!|<>" else c for c in text)


NUMBER = {"function": "params.value == null ? '' : d3.format('.4~g')(params.value)"}
"""Numbers to 4 significant digits, as the run page shows values (float32 metrics read 0.8, not 0.800000011920929);
the exact value is the cell's tooltip, and sorting and filtering use it."""


def hparams_columns(table: HparamsTable) -> list[dict[str, Any]]:
    """AG Grid columns: the run (a link), each hparam, each metric (numbers, right-aligned, number filters)."""
    columns: list[dict[str, Any]] = [
        {"field": "id", "headerName": "#", "maxWidth": 90, "filter": "agNumberColumnFilter"},
        {"field": "run", "headerName": "run", "cellRenderer": "markdown", "minWidth": 160,
         "filterValueGetter": {"function": "params.data.name"}},
    ]  # fmt: skip
    numeric = {f: all(isinstance(r.get(f), (int, float)) for r in table.rows if r.get(f) is not None)
               for f in table.fields}  # fmt: skip
    for field, name in table.fields.items():
        column: dict[str, Any] = {"field": field, "headerName": name, "headerTooltip": name, "minWidth": 110}
        if numeric[field]:
            column.update(type="numericColumn", filter="agNumberColumnFilter", valueFormatter=NUMBER,
                          tooltipValueGetter={"function": "params.value == null ? '' : String(params.value)"})
        column["headerClass"] = "hparam-metric" if field.startswith("m") else "hparam-param"
        columns.append(column)
    return columns
