"""Which event encloses which on a host thread: the call tree of a trace, from start times and durations alone.

Pure computation (numpy and the standard library only).
"""

from __future__ import annotations

import numpy as np


def nest_parents(lane: np.ndarray, start: np.ndarray, dur: np.ndarray, host: np.ndarray, base: int) -> list[int | None]:
    """The id of each event's innermost enclosing event on its lane, or None.

    Events must be sorted by ``(lane, start, -dur)``; event ``i`` has id ``base + i``. Only lanes with
    ``host[lane]`` true are nested (device streams run one thing at a time). An event that starts inside another
    but ends after it (clock rounding in real traces) is not its child.
    """
    n = len(lane)
    parent: list[int | None] = [None] * n
    if n == 0:
        return parent
    bounds = np.flatnonzero(np.diff(lane)) + 1
    firsts = np.concatenate(([0], bounds)).tolist()
    lasts = np.concatenate((bounds, [n])).tolist()
    ends = (start + dur).tolist()
    lanes = lane[firsts].tolist() if firsts else []
    for first, last, ln in zip(firsts, lasts, lanes):
        if not host[ln]:
            continue
        stack_end: list[int] = []
        stack_id: list[int] = []
        for i in range(first, last):
            end = ends[i]
            while stack_end and stack_end[-1] < end:
                stack_end.pop()
                stack_id.pop()
            if stack_id:
                parent[i] = stack_id[-1]
            stack_end.append(end)
            stack_id.append(base + i)
    return parent
