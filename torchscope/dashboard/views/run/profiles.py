"""The run page of a run without scalars (an imported trace, a profiling-only run): a summary of each of its
profiles instead of an empty chart area: facts, hints, the step breakdown and the top kernels (or operators), with
links to the profile's page and timeline."""

from __future__ import annotations

from dash import dcc, html

from torchscope.dashboard import urls
from torchscope.dashboard.components import plot_config
from torchscope.dashboard.profile_summary import breakdown_figure, profile_facts, step_hints, top_figure
from torchscope.storage.store import Store

MAX_SUMMARIES = 4
"""Profiles summarised on the page (a rank group can hold many); the others are listed as links."""
GRAPH_CONFIG = plot_config()


def profiles_section(store: Store, run_id: int) -> html.Section | None:
    """A summary per profile of run ``run_id`` (at most :data:`MAX_SUMMARIES`, then links); None without one."""
    profiles = store.profiles(run_id)
    if profiles.empty:
        return None
    ids = [int(p) for p in profiles["id"]]
    cards = [_summary(store, pid) for pid in ids[:MAX_SUMMARIES]]
    rest = [dcc.Link(f"profile #{pid}", href=urls.profile(pid), className="chip") for pid in ids[MAX_SUMMARIES:]]
    if rest:
        cards.append(html.P([f"{len(rest)} more profiles: ", *rest], className="muted", id="run-profiles-more"))
    return html.Section([html.H3("profiles"), *cards], className="chart-section", id="run-profiles")


def _summary(store: Store, pid: int) -> html.Div:
    meta = store.profile(pid)
    breakdown = store.step_breakdown(pid)
    kernels = store.kernel_table(pid)
    hints = step_hints(breakdown, store.device_utilization(pid), store.runtime_split(pid))
    top = (top_figure(kernels, "name", "total_ns", "Top kernels (device time)") if len(kernels) else
           top_figure(store.op_table(pid), "name", "host_self_ns", "Top operators (host self time)"))  # fmt: skip
    return html.Div(
        [
            html.H4(dcc.Link(meta["name"], href=urls.profile(pid))),
            html.Div(profile_facts(pid, meta), className="meta"),
            *(html.P(h, className="prof-hint") for h in hints),
            html.Div(
                [dcc.Graph(id=f"run-profile-{pid}-breakdown", figure=breakdown_figure(breakdown), config=GRAPH_CONFIG,
                           className="chart"),
                 dcc.Graph(id=f"run-profile-{pid}-top", figure=top, config=GRAPH_CONFIG, className="chart")],
                className="prof-overview-grid",
            ),  # fmt: skip
        ],
        className="run-profile",
        id=f"run-profile-{pid}",
    )
