"""Which event encloses which on a host thread: the call tree of a trace, from start times and durations alone.

Pure computation (numpy and the standard library only).
"""

from __future__ import annotations

import numpy as np


def nest_parents(lane: np.ndarray, start: np.ndarray, dur: np.ndarray, host: np.ndarray, base: int) -> np.ndarray:
    """The id of each event's innermost enclosing event on its lane, or -1.

    Events must be sorted by ``(lane, start, -dur)``; event ``i`` has id ``base + i``. Only lanes with
    ``host[lane]`` true are nested (device streams run one thing at a time). An event that starts inside another
    but ends after it (clock rounding in real traces) is not its child.
    """
    n = len(lane)
    parent = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return parent
    bounds = np.flatnonzero(np.diff(lane)) + 1
    firsts = np.concatenate(([0], bounds)).tolist()
    lasts = np.concatenate((bounds, [n])).tolist()
    lanes = lane[firsts].tolist()
    for first, last, ln in zip(firsts, lasts, lanes):
        if not host[ln]:
            continue
        ends = (start[first:last] + dur[first:last]).tolist()
        out = [-1] * (last - first)
        stack_end: list[int] = []
        stack_id: list[int] = []
        for i, end in enumerate(ends):
            while stack_end and stack_end[-1] < end:
                stack_end.pop()
                stack_id.pop()
            if stack_id:
                out[i] = stack_id[-1]
            stack_end.append(end)
            stack_id.append(base + first + i)
        parent[first:last] = out
    return parent
