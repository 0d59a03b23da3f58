"""A run as a TensorBoard event file (``torchscope export --tensorboard``): its scalars, its imported histograms and the
histograms of the tensors ``run.watch`` captured.

- Scalars go out as ``simple_value`` (float32), the form every TensorBoard reader knows, except the tags holding a
  value float32 cannot hold (beyond its range, or so small it would lose digits or become 0): those tags are written
  whole as float64 tensor summaries of the scalars plugin, which TensorBoard's scalar dashboard reads exactly.
- Watched tensors (``Store.tensor_stats``) go out as ``HistogramProto`` under ``<model>/<node name>`` (TensorBoard's
  histogram and distribution dashboards): 32 equal buckets over the finite values; for tensors larger than
  ``HIST_MAX`` the counts are those of the sampled elements, and ``sum``/``sum_squares`` are scaled to them.
- The run's hparams (its config, flattened; ``Store.hparams``) go out as the hparams plugin's experiment and session
  (:mod:`torchscope.io.tensorboard_summaries`), its metrics being the imported hparam metrics (written as scalars,
  where TensorBoard reads them) or else the run's scalar tags; imported text and images go out as ``add_text`` and
  ``add_image`` write them.
- A folder TensorBoard shows as one run must not get the same points twice: a folder that already holds event files
  is refused unless ``replace`` removes them first.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from torchscope.errors import ExportError
from torchscope.io import tensorboard_summaries
from torchscope.storage.store import Store

EVENTS_MARKER = "tfevents"
FILE_SUFFIX = ".torchscope"
"""Appended to the name of every event file the export writes (TensorBoard reads any name holding ``tfevents``)."""
_F32_MAX = float(np.finfo(np.float32).max)
_F32_TINY = float(np.finfo(np.float32).tiny)  # below it float32 is subnormal: digits are lost, then 0


def write_tensorboard(store: Store, run_id: int, logdir: Path, *, replace: bool = False) -> str:
    """Write the run's scalars and histograms into a new event file under ``logdir``; returns a summary line.

    Raises :class:`ExportError` when ``logdir`` already holds event files (TensorBoard would show both files'
    points as one run), unless ``replace``, which deletes those files first.
    """
    existing = event_files(logdir)
    if existing and not replace:
        raise ExportError(
            f"{logdir} already holds {len(existing)} TensorBoard event file(s) ({existing[0].name}"
            f"{', ...' if len(existing) > 1 else ''}); TensorBoard shows a folder as one run, so exporting again "
            "would show every point twice. Pass --replace (replace=True) to delete them first, or export into "
            "another folder"
        )
    scalars = store.scalars(run_id)
    histograms = store.histograms(run_id)
    watched = store.tensor_stats(run_id)
    logdir.mkdir(parents=True, exist_ok=True)
    for path in existing:
        path.unlink()
    wide_tags = float64_tags(scalars)
    writer = EventFileWriter(str(logdir), filename_suffix=FILE_SUFFIX)
    try:
        for row in scalars.itertuples(index=False):
            writer.add_event(_event(row.wall_time, row.step, scalar_value(row.tag, row.value, row.tag in wide_tags)))
        for row in histograms.itertuples(index=False):
            buckets = row.buckets
            histo = summary_pb2.HistogramProto(
                min=_num(row.min), max=_num(row.max), num=_num(row.num), sum=_num(row.sum),
                sum_squares=_num(row.sum_squares), bucket_limit=[b[1] for b in buckets], bucket=[b[2] for b in buckets],
            )  # fmt: skip
            writer.add_event(_event(row.wall_time, row.step, summary_pb2.Summary.Value(tag=row.tag, histo=histo)))
        n_watched = 0
        for tag, step, wall, histo in watched_histograms(watched, store.graph_steps(run_id)):
            writer.add_event(_event(wall, step, summary_pb2.Summary.Value(tag=tag, histo=histo)))
            n_watched += 1
        extras = _write_extras(writer, store, run_id, set(scalars["tag"]))
    finally:
        writer.close()
    wide = (
        f"; {len(wide_tags)} tag(s) hold values outside float32 and were written as float64 tensors "
        f"({', '.join(sorted(wide_tags)[:3])}{', ...' if len(wide_tags) > 3 else ''})"
        if wide_tags
        else ""
    )
    replaced = f" (replaced {len(existing)} event file(s))" if existing else ""
    more = "".join(f", {n} {what}" for what, n in extras.items() if n)
    return (
        f"wrote {len(scalars)} scalars ({scalars['tag'].nunique()} tags) and {len(histograms) + n_watched} histograms "
        f"({n_watched} of watched tensors){more} of run {run_id} to {logdir}{replaced}{wide}"
    )


def _write_extras(writer: EventFileWriter, store: Store, run_id: int, scalar_tags: set[str]) -> dict[str, int]:
    """The run's hparams (with its hparam metrics as scalars), imported text and images; counts by kind."""
    run = store.run(run_id)
    everything = store.hparams()
    mine = everything[everything["run_id"] == run_id]
    hparams = tensorboard_summaries.hparams_values(mine[mine["kind"] == "hparam"])
    metrics = store.hparam_metrics([run_id])
    for row in metrics.itertuples(index=False):
        if row.tag not in scalar_tags:  # a value add_hparams logged once: TensorBoard reads it from the scalars
            wide = not fits_float32(float(row.value))
            writer.add_event(_event(row.wall_time, row.step, scalar_value(row.tag, row.value, wide)))
    if hparams:
        tags = sorted(set(metrics["tag"])) or sorted(t for t in scalar_tags if not t.startswith("sys/"))
        for summary in tensorboard_summaries.hparams_summaries(hparams, tags, run):
            writer.add_event(event_pb2.Event(wall_time=int(run["started_at"]) / 1e9, step=0, summary=summary))
    texts = store.texts(run_id)
    for row in texts.itertuples(index=False):
        writer.add_event(_event(row.wall_time, row.step, tensorboard_summaries.text_value(row.tag, row.text)))
    images = store.images(run_id)
    for row in images.itertuples(index=False):
        _, data = store.image(int(row.id))
        value = tensorboard_summaries.image_value(row.tag, row.width, row.height, data)
        writer.add_event(_event(row.wall_time, row.step, value))
    return {"hparams": len(hparams), "hparam metrics": len(metrics), "texts": len(texts), "images": len(images)}


