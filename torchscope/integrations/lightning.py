"""PyTorch Lightning: :class:`TorchscopeLogger`, a Lightning ``Logger`` that records the run into the store.

``Trainer(logger=TorchscopeLogger(name="baseline"))`` (or next to other loggers: ``logger=[tb, TorchscopeLogger()]``)
stores what ``self.log`` logs as scalars at Lightning's step, ``save_hyperparameters()`` as the run's config, and
watches the LightningModule (``run.watch``: executed graph, activation and gradient statistics) on every
``every``-th global step of training; validation and sanity-check forwards are left out. The class is built on
``lightning.pytorch`` when that is installed, else on ``pytorch_lightning``; :func:`logger_class` picks one
explicitly. Nothing here imports Lightning before ``TorchscopeLogger`` is first used. See docs/integrations.md.
"""

from __future__ import annotations

import os
import weakref
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from torchscope.integrations._common import RunHolder, require

_PACKAGES = ("lightning.pytorch", "pytorch_lightning")
_classes: dict[str, type] = {}

STATUS = {"success": "finished", "failed": "failed", "finished": "interrupted"}
"""Lightning's ``finalize`` status -> the run's status (``finished`` is what Lightning says when a signal ended it)."""


def logger_class(package: str | None = None) -> type:
    """The ``TorchscopeLogger`` class built on ``package`` (``"lightning.pytorch"`` or ``"pytorch_lightning"``;
    default: the first of them that is installed). Raises ImportError naming the extra when neither is."""
    if package is None:
        for candidate in _PACKAGES:
            if candidate in _classes:
                return _classes[candidate]
        first: ImportError | None = None
        for candidate in _PACKAGES:
            try:
                return logger_class(candidate)
            except ImportError as exc:
                first = first or exc
        assert first is not None
        raise first  # names the extra
    if package not in _PACKAGES:
        raise ValueError(f"package must be one of {', '.join(_PACKAGES)}, got {package!r}")
    if package not in _classes:
        _classes[package] = _build(require(package, "lightning"), package)
    return _classes[package]


def __getattr__(name: str) -> Any:
    if name == "TorchscopeLogger":
        return logger_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TrainingStep:
    """The watch's step source: the trainer's ``global_step`` while a LightningModule trains, None otherwise
    (validation, sanity check, predict). Holds the module weakly, as the watch does."""

    def __init__(self, module: Any) -> None:
        self._module = weakref.ref(module)

    @property
    def module(self) -> Any:
        """The LightningModule, or None once it was garbage collected."""
        return self._module()

    def __call__(self) -> int | None:
        module = self._module()
        trainer = getattr(module, "_trainer", None) if module is not None else None
        if trainer is None or not trainer.training:
            return None
        return int(trainer.global_step)


