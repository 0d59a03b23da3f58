"""The ranks of a group side by side on one timeline: one block of lanes per rank, each rank's events shifted so that
its ``ProfilerStep#N`` starts when the lowest rank's does (docs/views-timeline.md, "Ranks side by side").

Built only from the single-profile timeline reads (lanes and a window of one profile), so it works whatever index
those reads keep. Times are ns since the start of the *reference* profile (the one the page was opened on): rank
``r`` is drawn shifted by ``shift_r = (start_r + offset_r) - (start_ref + offset_ref)``, where ``start`` is a
profile's absolute start and ``offset`` the step alignment of :func:`torchscope.storage.profile.ranks.step_offsets`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

LanesRead = Callable[[int], pd.DataFrame]
WindowRead = Callable[..., tuple[pd.DataFrame, pd.DataFrame]]


def shifts(group: pd.DataFrame, offsets: dict[int, int], reference: int) -> dict[int, int]:
    """``{profile_id: ns}`` to add to each member's profile-relative times to draw it on ``reference``'s axis;
    ``group`` has ``profile_id`` and ``start_ns`` (absolute)."""
    aligned = {int(p): int(s) + offsets.get(int(p), 0) for p, s in zip(group["profile_id"], group["start_ns"])}
    return {p: a - aligned[int(reference)] for p, a in aligned.items()}


def ranks_window(
    lanes_of: LanesRead,
    window_of: WindowRead,
    group: pd.DataFrame,
    shift: dict[int, int],
    start: int,
    end: int,
    *,
    px: int,
    max_items: int,
    max_blocks: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(lanes, events, blocks)`` of every rank in ``group`` (``profile_id, rank, duration_ns``) over ``[start,
    end)`` on the reference axis: each rank's lanes below the previous rank's (``group`` becomes ``rank R ·
    <group>``, ``profile_id`` added), its rows and times shifted. ``max_items`` and ``max_blocks`` are shared out
    among the ranks; ``events.attrs["in_window"]`` sums theirs."""
    lane_parts, event_parts, block_parts = [], [], []
    row_base, in_window = 0, 0
    share = max(len(group), 1)
    for pid, rank, duration in group[["profile_id", "rank", "duration_ns"]].itertuples(index=False):
        pid, s = int(pid), shift[int(pid)]
        lanes = lanes_of(pid).copy()
        a, b = max(start - s, 0), min(end - s, int(duration) + 1)
        if b > a:
            events, blocks = window_of(pid, a, b, px=px, max_items=max_items // share, max_blocks=max_blocks // share)
            in_window += int(events.attrs.get("in_window", 0))
            events = events.assign(row=events["row"] + row_base, start=events["start"] + s, profile_id=pid)
            blocks = blocks.assign(row=blocks["row"] + row_base, start=blocks["start"] + s, end=blocks["end"] + s)
            event_parts.append(events)
            block_parts.append(blocks)
        rows = int((lanes["row0"] + lanes["rows"]).max()) if len(lanes) else 0
        lanes = lanes.assign(row0=lanes["row0"] + row_base, group=[f"rank {rank} · {g}" for g in lanes["group"]],
                             profile_id=pid)  # fmt: skip
        lane_parts.append(lanes)
        row_base += rows
    events = _concat(event_parts)
    events.attrs["in_window"] = in_window
    return _concat(lane_parts), events, _concat(block_parts)


def _concat(parts: list[Any]) -> pd.DataFrame:
    full = [p for p in parts if len(p)]
    if full:
        return pd.concat(full, ignore_index=True)
    return parts[0].iloc[0:0].reset_index(drop=True) if parts else pd.DataFrame()
