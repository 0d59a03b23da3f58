"""Records of the profile subject: a decoded trace as columns, and a finished live profiler window.

Producers (``torchscope.io.kineto`` decodes files into :class:`TraceColumns`, ``torchscope.profiler.session`` queues a
:class:`ProfileWindow`) build these; the writes in this folder store them. Nothing here reads a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson


NO_INT = -(1 << 63)
"""NULL in an int64 column of an :class:`EventBatch` (correlation and External ids)."""
NO_INT32 = -(1 << 31)
"""NULL in :attr:`EventBatch.typed`."""
TYPED_ARGS = (
    "Ev Idx", "Sequence number", "Fwd thread id", "cbid", "Python id", "Python parent id", "Record function id",
)  # fmt: skip
"""Integer args that most Kineto events carry, kept in int32 columns (:attr:`EventBatch.typed`, in this order, then
``profile_events``' :data:`TYPED_COLUMNS`); a value that is not an integer in ``(-2**31, 2**31)`` (a root Python
event's ``null`` parent id) is kept with the event's other args instead."""
TYPED_COLUMNS = ("ev_idx", "seq_nr", "fwd_tid", "cbid", "py_id", "py_parent", "rf_id")
SHAPE_ARGS = ("Input Dims", "Input type", "Input Strides", "Concrete Inputs")
"""An op's inputs as ``record_shapes`` writes them: kept together as one interned JSON list (``info_id``) with its
lists in this order, up to the last one the event has (a list between that it lacks is ``null``)."""


def input_args(info: str) -> dict[str, Any]:
    """An op's inputs kept in its info text (:data:`SHAPE_ARGS`) as the args the trace wrote."""
    return {key: value for key, value in zip(SHAPE_ARGS, orjson.loads(info)) if value is not None}


@dataclass
class EventBatch:
    """Consecutive events of one trace as numpy columns (event ``i`` is element ``i`` of every array).

    A small trace is one batch; a streamed import sends many. ``first`` is the index of the batch's first event in
    the whole trace; ``names`` and ``infos`` are the texts first seen in this batch, appended to the trace's running
    lists that ``name`` and ``info`` index.
    """

    first: int
    lane: np.ndarray  # int32, index into TraceMeta.lanes
    kind: np.ndarray  # int8, torchscope.storage.profile.kinds
    name: np.ndarray  # int32, index into the trace's names
    start: np.ndarray  # int64 ns on the trace's clock, before baseTimeNanoseconds
    dur: np.ndarray  # int64 ns
    corr: np.ndarray  # int64 correlation id, NO_INT for none
    ext: np.ndarray  # int64 External id, NO_INT for none
    info: np.ndarray  # int32 index into the trace's infos, -1 for none
    typed: np.ndarray  # int32 (events, len(TYPED_ARGS)) in TYPED_ARGS order; -2**31 for none
    names: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    details: list[tuple[Any, ...]] = field(default_factory=list)  # (trace event index, grid, block, regs, ...)
    memory: list[tuple[Any, ...]] = field(default_factory=list)  # (lane, ts ns, dev type, dev, bytes, addr, alloc,
    # res, other args as JSON text or None)
    args_seq: list[int] = field(default_factory=list)  # trace event indices of events with other args
    args_json: list[str] = field(default_factory=list)  # those args, a JSON object each

    def __len__(self) -> int:
        return len(self.kind)


class FlowEnds(NamedTuple):
    """The ends of a trace's ``fwdbwd`` flows as columns (end ``i`` is element ``i`` of each): a few bytes an end,
    where a tuple each took a few hundred (a 10M-event trace can hold half a million)."""

    id: np.ndarray  # int64: the flow's id in the trace
    source: np.ndarray  # bool: its source end ("s"); else its destination ("f")
    lane: np.ndarray  # int32: index into TraceMeta.lanes
    ns: np.ndarray  # int64: time on the trace's clock

    @staticmethod
    def none() -> FlowEnds:
        """No flow ends."""
        return FlowEnds(np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int32), np.zeros(0, np.int64))


@dataclass
class TraceMeta:
    """What a trace says besides its events; known once every event was read."""

    lanes: list[list[Any]] = field(default_factory=list)  # [pid, tid, label, sort, device, stream, is_device]
    flows: FlowEnds = field(default_factory=FlowEnds.none)
    base_ns: int = 0
    devices: list[Any] = field(default_factory=list)
    info_fields: dict[str, Any] = field(default_factory=dict)
    rank: int | None = None


@dataclass
class TraceColumns:
    """A whole decoded trace: its event batches and its :class:`TraceMeta` (a live profiler window, a small file)."""

    batches: list[EventBatch] = field(default_factory=list)
    meta: TraceMeta = field(default_factory=TraceMeta)

    def __len__(self) -> int:
        return sum(len(b) for b in self.batches)


class ProfileWindow(NamedTuple):
    """A finished profiler window of a live run, queued on the writer.

    ``load`` returns the window's decoded trace; the writer thread calls it (decoding never runs in training) and it
    releases what it read from (the temporary trace file) whether or not decoding succeeds.
    """

    run_id: int
    name: str
    load: Callable[[], TraceColumns]
