"""Keras 3 (on TensorFlow, PyTorch or JAX): :class:`TorchscopeCallback`, a ``keras.callbacks.Callback`` that records
a ``model.fit`` run into the store.

``model.fit(..., callbacks=[TorchscopeCallback(name="mnist")])`` stores:

- the epoch logs (``loss``, metrics, ``val_*``) as scalars ``epoch/<key>`` at the epoch (0-based), and with
  ``update_freq=N`` the batch logs every N-th batch as ``batch/<key>`` at the training batches this callback saw
  so far (Keras' running averages within the epoch, as its TensorBoard callback writes them);
- every ``histogram_freq``-th epoch, a histogram of each weight (``weights/<variable path>``, e.g.
  ``weights/dense/kernel``) and of each trainable weight's gradient (``grads/<variable path>``) at the epoch, into the
  same table as histograms imported from TensorBoard logs (``store.histograms``). Gradients are those of the epoch's
  last training batch, read from the variable where the backend leaves them: the PyTorch backend does
  (``variable.value.grad``); TensorFlow and JAX compute them inside ``train_step`` and keep none, so there only
  weights are stored;
- the model's layer graph (from ``model.to_json()``: Sequential order or the functional graph's inbound nodes), as
  an imported Keras graph is stored (``store.imported_graph``, shown by the graph page);
- ``fit``'s parameters (epochs, steps) and the optimizer's config as the run's config.

This module imports ``keras`` (and with it the backend ``KERAS_BACKEND`` names) only when the class is first used.
See docs/integrations.md.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from torchscope.integrations._common import RunHolder, require

_classes: dict[str, type] = {}

BINS = 30
"""Histogram buckets per weight, spread evenly over its finite values."""


def callback_class() -> type:
    """The ``TorchscopeCallback`` class (a ``keras.callbacks.Callback``); ImportError naming the extra when Keras 3
    is not installed."""
    if "callback" not in _classes:
        _classes["callback"] = _build(require("keras", "keras"))
    return _classes["callback"]


def __getattr__(name: str) -> Any:
    if name == "TorchscopeCallback":
        return callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def histogram(
    values: Any, bins: int = BINS
) -> tuple[float | None, float | None, float, float, float, list[list[float]]]:
    """``(min, max, num, sum, sum_squares, buckets)`` of an array, as the store keeps histograms (``buckets``:
    ``[left, right, count]``). Over the finite values; ``num`` counts every element, so NaN/Inf show as the gap
    between ``num`` and the buckets' total."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return None, None, float(array.size), 0.0, 0.0, []
    lo, hi = float(finite.min()), float(finite.max())
    counts, edges = np.histogram(
        finite, bins=bins if hi > lo else 1, range=(lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)
    )
    buckets = [[float(left), float(right), float(c)] for left, right, c in zip(edges[:-1], edges[1:], counts)]
    return lo, hi, float(array.size), float(finite.sum()), float(np.square(finite).sum()), buckets


def graph_nodes(model: Any) -> list[tuple[str, str, list[str], str, dict[str, Any]]]:
    """The layer graph of a Keras model as graph nodes ``(name, op, inputs, device, attrs)`` (``model/layer``), as
    ``torchscope import`` reads a Keras model config from TensorBoard logs. A subclassed model, whose config lists no
    layers, gives its layers in order without connections (Keras does not know them)."""
    from torchscope.io.tensorboard import keras_nodes

    try:
        config = json.loads(model.to_json())
    except Exception:  # noqa: BLE001 - a subclassed model without get_config cannot be serialised
        config = {}
    nodes = keras_nodes(config) if isinstance(config, dict) and config.get("config", {}).get("layers") else []
    if nodes:
        return nodes
    scope = getattr(model, "name", "model")
    return [(f"{scope}/{layer.name}", type(layer).__name__, [], "", {}) for layer in getattr(model, "layers", [])]


def _numpy(value: Any) -> Any:
    """A backend tensor or variable value as a numpy array."""
    if hasattr(value, "detach"):  # torch
        return value.detach().cpu().float().numpy()
    return np.asarray(value)


