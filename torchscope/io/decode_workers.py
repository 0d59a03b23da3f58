"""Decoding trace files in worker processes while the importing process writes: parse and store overlap.

Each file at least :data:`WORKER_MIN_BYTES` long is decoded by its own forked process (at most :data:`MAX_WORKERS` at once,
the next starting when one ends), which sends :class:`EventBatch` es through a bounded queue: a worker that is ahead
waits, so memory stays bounded however many files a directory holds. Smaller files, and every file when the
importing process runs other threads (where forking is unsafe), are decoded in this process.
Workers ignore Ctrl-C (the importing process rolls back and stops them); an error in a worker is raised here as the
:class:`TraceImportError` it was.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from torchscope.errors import TorchscopeError, TraceImportError
from torchscope.io.kineto import stream_trace
from torchscope.storage.profile.records import EventBatch, TraceMeta

WORKER_MIN_BYTES = 4 << 20
"""Files smaller than this are decoded in the importing process (a worker's start-up would cost more)."""
MAX_WORKERS = max(1, min(8, (os.cpu_count() or 2) - 1))
QUEUE_BATCHES = 3
_POLL_S = 0.5


def _work(path: str, out: Any) -> None:
    """A worker's body: decode ``path`` onto ``out`` as ("read", bytes) / ("item", batch or meta) / ("error", exc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # this process only decodes: no cycles to collect (see torchscope.io.collector)
    try:
        for item in stream_trace(path, on_read=lambda done, _total: out.put(("read", done))):
            out.put(("item", item))
    except TorchscopeError as exc:
        out.put(("error", TraceImportError(str(exc))))
    except MemoryError:
        out.put(("error", TraceImportError(f"{path}: not enough memory to decode it")))
    except Exception as exc:  # anything else is a bug in torchscope: report it, never hang the importer
        out.put(("error", TraceImportError(f"{path}: decoding failed ({type(exc).__name__}: {exc})")))
    out.close()
    out.join_thread()


class Decoders:
    """The decoded contents of ``files``, read in order with :meth:`items`; use as a context manager."""

    def __init__(self, files: list[Path]) -> None:
        self.files = list(files)
        # Workers are forked: a fork starts at once and runs nothing of the caller's. With other threads alive (a
        # live run in the same process) a fork is not safe, and "spawn" would re-run the caller's script (one
        # without an `if __name__ == "__main__"` guard would start over): then files are decoded here instead.
        forkable = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
        self._pending = [f for f in self.files if forkable and f.stat().st_size >= WORKER_MIN_BYTES]
        self._running: dict[Path, tuple[Any, Any]] = {}
        self._read_done: list[int] = []
        self._ctx = multiprocessing.get_context("fork") if forkable else None

    def __enter__(self) -> Decoders:
        self._start_more()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for proc, _ in self._running.values():
            proc.terminate()
        for proc, _ in self._running.values():
            proc.join(5)
        self._running.clear()

    def _start_more(self) -> None:
        while self._pending and len(self._running) < MAX_WORKERS:
            file = self._pending.pop(0)
            assert self._ctx is not None
            out = self._ctx.Queue(QUEUE_BATCHES)
            proc = self._ctx.Process(target=_work, args=(str(file), out), daemon=True, name=f"decode {file.name}")
            proc.start()
            self._running[file] = (proc, out)

    def in_worker(self, file: Path) -> bool:
        """Whether ``file`` is (or was) decoded by a worker process rather than this one."""
        return file in self._running or file in self._pending

    def items(self, file: Path) -> Iterator[EventBatch | TraceMeta | int]:
        """``file`` decoded: event batches, the bytes of the file read so far (ints), and last its meta."""
        if file not in self._running:
            if file in self._pending:
                self._pending.remove(file)
            for item in stream_trace(str(file), on_read=lambda done, _total: self._read_done.append(done)):
                yield item
                yield from self._read_done
                self._read_done.clear()
            return
        proc, out = self._running[file]
        try:
            while True:
                try:
                    tag, *value = out.get(timeout=_POLL_S)
                except queue.Empty:
                    if not proc.is_alive():
                        raise TraceImportError(
                            f"{file}: the process decoding it ended unexpectedly (exit code {proc.exitcode}); "
                            "if the machine ran out of memory, import fewer files at once"
                        ) from None
                    continue
                if tag == "error":
                    raise value[0]
                yield value[0]
                if tag == "item" and isinstance(value[0], TraceMeta):
                    return
        finally:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
            del self._running[file]
            self._start_more()
