"""The profile overview's "Ranks" section, for a profile whose distributed job has several ranks in the store.

Step time per rank and step as grouped bars (straggling steps outlined red), a table per rank (mean step, compute,
communication, their overlap, idle time, straggling steps) and one link per straggling step that opens the
timeline on that rank's step with every rank side by side, aligned on it. Pure builders, plus :func:`section`,
which reads the store. The definitions are the store's (``Store.rank_steps``; docs/views-profile.md, "Ranks").
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import dcc, html

from torchscope.dashboard import urls
from torchscope.dashboard.components import plot_config
from torchscope.dashboard.formatting import fmt_ms
from torchscope.storage.store import STRAGGLER_THRESHOLD, Store

STRAGGLER_COLOR = "#d62728"
RANK_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#72b7b2", "#eeca3b", "#ff9da6", "#9d755d")


def step_time_figure(steps: pd.DataFrame) -> dict[str, Any]:
    """Grouped bars: x = step, one bar per rank (its step time, ms); a straggling step's bar is outlined red and
    its hover says why."""
    data = []
    for i, (rank, frame) in enumerate(steps.groupby("rank", sort=True)):
        flagged = frame["straggler"].to_numpy(bool)
        data.append(dict(
            type="bar", name=f"rank {rank}", x=[f"step {s}" for s in frame["step"]], y=(frame["step_ns"] / 1e6).tolist(),
            marker={"color": RANK_COLORS[i % len(RANK_COLORS)],
                    "line": {"color": [STRAGGLER_COLOR if f else "rgba(0,0,0,0)" for f in flagged],
                             "width": [3 if f else 0 for f in flagged]}},
            customdata=[[r or "-", c / 1e6, m / 1e6] for r, c, m in zip(frame["reason"], frame["compute_ns"], frame["comm_ns"])],
            hovertemplate=(f"rank {rank} · %{{x}}: %{{y:.3f}} ms<br>compute %{{customdata[1]:.3f}} ms · "
                           "comm %{customdata[2]:.3f} ms<br>straggling: %{customdata[0]}<extra></extra>"),
        ))  # fmt: skip
    layout = {"barmode": "group", "title": {"text": "Step time per rank (straggling steps outlined red)"},
              "yaxis": {"title": {"text": "ms"}, "automargin": True}, "margin": {"l": 10, "r": 10, "t": 40, "b": 40},
              "plot_bgcolor": "white", "height": 320, "legend": {"orientation": "h", "y": -0.2}}  # fmt: skip
    return {"data": data, "layout": layout}


def _pct(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.1f}%"


def rank_table(summary: pd.DataFrame, current: int) -> html.Table:
    """One row per rank: its profile, steps, mean step, compute, comm, overlap (% of comm), idle (% of step time),
    straggling steps; the open profile's row marked."""
    head = ["rank", "profile", "steps", "mean step", "compute", "comm", "overlap", "idle", "straggling steps"]
    rows = [
        html.Tr([
            html.Td(str(r["rank"])), html.Td(dcc.Link(f"#{r['profile_id']}", href=urls.profile(int(r["profile_id"])))),
            html.Td(str(r["steps"])), html.Td(fmt_ms(r["step_ns"])), html.Td(fmt_ms(r["compute_ns"])),
            html.Td(fmt_ms(r["comm_ns"])), html.Td(f"{fmt_ms(r['overlap_ns'])} ({_pct(r['overlap_pct'])} of comm)"),
            html.Td(f"{fmt_ms(r['idle_ns'])} ({_pct(r['idle_pct'])})"), html.Td(str(r["stragglers"])),
        ], className="prof-rank-current" if int(r["profile_id"]) == current else None)  # fmt: skip
        for r in summary.to_dict("records")
    ]
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)], id="prof-ranks-table",
                      className="prof-ranks-table")  # fmt: skip


def straggler_links(steps: pd.DataFrame, starts: dict[int, int], room: float = 0.1) -> list[dict[str, Any]]:
    """``{"rank", "step", "text", "href"}`` per straggling step: the timeline of that rank's profile on the step's
    window (``room`` of its length either side), every rank side by side and aligned on that step. ``starts`` maps a
    profile id to its absolute start (``Store.rank_group``'s ``start_ns``)."""
    links = []
    medians = steps.groupby("step")["step_ns"].median()
    for r in steps[steps["straggler"]].to_dict("records"):
        pid = int(r["profile_id"])
        lo = int(r["start_ns"]) - starts[pid]
        pad = int(r["step_ns"] * room)
        href = urls.timeline(pid, start=max(lo - pad, 0), end=lo + int(r["step_ns"]) + pad, ranks=True,
                             step=int(r["step"]))  # fmt: skip
        text = (f"rank {r['rank']} · step {r['step']}: {fmt_ms(r['step_ns'])} (median {fmt_ms(medians[r['step']])}), "
                f"compute {fmt_ms(r['compute_ns'])}, comm {fmt_ms(r['comm_ns'])} · slow {r['reason']}")  # fmt: skip
        links.append({"rank": int(r["rank"]), "step": int(r["step"]), "text": text, "href": href})
    return links


def section(store: Store, profile_id: int) -> html.Div | None:
    """The ranks section of ``profile_id``'s overview; None when its group has a single rank."""
    group = store.rank_group(profile_id)
    if len(group) < 2:
        return None
    steps = store.rank_steps(profile_id)
    summary = store.rank_summary(profile_id)
    links = straggler_links(steps, dict(zip(group["profile_id"].astype(int), group["start_ns"].astype(int))))
    items = [html.Li(dcc.Link(link["text"], href=link["href"], className="prof-straggler")) for link in links]
    return html.Div(
        [
            html.H2(f"Ranks ({len(group)})"),
            html.P(f"A step straggles when its time, or its computation, is more than {STRAGGLER_THRESHOLD:.0%} above "
                   "the ranks' median for that step; comm is time in collectives, overlap the part of it during "
                   "computation.", className="muted"),  # fmt: skip
            dcc.Graph(id="prof-ranks-steps", figure=step_time_figure(steps), config=plot_config(), className="chart"),
            rank_table(summary, profile_id),
            html.H3("Straggling steps"),
            html.Ul(items, id="prof-stragglers") if items else html.P("None.", className="muted", id="prof-stragglers"),
            dcc.Link("All ranks on one timeline →", href=urls.timeline(profile_id, ranks=True), id="prof-ranks-timeline"),
        ],
        id="prof-ranks",
        className="prof-ranks",
    )