def _build(keras: Any) -> type:
    from torchscope.storage.tensorboard.records import HistogramLog, ModelGraph

    class TorchscopeCallback(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
        """A Keras callback that records into a torchscope store; see :mod:`torchscope.integrations.keras`.

        ``name``, ``db``, ``config``, ``system_metrics``: as :func:`torchscope.init` (the run starts when ``fit``
        begins; ``name`` defaults to the model's name); or ``run``: an existing run to record into (it stays yours
        to finish). ``update_freq``: ``"epoch"`` (epoch logs only) or N (also the batch logs of every N-th batch).
        ``histogram_freq``: weight and gradient histograms every that many epochs (0: none); ``bins`` per
        histogram. ``write_graph``: store the layer graph. ``finish``: finish the run when ``fit`` ends (False to
        go on with a later ``fit``/``evaluate`` into the same run). A failure inside torchscope warns once and never
        stops training.
        """

        def __init__(
            self,
            name: str | None = None,
            db: str | os.PathLike[str] | None = None,
            config: Mapping[str, Any] | None = None,
            *,
            run: Any = None,
            update_freq: str | int = "epoch",
            histogram_freq: int = 1,
            bins: int = BINS,
            write_graph: bool = True,
            system_metrics: bool | float = True,
            finish: bool = True,
        ) -> None:
            super().__init__()
            if update_freq != "epoch" and not (isinstance(update_freq, int) and update_freq >= 1):
                raise ValueError(f"update_freq must be 'epoch' or a positive number of batches, got {update_freq!r}")
            if not isinstance(histogram_freq, int) or histogram_freq < 0:
                raise ValueError(f"histogram_freq must be a number of epochs (0: none), got {histogram_freq!r}")
            self._holder = RunHolder("Keras", run, name, db, config, system_metrics)
            self._name = name
            self.update_freq = update_freq
            self.histogram_freq = histogram_freq
            self.bins = bins
            self.write_graph = write_graph
            self._finish = finish
            self._batches = 0  # training batches done (across fits, so that a second fit into the run goes on)
            self._graph_written = False

        @property
        def run(self) -> Any:
            """The :class:`torchscope.Run` recorded into (None before ``fit`` begins, or when it cannot be)."""
            return self._holder.run

        # -- fit's events ----------------------------------------------------------------------------------------
        def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
            """Start the run (fit's parameters and the optimizer as config) and store the layer graph."""
            self._holder.guard("on_train_begin", self._begin)

        def _begin(self) -> None:
            # Keras' own get_config/to_json convert variables with numpy's deprecated __array__(copy=False) call
            # (Keras 3.15 on numpy 2): that is Keras' to fix, not the user's to see because torchscope asked
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self._start_run()

        def _start_run(self) -> None:
            holder, model = self._holder, self.model
            if holder.run is None and self._name is None:
                holder._init_args["name"] = getattr(model, "name", None)
            config: dict[str, Any] = {k: v for k, v in (self.params or {}).items() if k != "verbose"}
            optimizer = getattr(model, "optimizer", None)
            if optimizer is not None and hasattr(optimizer, "get_config"):
                config["optimizer"] = optimizer.get_config()
            run = holder.start(config)
            if run is not None and self.write_graph and not self._graph_written:
                nodes = graph_nodes(model)
                run.writer.put(ModelGraph(run.id, getattr(model, "name", "model"), "keras", 0, time.time_ns(), nodes))
                self._graph_written = True

        def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
            """With ``update_freq=N``: the batch logs of every N-th batch as ``batch/<key>``."""
            self._batches += 1
            if self.update_freq != "epoch" and self._batches % self.update_freq == 0:
                self._holder.guard("on_train_batch_end", self._log, "batch/", logs, self._batches)

        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            """The epoch logs as ``epoch/<key>``, and the histograms on every ``histogram_freq``-th epoch."""
            self._holder.guard("on_epoch_end", self._log, "epoch/", logs, epoch)
            if self.histogram_freq and epoch % self.histogram_freq == 0:
                self._holder.guard("histograms", self._histograms, epoch)

        def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
            """Finish the run (with ``finish=True``)."""
            self._holder.guard("on_train_end", self._end)

        # -- what they store -------------------------------------------------------------------------------------
        def _log(self, prefix: str, logs: Mapping[str, Any] | None, step: int) -> None:
            self._holder.log_scalars(logs, step, prefix=prefix, ended="fit ended",
                                     later="TorchscopeCallback(finish=False) (one run for several fits)")

        def _histograms(self, epoch: int) -> None:
            run = self._holder.start()
            if run is None or run.status != "running":
                return
            items: list[tuple[str, Any]] = []
            for variable in self.model.weights:
                items.append((f"weights/{variable.path}", histogram(_numpy(variable.value), self.bins)))
            for variable in self.model.trainable_weights:
                grad = getattr(variable.value, "grad", None)  # only the PyTorch backend keeps gradients
                if grad is not None and hasattr(grad, "detach"):
                    items.append((f"grads/{variable.path}", histogram(_numpy(grad), self.bins)))
            if items:
                run.writer.put(HistogramLog(run.id, epoch, time.time_ns(), items))

        def _end(self) -> None:
            if self._finish:
                self._holder.finish()
            elif self._holder.run is not None:
                self._holder.run.flush()

    TorchscopeCallback.__module__ = __name__
    TorchscopeCallback.__qualname__ = "TorchscopeCallback"
    return TorchscopeCallback
