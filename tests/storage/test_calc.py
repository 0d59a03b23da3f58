"""The interval arithmetic of the profile analyses against a count over every nanosecond of small random cases."""

from __future__ import annotations

import numpy as np

from torchscope.storage.profile.calc import union_blocks, union_length_by_window


def _covered(starts: list[int], ends: list[int]) -> set[int]:
    return {t for s, e in zip(starts, ends) for t in range(s, e)}


def test_union_length_by_window_counts_each_covered_nanosecond_of_each_window_once():
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(0, 12))
        starts = rng.integers(0, 100, n)
        ends = starts + rng.integers(-3, 30, n)  # some empty or reversed: they cover nothing
        los = rng.integers(-10, 120, 6)
        his = los + rng.integers(-5, 60, 6)  # some windows empty or reversed: length 0
        covered = _covered(starts.tolist(), ends.tolist())
        expected = [sum(1 for t in covered if lo <= t < hi) for lo, hi in zip(los.tolist(), his.tolist())]
        assert union_length_by_window(starts, ends, los, his).tolist() == expected


def test_union_blocks_are_disjoint_ascending_and_cover_what_the_intervals_cover():
    rng = np.random.default_rng(8)
    for _ in range(300):
        n = int(rng.integers(0, 15))
        starts = rng.integers(0, 100, n)
        ends = starts + rng.integers(-3, 25, n)
        if rng.integers(0, 2):  # in start order (one lane's events): the path without a sort
            order = np.argsort(starts, kind="stable")
            starts, ends = starts[order], ends[order]
        s, e = union_blocks(starts, ends)
        assert (s < e).all() and (s[1:] > e[:-1]).all()  # non-empty, ascending, apart (touching blocks merge)
        assert _covered(s.tolist(), e.tolist()) == _covered(starts.tolist(), ends.tolist())


def test_nearest_marked_ancestor_equals_walking_up_each_event_in_pieces_of_any_size(monkeypatch):
    from torchscope.storage.profile import calc

    rng = np.random.default_rng(3)
    for n in (0, 1, 40, 700):
        parent = np.array([-1 if i == 0 or rng.random() < 0.1 else rng.integers(0, i) for i in range(n)], np.int32)
        marked = rng.random(n) < 0.3
        for include_self in (True, False):
            expected = []
            for i in range(n):  # the definition: walk up until a marked event (or the root is passed)
                j = i if include_self else int(parent[i])
                while j >= 0 and not marked[j]:
                    j = int(parent[j])
                expected.append(j)
            for piece in (7, 1 << 20):
                monkeypatch.setattr(calc, "PIECE", piece)
                got = calc.nearest_marked(parent, marked, include_self)
                assert got.dtype == np.int32 and got.tolist() == expected
