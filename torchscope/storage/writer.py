"""The single background writer: one thread owns the write connection and is fed through a queue.

The training thread only calls :meth:`Writer.put`, which appends a record (a NamedTuple or frozen dataclass from a
subject's ``records.py``) to an in-memory queue and returns in well under a microsecond; it never touches the
database. The writer thread drains the queue at least every ``flush_interval`` seconds, hands the records of each
type to that type's handler (``torchscope.storage.handlers``) and commits the batch in one transaction, so a batch
is either stored whole or not at all. A batch that keeps failing is dropped and counted by kind, with one warning per
kind of failure saying what happened and what to do; the next batch tries again, so writing resumes on its own when
the database is back. The queue is bounded (``max_queue``): past half of it captured steps are dropped, past all of
it everything. A failure in torchscope never reaches the user's training (docs/store.md, "When writing fails").
"""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

from sqlalchemy import Connection, Engine

from torchscope.storage.bulk import Interner
from torchscope.storage.engine import ensure_schema
from torchscope.storage.graph.records import GraphStep
from torchscope.storage.handlers import HANDLERS
from torchscope.storage.profile.records import ProfileWindow
from torchscope.storage.runs.records import RunUpdate, ScalarLog

CLOSING_BATCH = 5_000
"""Records per batch once ``close`` was called: each commit then proves progress well within its timeout."""

DEFAULT_MAX_QUEUE = 1_000_000
"""Records the in-memory queue holds at most (a ``run.log`` call is one record, a captured step one): past half of
it captured steps are dropped, past all of it every record. ``torchscope.init(max_queue=...)`` changes it."""

KINDS: dict[type, str] = {ScalarLog: "scalars", GraphStep: "steps", ProfileWindow: "profiles"}
"""The kind each record type is counted under when dropped (``scalars`` counts values, the others records)."""

