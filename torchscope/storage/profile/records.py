"""Records of the profile subject: a decoded trace as columns, and a finished live profiler window.

Producers (``torchscope.io.kineto`` decodes files into :class:`TraceColumns`, ``torchscope.profiler.session`` queues a
:class:`ProfileWindow`) build these; the writes in this folder store them. Nothing here reads a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass
class TraceColumns:
    """The events of one trace as parallel columns (event ``i`` is element ``i`` of every list)."""

    lane: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    name: list[int] = field(default_factory=list)  # index into ``names``
    ts: list[float] = field(default_factory=list)  # microseconds, as in the file
    dur: list[float] = field(default_factory=list)
    corr: list[int | None] = field(default_factory=list)
    ext: list[int | None] = field(default_factory=list)
    info: list[str | None] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    details: list[tuple[Any, ...]] = field(default_factory=list)  # (event index, grid, block, regs, ...)
    lanes: list[list[Any]] = field(default_factory=list)  # [pid, tid, label, sort, device, stream, is_device]
    memory: list[tuple[Any, ...]] = field(default_factory=list)  # (lane, ts, dev type, dev, bytes, addr, alloc, res)
    flows: list[tuple[Any, ...]] = field(default_factory=list)  # (flow id, "s" | "f", lane, ts) of fwdbwd flows
    base_ns: int = 0
    devices: list[Any] = field(default_factory=list)
    info_fields: dict[str, Any] = field(default_factory=dict)
    rank: int | None = None

    def __len__(self) -> int:
        return len(self.kind)


class ProfileWindow(NamedTuple):
    """A finished profiler window of a live run, queued on the writer.

    ``load`` returns the window's decoded trace; the writer thread calls it (decoding never runs in training) and it
    releases what it read from (the temporary trace file) whether or not decoding succeeds.
    """

    run_id: int
    name: str
    load: Callable[[], TraceColumns]
