"""Hugging Face ``transformers``: :class:`TorchscopeCallback`, a ``TrainerCallback`` that records a ``Trainer`` run.

``Trainer(..., callbacks=[TorchscopeCallback(name="bert-tiny")])`` stores what the Trainer logs (``loss``,
``grad_norm``, ``learning_rate``, ``epoch``, evaluation metrics, the final summary) as scalars at its
``global_step``, the ``TrainingArguments`` and the model's config as the run's config, and watches the model
(``run.watch``: executed graph, activation and gradient statistics) on every ``every``-th global step of training;
evaluation forwards are left out. Only the main process records. The class is built when first used, so importing
this module does not import ``transformers``. See docs/integrations.md.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any

from torchscope.integrations._common import RunHolder, require

_classes: dict[str, type] = {}


def callback_class() -> type:
    """The ``TorchscopeCallback`` class (a ``transformers.TrainerCallback``); ImportError naming the extra when
    ``transformers`` is not installed."""
    if "callback" not in _classes:
        _classes["callback"] = _build(require("transformers", "transformers"))
    return _classes["callback"]


def __getattr__(name: str) -> Any:
    if name == "TorchscopeCallback":
        return callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TrainingStep:
    """The watch's step source: the Trainer's ``global_step`` while the model is in training mode, None otherwise
    (evaluation, prediction). Holds the model and the state weakly, as the watch holds the model."""

    def __init__(self, model: Any, state: Any) -> None:
        self._model = weakref.ref(model)
        self._state = weakref.ref(state)

    def __call__(self) -> int | None:
        model, state = self._model(), self._state()
        if model is None or state is None or not model.training:
            return None
        return int(state.global_step)


def run_config(args: Any, model: Any) -> dict[str, Any]:
    """The run's config from a ``Trainer``: the ``TrainingArguments`` (as ``to_sanitized_dict`` gives them, tokens
    masked) and, under ``model_config``, the model's ``PretrainedConfig`` as a dict."""
    config: dict[str, Any] = dict(args.to_sanitized_dict()) if hasattr(args, "to_sanitized_dict") else {}
    model_config = getattr(model, "config", None)
    if hasattr(model_config, "to_dict"):
        config["model_config"] = model_config.to_dict()
    return config


def _build(transformers: Any) -> type:
    class TorchscopeCallback(transformers.TrainerCallback):  # type: ignore[misc, name-defined]
        """A ``TrainerCallback`` that records into a torchscope store; see
        :mod:`torchscope.integrations.transformers`.

        ``name``, ``db``, ``config``, ``system_metrics``: as :func:`torchscope.init` (the run starts when training
        begins; ``name`` defaults to ``TrainingArguments.run_name``); or ``run``: an existing run to record into (it
        stays yours to finish). ``watch``: watch the model (False: scalars and config only); ``every``,
        ``tensors``, ``grads`` go to ``run.watch``. ``finish``: finish the run when training ends (False to go on
        logging from a later ``trainer.evaluate()``). A failure inside torchscope warns once and never stops
        training.
        """

        def __init__(
            self,
            name: str | None = None,
            db: str | os.PathLike[str] | None = None,
            config: Mapping[str, Any] | None = None,
            *,
            run: Any = None,
            watch: bool = True,
            every: int = 50,
            tensors: str = "stats",
            grads: bool = True,
            system_metrics: bool | float = True,
            finish: bool = True,
        ) -> None:
            self._holder = RunHolder("Hugging Face", run, name, db, config, system_metrics)
            self._name = name
            self._watch_model = watch
            self._watch_options = {"every": every, "tensors": tensors, "grads": grads}
            self._watch: Any = None
            self._finish = finish

        @property
        def run(self) -> Any:
            """The :class:`torchscope.Run` recorded into (None before training begins, or when it cannot be)."""
            return self._holder.run

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            """Start the run with the arguments as config, and watch the model."""
            if state.is_world_process_zero:
                self._holder.guard("on_train_begin", self._begin, args, state, model)

        def _begin(self, args: Any, state: Any, model: Any) -> None:
            holder = self._holder
            if holder.run is None and self._name is None and getattr(args, "run_name", None):
                holder._init_args["name"] = args.run_name
            run = holder.start(run_config(args, model))
            if run is None or model is None or not self._watch_model or self._watch is not None:
                return
            self._watch = run.watch(model, step=TrainingStep(model, state), **self._watch_options)

        def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
                   **kwargs: Any) -> None:  # fmt: skip
            """Every logged number, as a scalar at the Trainer's ``global_step``."""
            if state.is_world_process_zero:
                self._holder.guard("on_log", self._log, state, logs)

        def _log(self, state: Any, logs: Mapping[str, Any] | None) -> None:
            self._holder.log_scalars(logs, int(state.global_step), ended="training ended",
                                     later="TorchscopeCallback(finish=False) (for a later trainer.evaluate())")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            """Stop watching and (with ``finish=True``) finish the run."""
            if state.is_world_process_zero:
                self._holder.guard("on_train_end", self._end)

        def _end(self) -> None:
            watch, self._watch = self._watch, None
            if watch is not None:
                watch.remove()
            if self._finish:
                self._holder.finish()
            elif self._holder.run is not None:
                self._holder.run.flush()

    TorchscopeCallback.__module__ = __name__
    TorchscopeCallback.__qualname__ = "TorchscopeCallback"
    return TorchscopeCallback
