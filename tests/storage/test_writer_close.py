"""``finish()`` with a backlog: the writer waits while it makes progress, and what it cannot write is counted."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import pytest

import torchscope
from torchscope.storage import handlers, writer as writer_module
from torchscope.storage.runs.records import ScalarLog


def test_a_backlog_slower_than_the_timeout_is_written_whole_while_batches_keep_committing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = torchscope.init("slow", db=db_path, system_metrics=False)
    run.flush()
    write = handlers.HANDLERS[ScalarLog]
    calls = []

    def slow(conn, interner, logs):  # type: ignore[no-untyped-def]
        calls.append(len(logs))
        threading.Event().wait(0.1)  # a slow database: every batch takes 0.1 s
        write(conn, interner, logs)

    monkeypatch.setitem(handlers.HANDLERS, ScalarLog, slow)
    monkeypatch.setattr(writer_module, "CLOSING_BATCH", 2)
    monkeypatch.setattr(run._writer, "_last_write", float("inf"))  # hold the batch back until close: all queued
    for step in range(20):
        run.log({"loss": float(step)}, step=step)
    run.finish(timeout=0.5)  # 10 batches of 2: 1 s in all, each well inside 0.5 s
    assert not run._writer._thread.is_alive()
    assert sum(calls) == 20 and max(calls) <= 2
    store = torchscope.open(db_path)
    assert store.scalars(run.id)["step"].tolist() == list(range(20))
    assert store.run(run.id)["dropped"] == 0


def test_a_writer_stuck_at_finish_gives_up_after_the_timeout_and_counts_what_was_queued(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = torchscope.init("stuck", db=db_path, system_metrics=False)
    run.flush()
    release, entered = threading.Event(), threading.Event()

    def stuck(conn, interner, logs):  # type: ignore[no-untyped-def]
        entered.set()
        release.wait(30)  # a database that hangs (a lock never released, a server that stopped answering)

    monkeypatch.setitem(handlers.HANDLERS, ScalarLog, stuck)
    run.log({"loss": 0.0}, step=0)
    run.flush(timeout=0.01)
    assert entered.wait(10)
    for step in range(1, 8):
        run.log({"a": 1.0, "b": 2.0}, step=step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.finish(timeout=0.3)
    assert run._writer._thread.is_alive()  # still stuck: finish gave up on it
    # the 7 calls queued behind the stuck batch (2 values each) and the run's final status update
    assert run.dropped_by_kind == {"scalars": 14, "other": 1}
    messages = [str(w.message) for w in caught if issubclass(w.category, torchscope.TorchscopeWarning)]
    assert len(messages) == 1
    assert "made no progress for 0.3 s while the run finished; 8 queued records were dropped (15 dropped in all)" in (
        messages[0]
    )
    release.set()  # the database answers again: the thread finishes its batch and stops, writing nothing more
    run._writer._thread.join(10)
    assert not run._writer._thread.is_alive()
