"""Rows and columns of the runs grid. Pure functions: DataFrame in, AG Grid data out.

The runs of one distributed job (the same ``job_id``, two or more runs) are one row: its name cell names the job and
links each rank's run, its status is the worst of theirs (running, then failed, interrupted, finished), it started
with the first rank and lasted as long as the longest, and its steps and key values are the lowest rank's. The row's
id is its newest run's, so the grid's newest-first order puts a job where its ranks started.
"""

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
    ids = sorted(int(row["id"]) for row in selected or [] if not row.get("job"))
    return urls.compare(ids[0], ids[1]) if len(ids) == 2 else None


WORST_FIRST = ("running", "failed", "interrupted", "finished")
"""A job's status: the first of these that any of its ranks has."""


def job_row(ranks: list[dict[str, Any]], key_tags: list[str]) -> dict[str, Any]:
    """The grid row of one job from its runs' records (``Store.run_summaries`` rows)."""
    def number(value: Any) -> int | None:
        return None if is_missing(value) else int(value)

    ranks = sorted(ranks, key=lambda r: (number(r["rank"]) is None, number(r["rank"]) or 0, r["id"]))
    first = ranks[0]
    links = " · ".join(f"[rank {'?' if number(r['rank']) is None else number(r['rank'])}]({urls.run(r['id'])})"
                       for r in ranks)  # fmt: skip
    world = number(first.get("world_size"))
    size = f"{len(ranks)} ranks" + (f" of {world}" if world is not None and world != len(ranks) else "")
    statuses = {r["status"] for r in ranks}
    row = {
        "id": max(int(r["id"]) for r in ranks),
        "name": f"**{_escape(first['job_id'])}** · job, {size}  \n{links}",
        "status": next((s for s in WORST_FIRST if s in statuses), first["status"]),
        "started": fmt_time(min(r["started_at"] for r in ranks)),
        "duration": fmt_duration(max(r["duration_ns"] for r in ranks)),
        "steps": None if is_missing(first["last_step"]) else int(first["last_step"]) + 1,
        "job": first["job_id"],
    }
    for tag in key_tags:
        row[tag] = fmt_value(first.get(tag))
    return row


def runs_rows(summaries: pd.DataFrame, key_tags: list[str]) -> list[dict[str, Any]]:
    """One grid row per run, values already formatted for display; a job's runs are one row (:func:`job_row`)."""
    records = summaries.to_dict("records")
    jobs: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        if rec.get("job_id") is not None:
            jobs.setdefault(rec["job_id"], []).append(rec)
    rows = []
    for rec in records:
        ranks = jobs.get(rec.get("job_id")) if rec.get("job_id") is not None else None
        if ranks is not None and len(ranks) > 1:
            if rec is ranks[0]:  # the job's row takes the place of its first listed run
                rows.append(job_row(ranks, key_tags))
            continue
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
