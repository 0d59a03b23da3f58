"""Incremental updates of a page of scalar charts. Pure functions over plain data, tested without a browser.

A live page keeps one *cursor* per tag in a ``dcc.Store`` (JSON): the ``(step, wall)`` of the last point its chart
holds (``wall`` as a string: nanosecond times exceed the 2**53 a JavaScript number holds exactly), how many points
it holds (``n``), the smoothing state (``ema``) and the first NaN/Inf seen (``bad``). Each
poll asks the store only for points after the cursors (:meth:`Store.scalars_after`) and turns them into
``extendData`` for the existing charts; a chart that has grown past :data:`REDRAW_POINTS` is redrawn from a fresh
downsampled read instead, so the browser never holds more than a few thousand points per chart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from torchscope.dashboard.components import CHART_POINTS
from torchscope.dashboard.formatting import fmt_value
from torchscope.dashboard.views.run.scalars import NO_EMA, EmaState, group_key, tag_prefix, trace_columns

MAX_POINTS = CHART_POINTS
"""Points per chart on a full draw; the store downsamples keeping extremes and every NaN/Inf."""
REDRAW_POINTS = 3 * MAX_POINTS
"""A chart extended past this many points is redrawn downsampled."""
TRACES = [0, 1, 2]


def cursor_for(points: pd.DataFrame, *, n: int | None = None, ema_state: EmaState = NO_EMA,
               bad: list[Any] | None = None) -> dict[str, Any]:
    """The cursor after a chart was drawn or extended with ``points`` (one tag, step order, not empty)."""
    # column by column: a row of mixed dtypes (iloc[-1]) is upcast to float64, which rounds nanosecond times
    return {
        "step": int(points["step"].iloc[-1]),
        "wall": str(int(points["wall_time"].iloc[-1])),
        "n": int(len(points) if n is None else n),
        "ema": list(ema_state),
        "bad": bad if bad is not None else first_nonfinite(points),
    }  # fmt: skip


def first_nonfinite(points: pd.DataFrame) -> list[Any] | None:
    """``[step, "NaN" | "+Inf" | "-Inf"]`` of the first non-finite value in ``points``, or None."""
    values = points["value"].to_numpy(dtype="float64")
    hits = np.flatnonzero(~np.isfinite(values))
    if not hits.size:
        return None
    value = values[hits[0]]
    return [int(points["step"].iloc[hits[0]]), fmt_value(float(value))]  # spelled NaN, +Inf or -Inf


def store_cursors(cursors: dict[str, dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """The ``{tag: (step, wall)}`` that :meth:`Store.scalars_after` takes."""
    return {tag: (int(c["step"]), int(c["wall"])) for tag, c in cursors.items()}


def extension(
    points: pd.DataFrame, cursor: dict[str, Any], *, x: str, t0: int, smoothing: float
) -> tuple[list[Any], dict[str, Any]]:
    """``extendData`` for a chart that holds ``cursor``'s points, given the new ``points``; and the new cursor.

    The smoothed trace goes on from the cursor's EMA state, so it is the same as a full redraw of the same points.
    """
    columns, state = trace_columns(points, x=x, t0=t0, smoothing=smoothing, state=tuple(cursor["ema"]))
    bad = cursor["bad"] or first_nonfinite(points)
    return [columns, TRACES], cursor_for(points, n=cursor["n"] + len(points), ema_state=state, bad=bad)


def needs_redraw(cursor: dict[str, Any], new_points: int) -> bool:
    """Whether a chart should be redrawn downsampled rather than extended by ``new_points`` more: past the point
    budget, or when it holds a single point (drawn as a marker, which a line from the second point on replaces)."""
    return cursor["n"] <= 1 or cursor["n"] + new_points > REDRAW_POINTS


def insertions(known: list[str], new: list[str]) -> list[tuple[str, int, int, str]]:
    """Where new tags' charts go in a page whose sections hold ``known`` tags (grouped as ``group_tags`` does).

    Returns operations to apply in order: ``("section", section_index, 0, tag)`` opens a new section holding
    ``tag`` at that index; ``("chart", section_index, position, tag)`` inserts a chart into an existing section.
    """
    sections: dict[str, list[str]] = {}
    for tag in sorted(known):
        sections.setdefault(tag_prefix(tag), []).append(tag)
    ops: list[tuple[str, int, int, str]] = []
    for tag in sorted(set(new) - set(known)):
        prefix = tag_prefix(tag)
        order = sorted(sections, key=group_key)
        if prefix in sections:
            tags = sections[prefix]
            position = int(np.searchsorted(tags, tag))
            tags.insert(position, tag)
            ops.append(("chart", order.index(prefix), position, tag))
        else:
            sections[prefix] = [tag]
            ops.append(("section", sorted(sections, key=group_key).index(prefix), 0, tag))
    return ops


def alerts(cursors: dict[str, dict[str, Any]]) -> list[tuple[str, int, str]]:
    """``(tag, step, label)`` of the first NaN/Inf of every tag that has one, earliest step first."""
    found = [(tag, int(c["bad"][0]), str(c["bad"][1])) for tag, c in cursors.items() if c.get("bad")]
    return sorted(found, key=lambda item: (item[1], item[0]))


def steps_per_second(samples: list[list[int]], started_at: int, last_step: int | None, last_wall: int | None,
                     *, window_ms: int = 10_000) -> float | None:
    """Training speed: over the recent ``samples`` (``[wall_ms, step]`` the page saw, oldest first) when they span
    at least a second, else the average since ``started_at`` (ns). None before any step."""
    if last_step is None or last_wall is None:
        return None
    recent = [s for s in samples if s[0] >= last_wall // 1_000_000 - window_ms]
    if len(recent) >= 2 and recent[-1][0] - recent[0][0] >= 1000:
        return (recent[-1][1] - recent[0][1]) / ((recent[-1][0] - recent[0][0]) / 1e3)
    elapsed = (last_wall - started_at) / 1e9
    return (last_step + 1) / elapsed if elapsed > 0 else None


def add_sample(samples: list[list[int]], wall: int | None, step: int | None, keep: int = 20) -> list[list[int]]:
    """``samples`` with ``[wall_ms, step]`` (``wall`` in ns) appended when newer, the oldest dropped past ``keep``.

    Milliseconds, because the samples live in the browser, where integers beyond 2**53 lose precision."""
    if wall is None or step is None or (samples and samples[-1][0] >= wall // 1_000_000):
        return samples
    return [*samples, [int(wall) // 1_000_000, int(step)]][-keep:]
