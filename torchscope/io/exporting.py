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
    unless ``replace``, which deletes them first. ``chrome_trace``: profile ``profile_id`` of the run (default: its
    first) as Chrome trace JSON (Perfetto, chrome://tracing, HTA, and ``torchscope import`` read it back with
    identical events); gzip when the name ends in ``.gz``. When the run has profiles of several ranks (and
    ``profile_id`` is None), or ``chrome_trace`` is a directory (exists as one or ends in ``/``), it is a directory
    that gets one ``<worker>.<span>.pt.trace.json.gz`` file per profile, as ``tensorboard_trace_handler`` writes
    them: the layout HTA's ``TraceAnalysis(trace_dir=...)`` and TensorBoard's profile plugin read.
    ``parquet_dir``: profile ``profile_id`` (default: every profile of the run, e.g. one per rank) as Parquet
    tables (docs/parquet.md; needs pyarrow).
    """
    with Store(db) as store:
        run = store.run(run_id)
        if tensorboard_dir:
            yield write_tensorboard(store, int(run["id"]), Path(tensorboard_dir), replace=replace)
        if chrome_trace:
            chosen = _profiles_of_run(store, int(run["id"]), profile_id, "a Chrome trace")
            yield from _chrome_traces(store, chosen, chrome_trace, profile_id is not None)
        if parquet_dir:
            from torchscope.io.parquet import export_parquet

            yield from export_parquet(store, _profiles_of_run(store, int(run["id"]), profile_id, "Parquet"), parquet_dir)


def _chrome_traces(store: Store, profile_ids: list[int], target: str | os.PathLike[str], chosen: bool) -> Iterator[str]:
    """Write the profiles as Chrome traces: the first to ``target``, or each into the directory ``target``."""
    path = Path(target)
    ranks = {store.profile(p)["rank"] for p in profile_ids}
    several_ranks = len(profile_ids) > 1 and len(ranks) == len(profile_ids) and None not in ranks
    as_directory = path.is_dir() or str(target).endswith(("/", os.sep)) or (several_ranks and not chosen)
    if not as_directory:
        yield write_chrome_trace(store, profile_ids[0], path)
        return
    if path.exists() and not path.is_dir():
        raise ExportError(f"{path} is a file: the run's {len(profile_ids)} profiles need a directory, one file each")
    metas = [store.profile(p) for p in profile_ids]
    span = max(0, min(int(m["start_ns"]) for m in metas) // 1_000_000)  # one span: the ranks of one window
    for meta in metas:
        worker = f"rank{meta['rank']}" if meta["rank"] is not None else f"profile{meta['id']}"
        yield write_chrome_trace(store, int(meta["id"]), path / f"{worker}.{span}.pt.trace.json.gz")


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
