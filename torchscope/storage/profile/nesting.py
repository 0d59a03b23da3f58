"""Which event encloses which on a host thread: the call tree of a trace, from start times and durations alone.

Pure computation (numpy and the standard library only).
"""

from __future__ import annotations

import numpy as np


def nest_parents(
    lane: np.ndarray, start: np.ndarray, dur: np.ndarray, host: np.ndarray, base: int, dtype: type = np.int64
) -> np.ndarray:
    """The id of each event's innermost enclosing event on its lane, or -1, as ``dtype`` (which must hold
    ``base + len(lane)``).

    Events must be sorted by ``(lane, start, -dur)``; event ``i`` has id ``base + i``. Only lanes with
    ``host[lane]`` true are nested (device streams run one thing at a time). An event that starts inside another
    but ends after it (clock rounding in real traces) is not its child.
    """
    n = len(lane)
    parent = np.full(n, -1, dtype=dtype)
    if n == 0:
        return parent
    index = np.int32 if n < np.iinfo(np.int32).max else np.int64  # positions: half the memory of int64
    # Each event's candidate starts at the event before it; while the candidate ends before the event does, it is
    # not an ancestor, and neither is anything between the candidate's own candidate and it (such an event would
    # enclose the candidate), so the event jumps to the candidate's candidate. All events jump at once (pointer
    # jumping); the stack algorithm's answer, "the nearest earlier event ending no earlier", in numpy.
    end = start + dur
    cand = np.arange(-1, n - 1, dtype=index)
    first = np.ones(n, dtype=bool)
    first[1:] = lane[1:] != lane[:-1]
    cand[first | ~host[lane]] = -1
    todo = np.flatnonzero(cand >= 0).astype(index)
    while len(todo):
        c = cand[todo]
        outside = end[c] < end[todo]
        todo = todo[outside]
        cand[todo] = cand[c[outside]]
        todo = todo[cand[todo] >= 0]
    nested = cand >= 0
    parent[nested] = cand[nested] + dtype(base)
    return parent
