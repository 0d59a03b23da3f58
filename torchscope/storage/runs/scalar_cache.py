"""Downsampled scalar series kept per run and brought up to date incrementally (for dashboards that redraw).

Reading a run of a million points takes about a second on a small machine, nearly all of it in turning rows into
Python objects. A dashboard redraws the same run often (a reload, a control change, a second viewer), so a
:class:`Store` keeps the downsampled series of the runs it was last asked for, with the ``(step, wall_time)`` of
the last point of each tag, and on the next request reads only the points after those cursors. The merged series
is downsampled again only when it has grown past twice the bound, with the same extremes-keeping rule: a point that
was a bucket's minimum, maximum, first, last or first NaN/Inf stays as long as it still is one among what was kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping

import pandas as pd

from torchscope.storage.runs.downsample import downsample_keep_extremes

Fetch = Callable[[Mapping[str, tuple[int, int]]], pd.DataFrame]
"""``fetch(cursors)``: the points after each tag's cursor, every point of tags without one (``scalars_after``)."""


class ScalarCache:
    """At most ``runs`` runs' downsampled series, the least recently used dropped first. Thread-safe."""

    def __init__(self, runs: int = 16) -> None:
        self.runs = runs
        self._entries: OrderedDict[tuple[int, int], tuple[pd.DataFrame, dict[str, tuple[int, int]]]] = OrderedDict()
        self._locks: dict[tuple[int, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, run_id: int, max_items: int, fetch: Fetch) -> pd.DataFrame:
        """The run's series downsampled to about ``max_items`` points per tag (at most ``2 * max_items``)."""
        key = (int(run_id), int(max_items))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one reader per run fills the cache; a second request waits and then only catches up
            frame, cursors = self._entries.get(key, (None, {}))
            fresh = fetch(cursors)
            if frame is None:
                frame = downsample_keep_extremes(fresh, "tag", "step", "value", max_items)
            elif not fresh.empty:
                merged = pd.concat([frame, fresh], ignore_index=True)
                frame = merged.sort_values(["tag", "step", "wall_time"], kind="stable").reset_index(drop=True)
                if int(frame.groupby("tag", sort=False).size().max()) > 2 * max_items:
                    frame = downsample_keep_extremes(frame, "tag", "step", "value", max_items)
            if not fresh.empty:
                cursors = dict(cursors)
                last = frame.groupby("tag", sort=False).tail(1)  # downsampling always keeps each tag's last point
                cursors.update(zip(last["tag"], zip(last["step"].astype(int), last["wall_time"].astype(int))))
            with self._guard:
                self._entries[key] = (frame, cursors)
                self._entries.move_to_end(key)
                while len(self._entries) > self.runs:
                    old, _ = self._entries.popitem(last=False)
                    self._locks.pop(old, None)
            return frame
