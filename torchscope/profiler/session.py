"""``run.profile(...)``: a ``torch.profiler`` session whose finished windows become profiles of the run."""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, schedule

from torchscope.errors import ProfilerError
from torchscope.io.kineto import read_trace
from torchscope.storage.profile.records import ProfileWindow, TraceColumns
from torchscope.user_code import warn_once


def trace_loader(path: str) -> Callable[[], TraceColumns]:
    """A ``ProfileWindow.load`` for the exported trace at ``path``: decodes it when called (on the writer thread)
    and deletes the file, whether or not it could be decoded."""

    def load() -> TraceColumns:
        try:
            return read_trace(path)
        finally:
            try:
                os.remove(path)
            except OSError:
                pass

    return load


@contextmanager
def _quiet_cycles() -> Iterator[None]:
    """Hide torch's "Profiler clears events at the end of each cycle" warning: each cycle is stored as its own
    profile, which is what that warning is about (``acc_events`` would only grow memory)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*clears events at the end of each cycle.*")
        yield


class ProfileSession:
    """Wraps ``torch.profiler.profile`` with ``schedule(wait, warmup, active, repeat)``.

    CPU activities always, CUDA ones when ``torch.cuda.is_available()``. Use as a context manager and call
    :meth:`step` once per training step. Each finished window is exported as a Chrome trace (what
    ``tensorboard_trace_handler`` does, on the training thread) and handed to the run's writer, which decodes and
    stores it on its own thread as a profile (source ``live``) of the run. A failure inside torchscope warns
    (:class:`TorchscopeWarning`) and is counted in ``run.dropped``; it never stops training.
    """

    def __init__(
        self,
        run: Any,
        *,
        wait: int = 1,
        warmup: int = 1,
        active: int = 3,
        repeat: int = 1,
        skip_first: int = 0,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        name: str | None = None,
    ) -> None:
        for label, value, low in (("wait", wait, 0), ("warmup", warmup, 0), ("active", active, 1),
                                  ("repeat", repeat, 0), ("skip_first", skip_first, 0)):  # fmt: skip
            if not isinstance(value, int) or value < low:
                raise ProfilerError(f"run.profile({label}={value!r}): give an integer >= {low}")
        self.run = run
        self.name = name or "window"
        self.windows = 0
        """How many windows were handed to the writer so far."""
        self._counter = itertools.count(1)
        activities = [ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(ProfilerActivity.CUDA)
        self.activities = activities
        self._prof = profile(
            activities=activities,
            schedule=schedule(wait=wait, warmup=warmup, active=active, repeat=repeat, skip_first=skip_first),
            on_trace_ready=self._on_trace_ready,
            record_shapes=record_shapes,
            profile_memory=profile_memory,
            with_stack=with_stack,
        )
        self._started = False

    @property
    def profiler(self) -> profile:
        """The wrapped ``torch.profiler.profile``."""
        return self._prof

    def __enter__(self) -> ProfileSession:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start profiling (``__enter__`` does this)."""
        try:
            with _quiet_cycles():
                self._prof.start()
            self._started = True
        except Exception as exc:  # noqa: BLE001 - profiling must never stop training
            self._warn("start", f"torchscope: the profiler could not start, profiling is off: {exc}")

    def step(self) -> None:
        """Mark the end of a training step (advances the schedule)."""
        if not self._started:
            return
        try:
            with _quiet_cycles():
                self._prof.step()
        except Exception as exc:  # noqa: BLE001
            self._warn("step", f"torchscope: profiler step failed, profiling stops: {exc}")
            self._started = False

    def stop(self) -> None:
        """Stop profiling; a window still recording is stored. Idempotent."""
        if self._started:
            self._started = False
            try:
                self._prof.stop()
            except Exception as exc:  # noqa: BLE001
                self._warn("stop", f"torchscope: stopping the profiler failed: {exc}")

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every finished window is stored; False on timeout."""
        return bool(self.run.writer.flush(timeout))

    def _on_trace_ready(self, prof: profile) -> None:
        index = next(self._counter)
        # one temporary file per window, deleted by the writer once stored
        path: Path | None = None
        try:
            fd, name = tempfile.mkstemp(prefix=f"torchscope-run{self.run.id}-window{index}-", suffix=".json")
            os.close(fd)
            path = Path(name)
            prof.export_chrome_trace(str(path))
        except Exception as exc:  # noqa: BLE001
            if path is not None:
                path.unlink(missing_ok=True)
            self._warn("export", f"torchscope: a profiler window could not be exported and is lost: {exc}")
            return
        self.windows += 1
        self.run.writer.put(ProfileWindow(self.run.id, f"{self.name} {index}", trace_loader(str(path))))

    def _warn(self, key: str, message: str) -> None:
        writer = getattr(self.run, "writer", None)
        if writer is not None:
            writer.drop("profiles")
            writer.warn_once(f"profile:{key}", message)
        else:
            warn_once(f"profile:{key}", message)
