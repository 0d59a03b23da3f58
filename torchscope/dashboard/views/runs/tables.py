"""Rows and columns of the runs grid. Pure functions: DataFrame in, AG Grid data out."""

from __future__ import annotations

from typing import Any

import pandas as pd

from torchscope.dashboard import urls
from torchscope.dashboard.formatting import fmt_duration, fmt_time, fmt_value, is_missing


def runs_columns(key_tags: list[str]) -> list[dict[str, Any]]:
    """AG Grid column definitions: the name links to the run's page."""
    columns: list[dict[str, Any]] = [
        {"field": "id", "headerName": "#", "minWidth": 90, "maxWidth": 100, "sort": "desc"},
        {"field": "name", "cellRenderer": "markdown", "minWidth": 180, "flex": 2, "wrapText": True, "autoHeight": True},
        {"field": "status", "cellClassRules": {f"status-{s}": f"params.value == '{s}'" for s in STATUSES}, "maxWidth": 130},
        {"field": "started", "minWidth": 170},
        {"field": "duration", "maxWidth": 130},
        {"field": "steps", "type": "numericColumn", "maxWidth": 110},
    ]
    columns += [{"field": tag, "headerName": tag, "type": "numericColumn", "flex": 1} for tag in key_tags]
    return columns


STATUSES = ("running", "finished", "failed", "interrupted")


def compare_href(selected: list[dict[str, Any]] | None) -> str | None:
    """The compare page for exactly two selected grid rows (older run as A), else None."""
    ids = sorted(int(row["id"]) for row in selected or [])
    return urls.compare(ids[0], ids[1]) if len(ids) == 2 else None


def runs_rows(summaries: pd.DataFrame, key_tags: list[str]) -> list[dict[str, Any]]:
    """One grid row per run, values already formatted for display."""
    rows = []
    for rec in summaries.to_dict("records"):
        row = {
            "id": int(rec["id"]),
            "name": f"[{_escape(rec['name'])}]({urls.run(rec['id'])})",
            "status": rec["status"],
            "started": fmt_time(rec["started_at"]),
            "duration": fmt_duration(rec["duration_ns"]),
            "steps": None if is_missing(rec["last_step"]) else int(rec["last_step"]) + 1,
        }
        for tag in key_tags:
            row[tag] = fmt_value(rec.get(tag))
        rows.append(row)
    return rows


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|<>" else c for c in str(text))