LOW_PRIORITY = (GraphStep,)
"""Dropped first when the queue is over half full: a captured step (graph, tensor statistics) is large and the next
one follows ``every`` steps later; a scalar series with holes is worse."""
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
    """Owns the write connection of one store in one process; see the module docstring.

    ``path`` is the SQLite file behind ``engine`` (None for a server): before each batch the writer checks that the
    file is still the one it opened, and starts over on a new one when it was deleted or replaced (``on_new_file``
    tasks put back what the database must hold, such as the run's row). ``counts_sink(conn, counts)`` stores the
    dropped counts by kind whenever they changed, in the transaction of the next batch that commits.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        flush_interval: float = 0.25,
        max_batch: int = 200_000,
        max_queue: int = DEFAULT_MAX_QUEUE,
        retries: int = 3,
        path: Path | None = None,
    ) -> None:
        if max_queue < 2:
            raise ValueError(f"max_queue must be at least 2, not {max_queue}")
        self.engine = engine
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._crowded = max_queue // 2  # past this, put() takes the slow path that drops low-priority records
        self.retries = retries
        self.dropped_by_kind: dict[str, int] = {}
        """Records dropped so far, by kind (see :data:`KINDS`; ``scalars`` counts values)."""
        self.written_batches = 0
        self.interner = Interner()
        self.periodic: list[tuple[float, Callable[[Connection], None]]] = []
        self._last_periodic: list[float] = []
        self.on_new_file: list[Callable[[Connection], None]] = []
        self.counts_sink: Callable[[Connection, dict[str, int]], None] | None = None
        self._stored_counts: dict[str, int] = {}
        self._held: list[RunUpdate] = []  # run updates of failed batches: small, and written once the database is back
        self._failing: str | None = None
        self._path = path
        self._file = _file_id(path)
        self._where = str(path) if path is not None else unquote(engine.url.render_as_string(hide_password=True))
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
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
        if self._closed or self._queue.qsize() >= self._crowded:
            self._put_crowded(record)
            return
        self._queue.put(record)

    def _put_crowded(self, record: Any) -> None:
        if self._closed:
            self.count_dropped([record])
            self.warn_once("closed", "torchscope: this run is finished; records are being dropped (log before finish)")
            return
        size = self._queue.qsize()
        low = isinstance(record, LOW_PRIORITY)
        if (size < self.max_queue and not low) or isinstance(record, RunUpdate):  # a run's status is never dropped
            self._queue.put(record)
            return
        self.count_dropped([record])
        what = "captured steps (graph and tensor statistics)" if low else "records, scalars too"
        self.warn_once(
            "queue:steps" if low else "queue:all",
            f"torchscope: the writer cannot keep up with {self._where} (queue at {size:,} of "
            f"max_queue={self.max_queue:,} records); training continues, dropping {what}, {self.dropped:,} dropped so far (counted in "
            "store.run(id)); capture less often (watch(every=...)), log less, or raise torchscope.init(max_queue=...)",
        )

    @property
    def dropped(self) -> int:
        """Records dropped so far, all kinds together."""
        return sum(self.dropped_by_kind.values())

    def drop(self, kind: str, count: int = 1) -> None:
        """Count ``count`` of ``kind`` (``scalars``, ``steps``, ``profiles``) as dropped; any thread may call it."""
        with self._lock:
            self.dropped_by_kind[kind] = self.dropped_by_kind.get(kind, 0) + count

    def dropped_counts(self) -> dict[str, int]:
        """A copy of :attr:`dropped_by_kind`."""
        with self._lock:
            return dict(self.dropped_by_kind)

    def count_dropped(self, records: list[Any]) -> None:
        """Count ``records`` as dropped, by kind: a scalar record counts its values."""
        for record in records:
            kind = KINDS.get(type(record), "other")
            self.drop(kind, len(record.values) if kind == "scalars" else 1)

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
        """Write what is queued, then stop the thread. Idempotent.

        Waits as long as the writer keeps committing (a slow database behind many ranks can take minutes to take a
        large backlog; it goes in batches of at most :data:`CLOSING_BATCH` records from here on) and gives up once no
        batch committed for ``timeout`` seconds: the records still queued then are counted as dropped and a warning
        says how many, so a backlog is never lost silently. False when it gave up.
        """
        if self._closed:
            return not self._thread.is_alive()
        self._closed = True
        self.max_batch = min(self.max_batch, CLOSING_BATCH)
        self._queue.put(_Stop())
        self._urgent.set()
        seen, since = self.written_batches, time.monotonic()
        while self._thread.is_alive() and time.monotonic() - since < timeout:
            self._thread.join(min(1.0, timeout))
            if self.written_batches != seen:
                seen, since = self.written_batches, time.monotonic()
        finished = not self._thread.is_alive()
        if finished:
            self.engine.dispose()
        else:
            self._abandon(timeout)
        return finished

    def _abandon(self, timeout: float) -> None:
        """Count what is still queued as dropped (the process may exit with it) and say so once."""
        lost: list[Any] = []
        try:
            while True:
                item = self._queue.get_nowait()
                if not isinstance(item, _CONTROL):
                    lost.append(item)
        except queue.Empty:
            pass
        self._queue.put(_Stop())  # should the database come back before the process ends, the thread stops there
        self.count_dropped(lost)
        self.warn_once(
            "close-timeout", f"torchscope: writing to {self._where} made no progress for {timeout:g} s while the run "
            f"finished; {len(lost):,} queued records were dropped ({self.dropped:,} dropped in all); check the database",
        )  # fmt: skip

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
            if records or due or self._held or self.dropped_counts() != self._stored_counts:
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
        if self._held:
            records[RunUpdate] = self._held + records.get(RunUpdate, [])
            self._held = []
        problem = None
        for attempt in range(self.retries):
            # before every attempt: a batch that failed because the file was deleted under it goes to the new one
            problem = self._check_file() if self._path is not None else None
            if problem is not None:
                break
            counts = self.dropped_counts()
            try:
                with self.engine.begin() as conn:
                    for kind, payloads in records.items():
                        HANDLERS[kind](conn, self.interner, payloads)
                    for task in due:
                        task(conn)
                    if self.counts_sink is not None and counts != self._stored_counts:
                        self.counts_sink(conn, counts)
                self._stored_counts = counts
                self.written_batches += 1
                if self._failing is not None:
                    self._failing = None
                    self.warn_once(
                        "resumed", f"torchscope: writing to {self._where} again; {self.dropped:,} records were dropped "
                        "while it could not (counted in store.run(id))",
                    )  # fmt: skip
                return
            except Exception as exc:  # noqa: BLE001 - any failure must stay inside torchscope
                self.interner = Interner()  # names it interned were rolled back with the batch
                problem = diagnose(exc)
                if attempt + 1 < self.retries:
                    time.sleep(0.05 * 2**attempt)
        assert problem is not None
        key, what, todo = problem
        if not key.startswith("error:"):
            # the database is away, not the records at fault: keep the run's updates for the next batch (an update
            # that fails by itself must not fail every batch after it, so an unexplained error drops them too)
            self._held = records.pop(RunUpdate, [])
        for payloads in records.values():
            self.count_dropped(payloads)
        self._failing = key
        self.warn_once(
            f"write:{key}", f"torchscope: cannot write to {self._where} ({what}); training continues, "
            f"{self.dropped:,} records dropped so far; {todo}, and torchscope resumes writing on its own",
        )  # fmt: skip

    def _check_file(self) -> tuple[str, str, str] | None:
        """None when the SQLite file is (again) one this writer can write; else why not, as :func:`diagnose`."""
        assert self._path is not None
        now = _file_id(self._path)
        if now is not None and self._file is not None and now[:2] == self._file[:2]:
            return None
        self.engine.dispose()  # its connection writes to the file that was there before
        if now is not None and stat.S_ISDIR(now[2]):
            return ("not-a-file", "it was replaced by a directory", "move the directory away")
        try:
            ensure_schema(self.engine, create=True, where=str(self._path))
            with self.engine.begin() as conn:
                for task in self.on_new_file:
                    task(conn)
        except Exception as exc:  # noqa: BLE001
            self.engine.dispose()
            if now is None:  # gone, and it cannot be created again (its folder went too, say)
                return diagnose(exc)
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            return ("replaced", f"it was replaced by a file torchscope cannot use: {detail}", "move that file away")
        self._file = _file_id(self._path)
        self.interner = Interner()
        self._stored_counts = {}  # the row is new: write the counts again
        if now is None:
            self.warn_once(
                "file:recreated", f"torchscope: {self._path} was deleted while this run wrote to it; torchscope "
                "created it again and goes on writing there (what was stored before went with the deleted file)",
            )  # fmt: skip
        else:
            self.warn_once(
                "file:replaced", f"torchscope: {self._path} was replaced by another torchscope database while this "
                "run wrote to it; the run goes on in the new file",
            )  # fmt: skip
        return None

    def _run_call(self, task: Callable[[Connection], Any], box: dict[str, Any]) -> None:
        try:
            with self.engine.begin() as conn:
                box["result"] = task(conn)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc


def _file_id(path: Path | None) -> tuple[int, int, int] | None:
    """``(device, inode, mode)`` of the file at ``path``; None when there is none."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mode)


def diagnose(exc: BaseException) -> tuple[str, str, str]:
    """``(key, what happened, what to do)`` for a failed write: one warning per key, in words a user can act on."""
    detail = str(getattr(exc, "orig", None) or exc)
    text = detail.lower()
    if "disk is full" in text or "no space left" in text or "could not extend" in text or "diskfull" in text:
        return ("disk-full", "disk full", "free space on that disk")
    if "readonly" in text or "read-only" in text:
        return ("read-only", "it is read-only", "make it writable")
    if "locked" in text or "busy" in text:
        return ("locked", "another process holds its lock", "end the process that holds it")
    if "unable to open" in text:
        return ("cannot-open", "the file cannot be opened", "check that its folder exists and is writable")
    if any(word in text for word in ("connection", "connect", "server closed", "terminating", "shutting down")):
        return ("unreachable", "the database server cannot be reached", "start the server again")
    first = detail.splitlines()[0] if detail else ""
    return (f"error:{type(exc).__name__}", f"{type(exc).__name__}: {first}", "see the error")
