"""The user's line: the innermost frame outside torch and torchscope, and warnings that point at it.

Graph capture names the line of your code that made each op (:func:`user_location`); every
:class:`~torchscope.errors.TorchscopeWarning` of a run is emitted at that same kind of line (your ``model(x)``,
``loss.backward()``, ``run.log(...)``, ``prof.step()``), once per run (:class:`RunWarnings`). Python 3.11's
``warnings.warn`` has no ``skip_file_prefixes``, so the frame is found here and handed to ``warnings.warn_explicit``.

A warning raised on a thread torchscope runs (the writer, which stores batches and profiler windows) has no line of
yours behind it: it points at the ``torchscope.init(...)`` call that created the run. So does one raised where no
frame of yours is on the stack (a backward hook that autograd runs on a device thread).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import warnings
from types import FrameType

from torchscope.errors import TorchscopeWarning

_PACKAGE_DIR = os.path.dirname(__file__)


def _torch_dir() -> tuple[str, ...]:
    """torch's package folder, found without importing torch (``import torchscope`` does not load it)."""
    spec = importlib.util.find_spec("torch")
    return tuple(os.path.join(p, "") for p in (spec.submodule_search_locations or [])) if spec else ()


# Frames of torch and of torchscope's own machinery are not "the user's line"; torchscope's cli/ (the demo's training
# script, ``torchscope run SCRIPT``) is user code like any other.
SKIP_PREFIXES = (
    *_torch_dir(),
    *(os.path.join(_PACKAGE_DIR, part) + os.sep for part in ("capture", "profiler", "io", "storage", "dashboard")),
    *(os.path.join(_PACKAGE_DIR, name) for name in ("user_code.py", "errors.py", "__init__.py")),
)
_skip_file: dict[str, bool] = {}
"""Whether a source file is torch's or torchscope's, by file name (a code object's equality ignores its file)."""


def user_frame(depth: int = 1) -> FrameType | None:
    """The innermost frame outside torch and torchscope, starting ``depth`` frames above this call; None when the
    whole stack is torch's and torchscope's (a thread they started)."""
    frame: FrameType | None = sys._getframe(depth)
    while frame is not None:
        filename = frame.f_code.co_filename
        skip = _skip_file.get(filename)
        if skip is None:
            skip = _skip_file[filename] = filename.startswith(SKIP_PREFIXES)
        if not skip:
            return frame
        frame = frame.f_back
    return None


def user_location(depth: int = 2) -> tuple[str | None, int | None]:
    """``(file, line)`` of the innermost frame outside torch and torchscope: the user's line that caused the call."""
    frame = user_frame(depth + 1)
    return (None, None) if frame is None else (frame.f_code.co_filename, frame.f_lineno)


class _Where:
    """A place a warning is attributed to: file, line, and the module name that warning filters match."""

    __slots__ = ("filename", "lineno", "module")

    def __init__(self, frame: FrameType | None) -> None:
        if frame is None:
            self.filename, self.lineno, self.module = "<torchscope>", 0, "torchscope"
        else:
            self.filename, self.lineno = frame.f_code.co_filename, frame.f_lineno
            self.module = frame.f_globals.get("__name__") or self.filename


_local = threading.local()


class RunWarnings:
    """The warnings of one run: each distinct ``key`` is warned once, at the user's line.

    Created where the run is created (its ``origin`` is that line: ``torchscope.init(...)``). Thread-safe. Each run
    has its own warning registry, so the same warning at the same line is shown again for the next run, also under
    Python's default filter (which shows a warning once per line and text).
    """

    def __init__(self) -> None:
        self.origin = _Where(user_frame(2))
        self._seen: set[str] = set()
        self._registry: dict[object, object] = {}
        self._lock = threading.Lock()

    def bind_thread(self) -> None:
        """Mark the calling thread as torchscope's own (the writer): its warnings point at the run's origin, and
        :func:`warn_once` called on it reaches this run."""
        _local.warnings = self

    def warn_once(self, key: str, message: str, category: type[Warning] = TorchscopeWarning) -> bool:
        """Warn ``message`` the first time ``key`` is seen in this run; returns whether it warned."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        own_thread = getattr(_local, "warnings", None) is not None or threading.current_thread().name.startswith(
            "torchscope-"
        )
        frame = None if own_thread else user_frame(2)
        where = self.origin if frame is None else _Where(frame)
        try:
            warnings.warn_explicit(
                message, category, where.filename, where.lineno, module=where.module, registry=self._registry
            )
        except Warning:  # `-W error`: raised where the program asked for it, never on a torchscope thread
            if not own_thread:
                raise
        except Exception:  # noqa: BLE001, S110 - a broken showwarning hook must not break training
            pass
        return True


def warn_once(key: str, message: str, category: type[Warning] = TorchscopeWarning) -> None:
    """Warn through the run whose thread this is (the writer thread while it stores a batch), once per run; where no
    run is bound (an import), warn at the user's line."""
    run_warnings: RunWarnings | None = getattr(_local, "warnings", None)
    if run_warnings is not None:
        run_warnings.warn_once(key, message, category)
        return
    where = _Where(user_frame(2))
    warnings.warn_explicit(message, category, where.filename, where.lineno, module=where.module)
