"""Which event encloses which on a host thread: the call tree of a trace, from start times and durations alone.

Pure computation (numpy, and ``calc`` for its piece size).
"""

from __future__ import annotations

import numpy as np

from torchscope.storage.profile import calc


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
    if n == 0:
        return np.full(0, -1, dtype=dtype)
    index = calc.index_dtype(n)  # positions: half the memory of int64
    # Each event's candidate starts at the event before it; while the candidate ends before the event does, it is
    # not an ancestor, and neither is anything between the candidate's own candidate and it (such an event would
    # enclose the candidate), so the event jumps to the candidate's candidate. All events of a piece jump at once
    # (pointer jumping); the stack algorithm's answer, "the nearest earlier event ending no earlier", in numpy.
    # Pieces go in order, so a candidate in an earlier piece is already that event's parent (a valid jump too), and
    # the temporaries are a piece's, whatever the trace's size.
    cand = np.arange(-1, n - 1, dtype=index)
    first = np.ones(n, dtype=bool)
    first[1:] = lane[1:] != lane[:-1]
    first |= ~host[lane]
    cand[first] = -1
    del first
    for lo in range(0, n, calc.PIECE):
        todo = np.flatnonzero(cand[lo : lo + calc.PIECE] >= 0).astype(index) + index(lo)
        end = start[todo] + dur[todo]
        while len(todo):
            c = cand[todo]
            outside = start[c] + dur[c] < end
            todo, end = todo[outside], end[outside]
            cand[todo] = cand[c[outside]]
            going = cand[todo] >= 0
            todo, end = todo[going], end[going]
    parent = cand.astype(dtype)
    del cand
    np.add(parent, dtype(base), out=parent, where=parent >= 0)
    return parent
