"""The call tree of a trace's host lanes: the vectorised nesting equals the stack algorithm on any intervals."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from torchscope.storage.profile.nesting import nest_parents


def _stack_parents(lane, start, dur, host, base):
    """The definition: per lane, the innermost open event (a stack of events that have not ended yet)."""
    parent = [-1] * len(lane)
    stack: list[tuple[int, int, int]] = []  # (lane, end, id)
    for i, (ln, s, d) in enumerate(zip(lane.tolist(), start.tolist(), dur.tolist())):
        while stack and (stack[-1][0] != ln or stack[-1][1] < s + d):
            stack.pop()
        if not host[ln]:
            continue
        if stack:
            parent[i] = stack[-1][2]
        stack.append((ln, s + d, base + i))
    return parent


def _sorted(events: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lane, start, dur) columns of ``events``, sorted as the importer stores them: by lane, start, longest first."""
    lane, start, dur = (np.array([e[i] for e in events], dtype=np.int64) for i in range(3))
    order = np.lexsort((-dur, start, lane))
    return lane[order], start[order], dur[order]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 60), st.integers(0, 40)), max_size=80))
def test_parents_equal_the_stack_algorithm(events):
    lane, start, dur = _sorted(events)
    host = np.array([True, False, True, False])
    assert nest_parents(lane, start, dur, host, 100).tolist() == _stack_parents(lane, start, dur, host, 100)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 60), st.integers(0, 40)), max_size=80),
       st.integers(1, 9))  # fmt: skip
def test_parents_nested_piece_by_piece_equal_the_stack_algorithm(events, piece):
    # pieces of a few events: an event's candidates and parent lie in earlier pieces
    from torchscope.storage.profile import calc

    lane, start, dur = _sorted(events)
    host = np.array([True, False, True, False])
    whole = calc.PIECE
    try:
        calc.PIECE = piece
        parents = nest_parents(lane, start, dur, host, 2**31 - 20, np.int64)
    finally:
        calc.PIECE = whole
    assert parents.tolist() == _stack_parents(lane, start, dur, host, 2**31 - 20)


def test_flow_ends_resolve_to_the_event_starting_at_them_else_the_innermost_enclosing_one() -> None:
    from torchscope.storage.profile.records import FlowEnds
    from torchscope.storage.profile.writes import _flow_rows

    # one host lane, ids 1000..1003: [0, 100) holds [10, 30) and [50, 60); [200, 205) stands alone
    start, dur = np.array([0, 10, 50, 200]), np.array([100, 20, 10, 5])
    parent = np.array([-1, 1000, 1000, -1])
    ends = [  # (flow id, source end, time)
        (7, True, 10), (7, False, 55),  # starts at 1001; inside 1002
        (8, True, 35), (8, False, 150),  # inside 1000 (after 1001 ended); inside nothing: flow 8 has no end there
        (9, True, 200), (9, True, 0), (9, False, 50),  # a second source end: the last one wins
        (10, False, 20),  # no source end
    ]  # fmt: skip
    flows = FlowEnds(np.array([e[0] for e in ends]), np.array([e[1] for e in ends]), np.zeros(len(ends), np.int32),
                     np.array([e[2] for e in ends]) + 5000)  # fmt: skip
    rows = _flow_rows(flows, 1, 3, np.zeros(4, np.int32), start, dur, parent, 1000, 5000)
    assert rows == [(3, "fwdbwd", 7, 1001, 1002), (3, "fwdbwd", 9, 1000, 1002)]
