"""Python's cycle collector paused while an import runs: there it finds no cycles, it only costs time.

Decoding a trace makes millions of short-lived containers (the events' dicts and lists): each 700 allocations start
a young-generation collection that walks the batch being decoded, and the survivors trigger older ones. At a million
events that is a quarter of the import's time. Decoding and storing make no reference cycles, so memory is freed as
without the collector (by reference counts); the collector is switched back on, as it was, when the import ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[bool]:
    """Pause the cycle collector for the block when this process runs no other thread (its threads could make
    cycles: a live run's); yields whether it was paused. A collector that was already off stays off."""
    pause = gc.isenabled() and threading.active_count() == 1
    if pause:
        gc.disable()
    try:
        yield pause
    finally:
        if pause:
            gc.enable()