def _build(pl: Any, package: str) -> type:
    base = require(f"{package}.loggers", "lightning").Logger
    rank_zero = require(f"{package}.utilities.rank_zero", "lightning").rank_zero_only
    rank_zero_experiment = require(f"{package}.loggers.logger", "lightning").rank_zero_experiment

    class TorchscopeLogger(base):  # type: ignore[misc, valid-type]
        """A Lightning logger that records into a torchscope store; see :mod:`torchscope.integrations.lightning`.

        ``name``, ``db``, ``config``, ``system_metrics``: as :func:`torchscope.init` (the run starts when Lightning
        first logs, with the hyperparameters in its config); or ``run``: an existing run to record into (it stays
        yours to finish). ``watch``: watch the LightningModule (True), a submodule by attribute path (``"net"``,
        when ``training_step`` calls that rather than ``self(x)``), or nothing (False); ``every``, ``tensors``,
        ``grads`` go to ``run.watch``. ``finish``: finish the run when ``trainer.fit`` ends (False to go on
        logging from ``trainer.test`` with the same logger; the run then finishes at exit or with
        ``logger.experiment.finish()``). A failure inside torchscope warns once and never stops training.
        """

        def __init__(
            self,
            name: str | None = None,
            db: str | os.PathLike[str] | None = None,
            config: Mapping[str, Any] | None = None,
            *,
            run: Any = None,
            watch: bool | str = True,
            every: int = 50,
            tensors: str = "stats",
            grads: bool = True,
            system_metrics: bool | float = True,
            finish: bool = True,
        ) -> None:
            super().__init__()
            self._holder = RunHolder("Lightning", run, name, db, config, system_metrics)
            self._name = name
            self._watch_target = watch
            self._watch_options = {"every": every, "tensors": tensors, "grads": grads}
            self._watch: Any = None
            self._step: TrainingStep | None = None
            self._finish = finish

        @property
        def name(self) -> str:
            """The run's name (the one given, before the run starts)."""
            run = self._holder.run
            return run.name if run is not None else (self._name or "torchscope")

        @property
        def version(self) -> int | None:
            """The run's id in the store (None before it starts)."""
            run = self._holder.run
            return run.id if run is not None else None

        @property
        @rank_zero_experiment
        def experiment(self) -> Any:
            """The :class:`torchscope.Run` (started on first use); None when the store could not be opened."""
            return self._holder.start()

        @rank_zero
        def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
            """Hyperparameters go into the run's config (keys given as ``config=`` win)."""
            values = vars(params) if isinstance(params, Namespace) else dict(params or {})
            self._holder.guard("log_hyperparams", self._holder.start, values)

        @rank_zero
        def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
            """Every metric that is one number, as a scalar at ``step`` (Lightning's)."""
            self._holder.guard("log_metrics", self._log_metrics, metrics, step)

        def _log_metrics(self, metrics: Mapping[str, Any], step: int | None) -> None:
            stored = self._holder.log_scalars(metrics, step, ended="trainer.fit ended",
                                              later="TorchscopeLogger(finish=False) (for trainer.validate/test)")
            if stored and step:
                self._check_watched(step)

        def _check_watched(self, steps: int) -> None:
            """After ``steps`` training steps, say so when the watched module was never called."""
            watch = self._watch
            if watch is not None and watch.forward_count == 0 and steps > 0:
                what = "LightningModule itself" if self._watch_target is True else f"submodule {self._watch_target!r}"
                self._holder.warn("unwatched", f"torchscope: the {what} was never called while it trained, so no "
                                  "graph was captured; if training_step calls a submodule (self.net(x)), name it: "
                                  "TorchscopeLogger(watch='net')")  # fmt: skip

        @rank_zero
        def log_graph(self, model: Any, input_array: Any = None) -> None:
            """Called by Lightning as fit starts: watch the module (see ``watch``)."""
            if self._watch_target is not False and self._watch is None:
                self._holder.guard("watch", self._start_watch, model)

        def _start_watch(self, model: Any) -> None:
            run = self._holder.start()
            if run is None:
                return
            target = model
            if isinstance(self._watch_target, str):
                for part in self._watch_target.split("."):
                    target = getattr(target, part)
            self._step = TrainingStep(model)
            self._watch = run.watch(target, step=self._step, **self._watch_options)

        @rank_zero
        def save(self) -> None:
            """Nothing to do: the run's writer commits on its own, in the background."""

        @rank_zero
        def finalize(self, status: str) -> None:
            """``trainer.fit`` ended: stop watching and (with ``finish=True``) finish the run with Lightning's
            status."""
            self._holder.guard("finalize", self._finalize, status)

        def _finalize(self, status: str) -> None:
            trainer = getattr(self._step.module, "_trainer", None) if self._step is not None else None
            if trainer is not None:
                self._check_watched(int(trainer.global_step))
            watch, self._watch = self._watch, None
            if watch is not None:
                watch.remove()
            if self._finish:
                self._holder.finish(STATUS.get(status, "finished"))
            elif self._holder.run is not None:
                self._holder.run.flush()

    TorchscopeLogger.__module__ = __name__
    TorchscopeLogger.__qualname__ = "TorchscopeLogger"
    return TorchscopeLogger
