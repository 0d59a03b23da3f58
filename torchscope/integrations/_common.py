"""What the framework integrations share: starting or adopting a run, a late config, numbers from a framework's logs,
and the guard that keeps a failure inside torchscope from reaching the framework's training loop."""

from __future__ import annotations

import importlib
import json
import numbers
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from torchscope.capture.run import Run, init
from torchscope.errors import TorchscopeWarning
from torchscope.storage.runs.records import RunUpdate


def require(module: str, extra: str) -> Any:
    """Import ``module`` (a framework), or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"torchscope's {extra} integration needs {module.split('.')[0]!r}: pip install 'torchscope[{extra}]'"
        ) from exc


class RunHolder:
    """The run an integration records into: one it was given, or one it starts on first use (and finishes).

    Every call from the framework goes through :meth:`guard`: an exception inside torchscope is warned once (by
    its kind) and the framework's training carries on. A run that cannot be started (the store cannot be opened)
    turns the integration off for the rest of the process, with one warning.
    """

    def __init__(
        self,
        integration: str,
        run: Run | None,
        name: str | None,
        db: str | os.PathLike[str] | None,
        config: Mapping[str, Any] | None,
        system_metrics: bool | float,
    ) -> None:
        self.integration = integration
        self.run = run
        self.owns_run = run is None
        self.disabled = False
        self._init_args = {"name": name, "db": db, "config": dict(config or {}), "system_metrics": system_metrics}
        self._warned: set[str] = set()

    def start(self, config: Mapping[str, Any] | None = None) -> Run | None:
        """The run, started now with ``config`` added to the one given at construction when there is none yet;
        None when the integration is off. A run that already exists gets ``config`` through :meth:`add_config`."""
        if self.disabled:
            return None
        if self.run is None:
            args = dict(self._init_args)
            args["config"] = {**_jsonable(config or {}), **args["config"]}
            try:
                self.run = init(**args)
            except Exception as exc:  # noqa: BLE001 - a store that cannot be opened must not stop training
                self.disabled = True
                self.warn("init", f"torchscope: the {self.integration} integration records nothing in this process: "
                          f"{type(exc).__name__}: {exc}")  # fmt: skip
                return None
        elif config:
            self.add_config(config)
        return self.run

    def add_config(self, config: Mapping[str, Any]) -> None:
        """Add the keys of ``config`` the run's config does not have yet (keys the user gave, to ``init`` or as
        ``config=``, are kept) and store the whole config again."""
        run = self.run
        if run is None:
            return
        new = {key: value for key, value in _jsonable(config).items() if key not in run.config}
        if not new:
            return
        run.config.update(new)
        run.writer.put(RunUpdate(run.id, config=json.dumps(run.config, default=str, sort_keys=True)))

    def guard(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, or None after warning once when it raised (never raises itself)."""
        if self.disabled:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the framework's training must go on
            self.warn(f"{what}:{type(exc).__name__}", f"torchscope: the {self.integration} integration skipped "
                      f"{what} and carries on: {type(exc).__name__}: {exc}")  # fmt: skip
            return None

    def warn(self, key: str, message: str) -> None:
        """Warn ``message`` once per ``key`` (through the run's warnings when there is a run)."""
        if self.run is not None:
            self.run.writer.warn_once(f"{self.integration}:{key}", message)
            return
        if key in self._warned:
            return
        self._warned.add(key)
        warnings.warn(message, TorchscopeWarning, stacklevel=3)

    def log_scalars(self, logs: Mapping[str, Any] | None, step: int | None, *, ended: str, later: str,
                    prefix: str = "") -> bool:
        """Log the one-number entries of ``logs`` (as ``prefix + key``) at ``step``; False when nothing can be
        stored: the integration is off, or the run has finished, which is warned once (``ended``: when the run
        finished, e.g. "trainer.fit ended"; ``later``: what to create to log more, e.g.
        "TorchscopeLogger(finish=False)")."""
        run = self.start()
        if run is None:
            return False
        if run.status != "running":
            self.warn("after-finish", f"torchscope: run {run.id} finished when {ended}, so these logs are not stored; "
                      f"to record more into the same run, create it with {later}")  # fmt: skip
            return False
        values = scalars(logs)
        if values:
            run.log({prefix + key: value for key, value in values.items()}, step=step)
        return True

    def finish(self, status: str = "finished") -> None:
        """Finish the run when this integration started it (a run it was given stays the caller's to finish)."""
        if self.run is not None and self.owns_run:
            self.run.finish(status)


_REAL = ("b", "i", "u", "f")  # numpy dtype kinds of real numbers


def scalars(logs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The entries of a framework's log dict that are one real number each (strings, lists, None left out), so that
    ``run.log`` warns about none of them."""
    out: dict[str, Any] = {}
    for key, value in (logs or {}).items():
        if not isinstance(key, str) or not key:
            continue
        if isinstance(value, numbers.Real):
            out[key] = float(value)
        elif hasattr(value, "numel") and value.numel() == 1 and not value.is_complex():
            out[key] = value.detach().reshape(())
        elif getattr(value, "size", None) == 1 and getattr(getattr(value, "dtype", None), "kind", "") in _REAL:
            out[key] = float(value.item() if hasattr(value, "item") else value)
    return out


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every value JSON can hold as it is, and the others as their ``str``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        try:
            json.dumps(value)
            out[str(key)] = value
        except (TypeError, ValueError):
            out[str(key)] = str(value)
    return out
