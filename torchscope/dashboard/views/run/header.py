"""The header of a run's page: status, elapsed time, speed, latest values, NaN/Inf alerts, artifacts. Pure builders.

Each piece is its own element with an id so the page's poll replaces only what changed; the config table is built
once, so an opened ``<details>`` stays open while the run trains.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
from dash import dcc, html

from torchscope.dashboard import urls
from torchscope.dashboard.formatting import fmt_duration, fmt_steps, fmt_value

SYSTEM = "sys/"


def steps_text(last_step: Any) -> str:
    """``steps N`` (last step + 1), ``steps -`` before any."""
    return f"steps {fmt_steps(last_step)}"


def rate_text(rate: float | None) -> str:
    """``12.3 steps/s``; ``- steps/s`` when unknown."""
    if rate is None or not math.isfinite(rate):
        return "- steps/s"
    return f"{rate:.3g} steps/s" if rate < 1000 else f"{rate:,.0f} steps/s"


def latest_values(last: pd.DataFrame) -> list[Any]:
    """The latest value of every training tag (system metrics have their own charts), sorted by tag."""
    rows = sorted((t, v) for t, v in zip(last["tag"], last["value"]) if not t.startswith(SYSTEM))
    return [html.Span([html.B(tag), f" {fmt_value(float(value))}"], className="latest", title=repr(float(value)))
            for tag, value in rows]  # fmt: skip


def config_block(config: dict[str, Any]) -> Any:
    """A collapsed table of the run's config; None when there is none."""
    if not config:
        return None
    return html.Details(
        [
            html.Summary(f"config ({len(config)})"),
            html.Table([html.Tr([html.Td(k), html.Td(json.dumps(v, default=str))]) for k, v in sorted(config.items())]),
        ],
        className="config",
    )


def alert_block(run_id: int, found: list[tuple[str, int, str]], artifacts: pd.DataFrame | None = None) -> Any:
    """A visible alert for NaN/Inf: the first one of each scalar tag, and the anomalies graph capture found (where a
    NaN/Inf was first produced), each linking to the graph view at its step. None when there is nothing to report."""
    anomalies = [] if artifacts is None else artifacts[artifacts["kind"] == "anomaly"].to_dict("records")
    if not found and not anomalies:
        return None
    items = [html.Li(f"{tag}: {label} at step {step}") for tag, step, label in found[:8]]
    if len(found) > 8:
        items.append(html.Li(f"... and {len(found) - 8} more tags"))
    for rec in anomalies[:8]:
        items.append(html.Li(dcc.Link(f"step {rec['step']}: first NaN/Inf from {rec['name']}",
                                      href=urls.graph(run_id, step=rec["step"]))))  # fmt: skip
    first_step = min([step for _, step, _ in found] + [int(rec["step"]) for rec in anomalies])
    title = "Non-finite values (NaN/Inf) logged" if found else "NaN/Inf produced inside the model"
    return html.Div(
        [
            html.B(title),
            html.Ul(items),
            dcc.Link(f"Inspect the graph at step {first_step}", href=urls.graph(run_id, step=first_step)),
        ],
        className="alert alert-nonfinite",
        role="alert",
    )


def artifacts_block(run_id: int, artifacts: pd.DataFrame, imported: bool = False) -> Any:
    """Links to the captured (``imported``: imported) graphs and profiles of the run (anomalies go to
    :func:`alert_block`)."""
    links = []
    for rec in artifacts[artifacts["kind"] != "anomaly"].to_dict("records"):
        if rec["kind"] == "profile":
            links.append(dcc.Link(f"profile {rec['name']}", href=urls.profile(rec["id"]), className="artifact"))
        else:
            step = rec["step"]
            links.append(dcc.Link(f"graph at step {step} ({rec['name']})", href=urls.graph(run_id, step=step),
                                  className="artifact"))  # fmt: skip
    if not links:
        return None
    return html.Div([html.Span("imported" if imported else "captured", className="muted"), *links],
                    className="artifacts")


DROPPED_KINDS = (("dropped_scalars", "scalar value"), ("dropped_steps", "captured step"),
                 ("dropped_profiles", "profile window"))  # fmt: skip


def dropped_text(run: dict[str, Any]) -> str | None:
    """One line saying what the training process could not store, by kind; None when nothing was dropped."""
    total = int(run.get("dropped") or 0)
    if total <= 0:
        return None
    counts = [(int(run.get(column) or 0), label) for column, label in DROPPED_KINDS]
    counts.append((total - sum(n for n, _ in counts), "other record"))  # runs stored before the kinds were counted
    items = [f"{n:,} {label}{'' if n == 1 else 's'}" for n, label in counts if n > 0]
    return (f"not stored: {', '.join(items)} (the database could not be written or the writer could not keep up; "
            "the training process warned why)")  # fmt: skip


def header_parts(run: dict[str, Any], rate: float | None) -> dict[str, Any]:
    """Texts of the header's live pieces: ``status``, ``status_class``, ``elapsed``, ``rate``, ``steps``, ``error``,
    ``dropped``. An imported run (``source == "import"``) has no rate: its log's wall times say when values were
    written, not how fast it trained."""
    return {
        "status": run["status"],
        "status_class": f"badge status-{run['status']}",
        "elapsed": f"elapsed {fmt_duration(run['duration_ns'])}",
        "rate": None if run.get("source") == "import" else rate_text(rate),
        "steps": steps_text(run["last_step"]),
        "error": f"error: {run['error']}" if run.get("error") else None,
        "dropped": dropped_text(run),
    }
