"""The timeline with every rank of a group side by side (``/timeline/<id>?ranks=1&step=N``).

One block of lanes per rank, lowest rank on top; each rank's events shifted so that its ``ProfilerStep#N`` starts
when the lowest rank's does (``Store.timeline_ranks``). The x axis is the opened profile's own time, so a window
link made for one rank (a straggling step on the profile page) opens on that rank's step with the others aligned
to it. A click on any rank's event shows its details; search marks matches of the opened profile's rank only.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from torchscope.dashboard.views.timeline.figures import timeline_figure
from torchscope.errors import TorchscopeError
from torchscope.storage.store import Store


def owner_of(lanes: pd.DataFrame, events: pd.DataFrame, event_id: int) -> int | None:
    """The profile whose drawn events hold ``event_id`` (None when it is not drawn)."""
    hit = events[events["id"] == event_id] if len(events) else events
    return int(hit["profile_id"].iloc[0]) if len(hit) else None


def shifted(event: dict[str, Any], row_base: int, shift: int) -> dict[str, Any]:
    """A details dict of one rank's event moved onto the stacked figure (rows and times of it and its links)."""
    out = {**event, "row": event["row"] + row_base, "start": event["start"] + shift}
    for key in ("launched_by", "launched", "flows_out", "flows_in"):
        out[key] = [{**e, "row": e["row"] + row_base, "start": e["start"] + shift} for e in event.get(key, [])]
    return out


def ranks_view(
    store: Store, profile_id: int, a: int, b: int, query: str, event_id: int | None, step: int | None, px: int,
    max_items: int, max_blocks: int,
) -> dict[str, Any]:  # fmt: skip
    """What ``window_figure`` returns, for the ranks side by side; ``step`` is the anchor step actually used."""
    lanes, events, blocks = store.timeline_ranks(profile_id, a, b, step=step, px=px, max_items=max_items,
                                                 max_blocks=max_blocks)  # fmt: skip
    matches = None
    if query:
        own = lanes[lanes["profile_id"] == profile_id]
        matches = store.timeline_search(profile_id, query, a, b)
        matches = matches.assign(row=matches["row"] + int(own["row0"].min()) if len(own) else matches["row"])
    selected = None
    if event_id is not None:
        owner = owner_of(lanes, events, int(event_id))
        if owner is not None:
            try:
                event = store.timeline_event(owner, int(event_id))
                drawn = events[events["id"] == int(event_id)].iloc[0]
                selected = shifted(event, int(drawn["row"]) - int(event["row"]), int(drawn["start"]) - int(event["start"]))
            except TorchscopeError:
                selected = None
    fig = timeline_figure(lanes, events, blocks, start_ns=a, end_ns=b, matches=matches, selected=selected)
    fig["layout"]["xaxis"]["title"]["text"] = (
        f"ms since this profile's start · ranks aligned on ProfilerStep#{events.attrs.get('step')}"
        if events.attrs.get("step") is not None else "ms since this profile's start · ranks on their own clocks"
    )  # fmt: skip
    return {
        "figure": fig, "start": a, "end": b, "selected": selected, "events": len(events), "blocks": len(blocks),
        "in_window": int(events.attrs.get("in_window", 0)), "step": events.attrs.get("step"),
        "matches": None if matches is None else int(matches.attrs.get("total", 0)),
    }  # fmt: skip
