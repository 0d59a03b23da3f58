"""Records a live run queues on the writer for the tables of ``storage/tensorboard``: histograms and model graphs.

``torchscope import`` writes these tables straight from TensorBoard logs; a framework callback (the Keras one, see
``torchscope/integrations/keras.py``) puts the same data on the run's writer while it trains.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class HistogramLog(NamedTuple):
    """Histograms of one step: ``items`` is ``[(tag, (min, max, num, sum, sum_squares, buckets))]`` with ``buckets``
    a list of ``[left, right, count]``, as :func:`~torchscope.storage.tensorboard.writes.insert_histograms` takes."""

    run_id: int
    step: int
    wall_time: int
    items: list[tuple[str, Any]]


class ModelGraph(NamedTuple):
    """A model's layer graph: ``nodes`` are ``(name, op, inputs, device, attrs)`` as for an imported graph;
    ``kind`` is ``keras`` for a Keras model config."""

    run_id: int
    tag: str
    kind: str
    step: int
    wall_time: int
    nodes: list[tuple[str, str, list[str], str, dict[str, Any]]]
