"""``torchscope.init`` and :class:`Run`: the training process's handle on one run in the store."""

from __future__ import annotations

import atexit
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import psutil
from torchscope.capture.log_values import FLOATS as _FLOATS
from torchscope.capture.log_values import STEP_END as _STEP_END
from torchscope.capture.log_values import STEP_MIN as _STEP_MIN
from torchscope.capture.log_values import check_step, clean
from torchscope.capture.distributed import Placement, detect
from torchscope.storage.engine import open_engine, resolve_url, sqlite_path
from torchscope.storage.runs.records import RunUpdate, scalar_log
from torchscope.storage.runs.scalar_writes import warm_up
from torchscope.storage.runs.writes import dropped_counts, heartbeat, open_run, restore_run
from torchscope.storage.writer import DEFAULT_MAX_QUEUE, Writer

HEARTBEAT_SECONDS = 1.0
"""How often a live run proves it is alive; the store reads a run without a recent heartbeat as interrupted."""

_open_runs: set[Run] = set()
"""Runs not finished yet; held strongly so that a run the program dropped is still finished at exit."""
_exit_state: dict[str, Any] = {"exception": None}


class Run:
    """One training run being recorded. Create it with :func:`torchscope.init`.

    ``log`` only enqueues: it never waits on the database and never raises. Use as a context manager to have an
    exception inside the block mark the run ``failed`` (``KeyboardInterrupt``: ``interrupted``).
    """

    def __init__(
        self, writer: Writer, run_id: int, name: str, config: dict[str, Any], url: str, placement: Placement = Placement()
    ) -> None:
        self.id = run_id
        self.name = name
        self.config = config
        self.url = url
        self.rank, self.world_size, self.local_rank, self.job_id = placement
        """Where this process sits in a distributed job (None outside one); see :mod:`torchscope.capture.distributed`."""
        self._writer = writer
        self.writer = writer
        """The store's background writer; hooks and profiler sessions put their records on it."""
        self._next_step = 0
        self._finished = False
        self._lock = threading.Lock()
        self.status = "running"
        self._system: Any = None  # the system-metrics sampler thread, see init(system_metrics=...)
        self._tags: set[str] = set()  # tags run.log has seen to be valid
        self.watch_names: set[str] = set()
        """Names of the models watched in this run (``run.watch(model, name=...)``); a name stays taken after its
        watch is removed, since its steps stay in the store under it."""

    # -- logging --------------------------------------------------------------------------------------------------
    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Record scalars ``{tag: value}`` at ``step`` (the next step after the last one when omitted).

        Values may be Python numbers, bools, numpy scalars or one-element tensors (tensors are read on the writer
        thread). NaN and ±Inf are stored as such. Never raises: a value that is not one real number, or a tag that is
        not a non-empty string, is dropped, counted in :attr:`dropped` and warned about once per run; see
        :mod:`torchscope.capture.log_values`.
        """
        try:
            # the common case with no call and no Python-level loop (this is the training thread's hot path): a dict
            # of plain floats under tags already seen valid, at an int step inside int64 or the next step
            if (
                type(data) is dict
                and (step is None or (type(step) is int and _STEP_MIN < step < _STEP_END))
                and data.keys() <= self._tags
                and _FLOATS.issuperset(map(type, data.values()))
            ):
                if step is None:
                    step = self._next_step
                if step >= self._next_step:
                    self._next_step = step + 1
                self._writer.put(scalar_log((self.id, step, time.time_ns(), data.copy())))
                return
            if not isinstance(data, Mapping):
                self._drop("log-data", f"torchscope: run.log takes a dict {{tag: number}}, got {type(data).__name__}; "
                           "nothing was logged")  # fmt: skip
                return
            if step is None:
                step = self._next_step
                self._next_step += 1
            else:
                checked = check_step(step)
                if checked is None:
                    self._drop("log-step", f"torchscope: run.log got step={step!r:.40}; a step is an integer (int64), "
                               f"e.g. run.log({{...}}, step=3); that call's {len(data)} values were dropped",
                               len(data))  # fmt: skip
                    return
                step = checked
                if step >= self._next_step:
                    self._next_step = step + 1
            values = clean(data, self._tags, self._drop)
            if values:
                self._writer.put(scalar_log((self.id, step, time.time_ns(), values)))
        except Exception as exc:  # noqa: BLE001 - logging must never break training
            self._drop("log", f"torchscope: run.log failed and was skipped: {exc}")

    def _drop(self, key: str, message: str, count: int = 1) -> None:
        self._writer.drop("scalars", count)
        self._writer.warn_once(key, message)

    @property
    def step(self) -> int:
        """The step the next ``log`` without an explicit step will use."""
        return self._next_step

    @property
    def dropped(self) -> int:
        """How many records this process could not store (see the warnings it emitted); by kind in
        :attr:`dropped_by_kind`. The run's row in the store keeps the same counts (``store.run(id)``)."""
        return self._writer.dropped

    @property
    def dropped_by_kind(self) -> dict[str, int]:
        """Dropped so far by kind: ``scalars`` (values), ``steps`` (captured steps), ``profiles`` (windows)."""
        return self._writer.dropped_counts()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything logged so far is committed; False if that took longer than ``timeout``."""
        return self._writer.flush(timeout)

    # -- capture and profiling -------------------------------------------------------------------------------------
    def watch(self, model: Any, every: int = 50, tensors: str = "stats", grads: bool = True, **options: Any) -> Any:
        """Capture ``model``'s executed graph and tensor values every ``every``-th step; returns a removable handle.

        See :func:`torchscope.capture.watch.watch` for the options.
        """
        from torchscope.capture.watch import watch

        return watch(self, model, every=every, tensors=tensors, grads=grads, **options)

    def profile(self, **options: Any) -> Any:
        """A ``torch.profiler`` session whose finished windows are stored as profiles of this run.

        Takes ``wait, warmup, active, repeat, record_shapes, profile_memory, with_stack``; see
        :class:`torchscope.profiler.session.ProfileSession`.
        """
        from torchscope.profiler.session import ProfileSession

        return ProfileSession(self, **options)

    def show(self, **options: Any) -> Any:
        """Show this run's live page of the dashboard: inline in a Jupyter notebook, else its URL is printed.

        Returns at once (the dashboard is served by a thread); see :func:`torchscope.notebook.show` for ``options``
        (``port``, ``height`` ...)."""
        from torchscope.notebook import show

        self.flush(5.0)  # what was logged so far is in the first paint
        return show(self.url, run=self.id, **options)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def finish(self, status: str = "finished", error: str | None = None, timeout: float = 30.0) -> None:
        """Write everything queued, mark the run ``status`` and release the database. Idempotent.

        Waits while the writer makes progress; gives up when no batch committed for ``timeout`` seconds, counting
        what was still queued as dropped (with a warning)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        if self._system is not None:
            self._system.stop()
        self.status = status
        now = time.time_ns()
        error = error[:500] if error else None
        self._writer.put(RunUpdate(self.id, status=status, ended_at=now, heartbeat_at=now, error=error))
        self._writer.close(timeout)  # writes what is queued, and the dropped counts when they changed
        _open_runs.discard(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("interrupted")
        else:
            self.finish("failed", error=f"{exc_type.__name__}: {exc}")

    def __repr__(self) -> str:
        return f"Run(id={self.id}, name={self.name!r}, status={self.status!r}, db={self.url!r})"


def init(
    name: str | None = None,
    db: str | os.PathLike[str] | None = None,
    config: Mapping[str, Any] | None = None,
    system_metrics: bool | float = True,
    max_queue: int = DEFAULT_MAX_QUEUE,
    job: str | None = None,
) -> Run:
    """Start recording a run into the store ``db`` (a path or SQLAlchemy URL; default ``./torchscope.db``).

    ``system_metrics`` samples CPU, memory and GPU use as ``sys/...`` scalars every 5 seconds (a number: every that
    many seconds; False: not at all); see :mod:`torchscope.capture.system_metrics`.

    ``max_queue`` bounds the records waiting for the writer (default 1,000,000; a ``log`` call or a captured step is
    one record): when the writer cannot keep up, captured steps are dropped once the queue is half full, everything
    once it is full, and the counts say what (``run.dropped_by_kind``, ``store.run(id)``).

    In a distributed job the run records its ``rank``, ``world_size``, ``local_rank`` and ``job_id`` (from
    ``torch.distributed`` or the launcher's environment, see :mod:`torchscope.capture.distributed`); ``job`` names the
    job explicitly. Every rank may write into the same store at once (SQLite or PostgreSQL).

    Creates the database when it does not exist. Raises :class:`torchscope.StoreError` when it cannot be opened;
    everything after this call only warns.
    """
    url = resolve_url(db)
    engine = open_engine(url, create=True, writer=True)
    now = time.time_ns()
    pid = os.getpid()
    place = detect(job)
    run_name = name or f"run-{time.strftime('%Y%m%d-%H%M%S')}" + (f"-rank{place.rank}" if place.rank is not None else "")
    fields = {
        "name": run_name, "config": dict(config or {}), "started_at": now, "hostname": socket.gethostname(),
        "pid": pid, "pid_started_at": int(psutil.Process(pid).create_time() * 1e9), **place._asdict(),
    }  # fmt: skip
    run_id = open_run(engine, **fields)
    _install_exit_hooks()
    writer = Writer(engine, max_queue=max_queue, path=sqlite_path(url))
    writer.counts_sink = dropped_counts(run_id)
    writer.on_new_file.append(restore_run(run_id, **fields))  # a deleted file is created again with this run
    writer.every(HEARTBEAT_SECONDS, heartbeat(run_id))
    writer.call(lambda conn: warm_up(conn, run_id))
    run = Run(writer, run_id, run_name, dict(config or {}), url, place)
    if system_metrics:
        from torchscope.capture.system_metrics import DEFAULT_INTERVAL, start_for_run

        interval = DEFAULT_INTERVAL if system_metrics is True else float(system_metrics)
        run._system = start_for_run(run, interval)
    _open_runs.add(run)
    return run


def _record_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _exit_state["exception"] = exc
    _previous_excepthook(exc_type, exc, tb)


def _finish_open_runs() -> None:
    """At interpreter exit: runs not finished by the program end as finished, or failed after an uncaught error."""
    exc = _exit_state["exception"]
    for run in list(_open_runs):
        if exc is None:
            run.finish()
        elif isinstance(exc, KeyboardInterrupt):
            run.finish("interrupted")
        else:
            run.finish("failed", error=f"{type(exc).__name__}: {exc}")


_previous_excepthook = sys.excepthook


def _install_exit_hooks() -> None:
    """Once per process: finish open runs at exit, and note an uncaught exception so they end as failed."""
    global _previous_excepthook
    if _exit_state.get("installed"):
        return
    _exit_state["installed"] = True
    _previous_excepthook = sys.excepthook
    sys.excepthook = _record_uncaught
    atexit.register(_finish_open_runs)
