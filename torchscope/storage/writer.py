"""The single background writer: one thread owns the write connection and is fed through a queue.

The training thread only calls :meth:`Writer.put`, which appends a record (a NamedTuple or frozen dataclass from a
subject's ``records.py``) to an in-memory queue and returns in well under a microsecond; it never touches the
database. The writer thread drains the queue at least every ``flush_interval`` seconds, hands the records of each
type to that type's handler (``torchscope.storage.handlers``) and commits the batch in one transaction, so a batch
is either stored whole or not at all. A batch that keeps failing is dropped and counted, with one warning: a
failure in torchscope never reaches the user's training.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine

from torchscope.storage.bulk import Interner
from torchscope.storage.handlers import HANDLERS
from torchscope.user_code import RunWarnings


class _Flush(NamedTuple):
    done: threading.Event


class _Stop(NamedTuple):
    pass


class _Call(NamedTuple):
    task: Callable[[Connection], Any]
    box: dict[str, Any]
    done: threading.Event


_CONTROL = (_Flush, _Stop, _Call)


class Writer:
    """Owns the write connection of one store in one process; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        flush_interval: float = 0.25,
        max_batch: int = 200_000,
        max_pending: int = 5_000_000,
        retries: int = 3,
    ) -> None:
        self.engine = engine
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.retries = retries
        self.dropped = 0
        self.written_batches = 0
        self.interner = Interner()
        self.periodic: list[tuple[float, Callable[[Connection], None]]] = []
        self._last_periodic: list[float] = []
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.warnings = RunWarnings()
        """This run's warnings: once each, at the user's line; on the writer thread, at the line that created it."""
        self._closed = False
        self._urgent = threading.Event()
        self._last_write = 0.0
        self._thread = threading.Thread(target=self._loop, name="torchscope-writer", daemon=True)
        self._thread.start()

    # -- training-thread side -------------------------------------------------------------------------------------
    def put(self, record: Any) -> None:
        """Enqueue one record for the handler of its type; never blocks, never raises."""
        if self._closed or self._queue.qsize() > self.max_pending:
            self.dropped += 1
            self.warn_once("backlog", "torchscope: the writer cannot keep up or is closed; records are being dropped")
            return
        self._queue.put(record)

    def every(self, seconds: float, task: Callable[[Connection], None]) -> None:
        """Run ``task(conn)`` in the writer's transaction about every ``seconds`` (heartbeats, samples)."""
        self.periodic.append((seconds, task))
        self._last_periodic.append(0.0)

    def call(self, task: Callable[[Connection], Any], timeout: float = 30.0) -> Any:
        """Run ``task(conn)`` on the writer thread after everything queued so far, and return its result."""
        box: dict[str, Any] = {}
        done = threading.Event()
        self._queue.put(_Call(task, box, done))
        self._urgent.set()
        if not done.wait(timeout):
            raise TimeoutError("torchscope writer did not answer in time")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every record put before this call is committed (or dropped); False on timeout."""
        if not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(_Flush(done))
        self._urgent.set()
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Write what is queued, then stop the thread. Idempotent. False if it did not finish in time."""
        if self._closed:
            return not self._thread.is_alive()
        self._closed = True
        self._queue.put(_Stop())
        self._urgent.set()
        self._thread.join(timeout)
        finished = not self._thread.is_alive()
        if finished:
            self.engine.dispose()
        return finished

    def warn_once(self, key: str, message: str) -> None:
        """Emit ``message`` as a :class:`TorchscopeWarning` the first time ``key`` is seen (see
        :class:`~torchscope.user_code.RunWarnings` for the line it points at)."""
        self.warnings.warn_once(key, message)

    # -- writer-thread side ---------------------------------------------------------------------------------------
    def _loop(self) -> None:
        self.warnings.bind_thread()  # what the handlers warn goes to this run, pointing at its torchscope.init line
        stop = False
        while not stop:
            batch = self._take()
            records: dict[type, list[Any]] = {}
            signals: list[threading.Event] = []
            calls: list[_Call] = []
            for item in batch:
                kind = type(item)
                if kind is _Flush:
                    signals.append(item.done)
                elif kind is _Stop:
                    stop = True
                elif kind is _Call:
                    calls.append(item)
                else:
                    records.setdefault(kind, []).append(item)
            due = self._due_periodic()
            if records or due:
                self._write(records, due)
                self._last_write = time.monotonic()
            for call in calls:
                self._run_call(call.task, call.box)
                call.done.set()
            for done in signals:
                done.set()

    def _take(self) -> list[Any]:
        try:
            first = self._queue.get(timeout=self.flush_interval)
        except queue.Empty:
            return []
        batch = [first]
        if isinstance(first, _CONTROL):
            return batch
        # Let records gather until flush_interval has passed since the last write: a write per log call would take
        # the GIL from the training thread hundreds of times a second. flush(), call() and close() cut it short.
        wait = self._last_write + self.flush_interval - time.monotonic()
        if wait > 0 and self._urgent.wait(wait):
            self._urgent.clear()
        # Take only what is queued now: a producer that never pauses must not keep the batch from committing.
        get = self._queue.get_nowait
        for _ in range(min(self._queue.qsize(), self.max_batch - 1)):
            item = get()
            batch.append(item)
            if isinstance(item, _CONTROL):
                break
        return batch

    def _due_periodic(self) -> list[Callable[[Connection], None]]:
        now = time.monotonic()
        due = []
        for i, (seconds, task) in enumerate(self.periodic):
            if now - self._last_periodic[i] >= seconds:
                self._last_periodic[i] = now
                due.append(task)
        return due

    def _write(self, records: dict[type, list[Any]], due: list[Callable[[Connection], None]]) -> None:
        for attempt in range(self.retries):
            try:
                with self.engine.begin() as conn:
                    for kind, payloads in records.items():
                        HANDLERS[kind](conn, self.interner, payloads)
                    for task in due:
                        task(conn)
                self.written_batches += 1
                return
            except Exception as exc:  # noqa: BLE001 - any failure must stay inside torchscope
                self.interner = Interner()  # names it interned were rolled back with the batch
                if attempt + 1 < self.retries:
                    time.sleep(0.05 * 2**attempt)
                    continue
                lost = sum(len(p) for p in records.values())
                self.dropped += lost
                kinds = ", ".join(sorted(kind.__name__ for kind in records)) or "periodic tasks"
                self.warn_once(f"write:{type(exc).__name__}", f"torchscope: dropped {lost} records ({kinds}): {exc}")

    def _run_call(self, task: Callable[[Connection], Any], box: dict[str, Any]) -> None:
        try:
            with self.engine.begin() as conn:
                box["result"] = task(conn)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
