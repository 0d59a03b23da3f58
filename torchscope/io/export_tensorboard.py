"""A run's scalars and histograms as a TensorBoard event file (``torchscope export --tensorboard``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from torchscope.storage.store import Store


def write_tensorboard(store: Store, run_id: int, logdir: Path) -> str:
    """Write the run's scalars and histograms into a new event file under ``logdir``; returns a summary line."""
    logdir.mkdir(parents=True, exist_ok=True)
    scalars = store.scalars(run_id)
    histograms = store.histograms(run_id)
    writer = EventFileWriter(str(logdir))
    try:
        for row in scalars.itertuples(index=False):
            value = summary_pb2.Summary.Value(tag=row.tag, simple_value=float(row.value))
            writer.add_event(_event(row.wall_time, row.step, value))
        for row in histograms.itertuples(index=False):
            buckets = row.buckets
            histo = summary_pb2.HistogramProto(
                min=_num(row.min), max=_num(row.max), num=_num(row.num), sum=_num(row.sum),
                sum_squares=_num(row.sum_squares), bucket_limit=[b[1] for b in buckets], bucket=[b[2] for b in buckets],
            )  # fmt: skip
            writer.add_event(_event(row.wall_time, row.step, summary_pb2.Summary.Value(tag=row.tag, histo=histo)))
    finally:
        writer.close()
    return (
        f"wrote {len(scalars)} scalars ({scalars['tag'].nunique()} tags) and {len(histograms)} histograms "
        f"of run {run_id} to {logdir}"
    )


def _event(wall_ns: int, step: int, value: summary_pb2.Summary.Value) -> event_pb2.Event:
    return event_pb2.Event(wall_time=wall_ns / 1e9, step=int(step), summary=summary_pb2.Summary(value=[value]))


def _num(value: Any) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