def event_files(logdir: Path) -> list[Path]:
    """The TensorBoard event files directly in ``logdir`` (what TensorBoard reads as that folder's run), by name."""
    if not logdir.is_dir():
        return []
    return sorted(p for p in logdir.iterdir() if p.is_file() and EVENTS_MARKER in p.name)


def fits_float32(value: float) -> bool:
    """Whether float32 holds ``value`` to its usual precision: NaN, ±Inf, 0, and finite values in its normal range."""
    if not math.isfinite(value) or value == 0.0:
        return True
    return _F32_TINY <= abs(value) <= _F32_MAX


def float64_tags(scalars: pd.DataFrame) -> set[str]:
    """The tags with a value float32 cannot hold (see :func:`fits_float32`)."""
    if scalars.empty:
        return set()
    values = scalars["value"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.abs(values)
        bad = np.isfinite(values) & (values != 0) & ((magnitude < _F32_TINY) | (magnitude > _F32_MAX))
    return set(scalars["tag"][bad])


def scalar_value(tag: str, value: float, wide: bool) -> summary_pb2.Summary.Value:
    """A scalar as ``simple_value``, or (``wide``) as a float64 tensor of the scalars plugin."""
    if not wide:
        return summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=scalar_metadata.create_summary_metadata(display_name=tag, description=""),
        tensor=tensor_util.make_tensor_proto(np.float64(value)),
    )


def watched_histograms(
    stats: pd.DataFrame, steps: pd.DataFrame
) -> list[tuple[str, int, int, summary_pb2.HistogramProto]]:
    """``(tag, step, wall_time, histogram)`` for every captured tensor with finite values (``Store.tensor_stats``
    rows; ``steps`` is ``Store.graph_steps``, for the wall times). The tag is ``<model>/<node name>``, with
    ``/output<i>`` for a node's output ``i > 0``."""
    if stats.empty:
        return []
    walls = {(m, int(s)): int(w) for m, s, w in zip(steps["model"], steps["step"], steps["wall_time"])}
    out = []
    for row in stats.itertuples(index=False):
        counts = np.asarray(row.hist, dtype=np.float64)
        n = float(row.hist_n)
        if n <= 0 or not math.isfinite(row.hist_lo) or not math.isfinite(row.hist_hi):
            continue  # no finite element: TensorBoard has no histogram of nothing
        edges = np.linspace(row.hist_lo, row.hist_hi, len(counts) + 1)
        finite = float(row.numel - row.nan - row.posinf - row.neginf)
        histo = summary_pb2.HistogramProto(
            min=float(row.hist_lo), max=float(row.hist_hi), num=n, sum=float(row.mean) * n,
            sum_squares=float(row.norm) ** 2 * n / finite if finite else 0.0,
            bucket_limit=[float(e) for e in edges[1:]], bucket=[float(c) for c in counts],
        )  # fmt: skip
        tag = f"{row.model}/{row.name}" + (f"/output{row.output}" if int(row.output) else "")
        out.append((tag, int(row.step), walls.get((row.model, int(row.step)), 0), histo))
    return out


def _event(wall_ns: int, step: int, value: summary_pb2.Summary.Value) -> event_pb2.Event:
    return event_pb2.Event(wall_time=wall_ns / 1e9, step=int(step), summary=summary_pb2.Summary(value=[value]))


def _num(value: Any) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
