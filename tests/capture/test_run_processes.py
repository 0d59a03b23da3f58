"""Runs written by real training processes: killed mid-run, and two writing one SQLite file at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torchscope
from procs import PATH as PROCS_PATH
from procs import value_at

PROCS = str(PROCS_PATH)


def _env() -> dict[str, str]:
    # keep the caller's path first: a worktree run imports its own torchscope, not the installed one
    path = [os.environ.get("PYTHONPATH"), str(PROCS_PATH.parent)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}


def test_sigkilled_run_keeps_what_it_logged_and_reads_interrupted(db_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, PROCS, "until-killed", str(db_path)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    assert proc.stdout is not None
    run_id = int(proc.stdout.readline().split()[1])
    logged: list[tuple[int, float]] = []
    first = None
    for line in proc.stdout:
        step, when = line.split()
        logged.append((int(step), float(when)))
        first = first or float(when)
        # at least 2.5 s of logging, and over 100 steps logged a second before the last one (a busy machine logs
        # fewer steps per second: wait for the count instead of a fixed time)
        if float(when) - first > 2.5 and sum(w < float(when) - 1.0 for _, w in logged) > 100:
            break
    killed_at = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    store = torchscope.open(db_path)
    stored = dict(zip(store.scalars(run_id)["step"], store.scalars(run_id)["value"]))
    old_enough = [step for step, when in logged if when < killed_at - 1.0]
    assert len(old_enough) > 100
    missing = [step for step in old_enough if step not in stored]
    assert missing == []
    assert all(stored[step] == value_at(step) for step in old_enough)

    deadline = time.monotonic() + 30
    while store.run(run_id)["status"] != "interrupted" and time.monotonic() < deadline:
        time.sleep(0.2)
    run = store.run(run_id)
    assert run["status"] == "interrupted"
    assert run["ended_at"] is not None and run["ended_at"] <= killed_at * 1e9


def test_two_processes_log_into_one_sqlite_file_without_lock_errors(db_path: Path) -> None:
    torchscope.init(name="creator", db=db_path).finish()  # both children open an existing store
    steps = 4000
    procs = [
        subprocess.Popen(
            [sys.executable, PROCS, "steps", str(db_path), name, str(steps)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        )  # fmt: skip
        for name in ("left", "right")
    ]
    store = torchscope.open(db_path)
    while any(p.poll() is None for p in procs):
        store.runs()  # a reader polling alongside the two writers, as the dashboard does
    outputs = [p.communicate() for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "locked" not in err and "torchscope:" not in err, err
        assert out.strip() == "dropped 0"
    runs = store.runs().set_index("name")
    for name in ("left", "right"):
        run_id = int(runs.loc[name, "id"])
        assert runs.loc[name, "status"] == "finished"
        frame = store.scalars(run_id)
        assert len(frame) == steps * 4
        expected = {(f"t{i}", s): value_at(s, i) for s in range(steps) for i in range(4)}
        assert {(t, s): v for t, s, v in zip(frame["tag"], frame["step"], frame["value"])} == expected


def test_interpreter_exit_flushes_and_finishes_open_runs(db_path: Path) -> None:
    clean = subprocess.run([sys.executable, PROCS, "exit", str(db_path), "clean"], env=_env(), capture_output=True)
    crash = subprocess.run([sys.executable, PROCS, "exit", str(db_path), "raise"], env=_env(), capture_output=True, text=True)
    assert clean.returncode == 0
    assert crash.returncode == 1 and "training blew up" in crash.stderr
    store = torchscope.open(db_path)
    runs = store.runs().set_index("name")
    assert runs.loc["exit-clean", "status"] == "finished"
    assert runs.loc["exit-raise", "status"] == "failed"
    assert runs.loc["exit-raise", "error"] == "RuntimeError: training blew up"
    for name in ("exit-clean", "exit-raise"):
        frame = store.scalars(int(runs.loc[name, "id"]))
        assert frame["value"].tolist() == [value_at(step) for step in range(1000)]
