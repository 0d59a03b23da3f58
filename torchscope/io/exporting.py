"""``torchscope export``: a run's scalars and histograms as TensorBoard event files
(:mod:`torchscope.io.export_tensorboard`), a profile as a Chrome trace (:mod:`torchscope.io.export_trace`),
profiles as Parquet tables (:mod:`torchscope.io.parquet`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from torchscope.errors import ExportError
from torchscope.io.export_tensorboard import write_tensorboard
from torchscope.io.export_trace import write_chrome_trace
from torchscope.storage.store import Store


def export_run(
    db: str | os.PathLike[str] | None,
    run_id: int,
    tensorboard_dir: str | os.PathLike[str] | None = None,
    chrome_trace: str | os.PathLike[str] | None = None,
    profile_id: int | None = None,
    parquet_dir: str | os.PathLike[str] | None = None,
    replace: bool = False,
) -> Iterator[str]:
    """Export run ``run_id``; yields one printable line per file written.

    ``tensorboard_dir``: its scalars, imported histograms and watched tensors' histograms as an event file
    TensorBoard reads (:mod:`torchscope.io.export_tensorboard`); a folder already holding event files is refused
    unless ``replace``, which deletes them first. ``chrome_trace``: profile ``profile_id`` of the run (default: its first) as Chrome
    trace JSON (Perfetto, chrome://tracing, and ``torchscope import`` read it back with identical events).
    ``parquet_dir``: profile ``profile_id`` (default: every profile of the run, e.g. one per rank) as Parquet
    tables (docs/parquet.md; needs pyarrow).
    """
    with Store(db) as store:
        run = store.run(run_id)
        if tensorboard_dir:
            yield write_tensorboard(store, int(run["id"]), Path(tensorboard_dir), replace=replace)
        if chrome_trace:
            first = _profiles_of_run(store, int(run["id"]), profile_id, "a Chrome trace")[0]
            yield write_chrome_trace(store, first, Path(chrome_trace))
        if parquet_dir:
            from torchscope.io.parquet import export_parquet

            yield from export_parquet(store, _profiles_of_run(store, int(run["id"]), profile_id, "Parquet"), parquet_dir)


def _profiles_of_run(store: Store, run_id: int, profile_id: int | None, what: str) -> list[int]:
    """``[profile_id]`` when it is a profile of the run, else every profile of the run (ExportError when none)."""
    profiles = store.profiles(run_id)
    if profiles.empty:
        raise ExportError(f"run {run_id} has no profile to export as {what}")
    known = [int(x) for x in profiles["id"]]
    if profile_id is None:
        return known
    if int(profile_id) not in known:
        raise ExportError(f"profile {profile_id} is not a profile of run {run_id} (it has {known})")
    return [int(profile_id)]
