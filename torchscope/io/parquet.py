"""``torchscope export RUN --parquet DIR``: profiles as Hive-partitioned Parquet tables for DuckDB, Spark, pandas.

Layout (every column, type and unit in docs/parquet.md)::

    DIR/_torchscope_export.json                      which database the profiles came from, the format version
    DIR/<table>/profile_id=<id>/part-0.parquet       table = profiles | events | kernels | operators | steps

A profile is written into a staging folder under ``DIR`` first and moved into place table by table once every file
is complete, so a reader never sees a half-written file; exporting a profile again *replaces* its partitions (the
summary line says so), it never appends a second copy. ``DIR`` must be new, empty, or an export of the same
database: profile ids are per database, so mixing two databases in one folder is refused.

Events are streamed: read from the store ``chunk_rows`` at a time (``Store.iter_events``), gathered into row groups
of ``row_group_rows``, and written, so a profile of ten million events never sits in memory whole.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from torchscope.errors import ExportError
from torchscope.storage.store import Store

FORMAT_VERSION = 1
MARKER = "_torchscope_export.json"
TABLES = ("profiles", "events", "kernels", "operators", "steps")
ROW_GROUP_ROWS = 1_000_000
CHUNK_ROWS = 100_000
_INSTALL_HINT = "writing Parquet needs pyarrow: pip install 'torchscope[parquet]'"


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401  (the writer lives in the submodule)
    except ImportError as exc:
        raise ExportError(_INSTALL_HINT) from exc
    return pyarrow


def _schemas(pa: Any) -> dict[str, Any]:
    """The Arrow schema of each table (docs/parquet.md describes every column)."""
    i64, i32, f64, s = pa.int64(), pa.int32(), pa.float64(), pa.string()
    return {
        "profiles": pa.schema([
            ("run_id", i64), ("run_name", s), ("name", s), ("source", s), ("path", s), ("rank", i32),
            ("start_ns", i64), ("duration_ns", i64), ("step_first", i64), ("step_last", i64), ("step_count", i64),
            ("event_count", i64), ("kernel_count", i64), ("device_name", s), ("devices", s), ("created_at", i64),
        ]),
        "events": pa.schema([
            ("event_id", i64), ("rank", i32), ("lane_id", i64), ("pid", s), ("tid", s), ("lane_kind", s),
            ("device", i32), ("stream", i64), ("lane_label", s), ("kind", s), ("name", s), ("start_ns", i64),
            ("dur_ns", i64), ("parent_id", i64), ("correlation", i64), ("link_id", i64), ("external_id", i64),
            ("shapes", s), ("category", s),
        ]),
        "kernels": pa.schema([
            ("name", s), ("calls", i64), ("total_ns", i64), ("mean_ns", f64), ("min_ns", i64), ("max_ns", i64),
            ("share", f64), ("tensor_cores", pa.bool_()), ("mean_occupancy", f64), ("mean_registers", f64),
            ("mean_blocks_per_sm", f64),
        ]),
        "operators": pa.schema([
            ("name", s), ("calls", i64), ("host_total_ns", i64), ("host_self_ns", i64), ("device_total_ns", i64),
            ("device_self_ns", i64), ("host_mean_ns", f64), ("device_mean_ns", f64),
        ]),
        "steps": pa.schema([
            ("step", i64), ("start_ns", i64), ("end_ns", i64), ("wall_ns", i64), ("kernel_ns", i64),
            ("communication_ns", i64), ("memcpy_ns", i64), ("memset_ns", i64), ("runtime_ns", i64),
            ("dataloader_ns", i64), ("cpu_ns", i64), ("idle_ns", i64),
        ]),
    }  # fmt: skip


def export_parquet(
    store: Store,
    profile_ids: Sequence[int],
    out_dir: str | os.PathLike[str],
    *,
    chunk_rows: int = CHUNK_ROWS,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> Iterator[str]:
    """Write each profile of ``profile_ids`` under ``out_dir`` (layout above); yields one summary line per profile.

    Raises :class:`ExportError` without pyarrow, when ``out_dir`` holds something other than an export of this
    database, and :class:`NotFoundError` for an unknown profile (before anything is written).
    """
    pa = _pyarrow()
    root = Path(out_dir)
    for profile_id in profile_ids:
        store.profile(int(profile_id))  # an unknown id fails before any file is written
    _claim(root, store.url)
    schemas = _schemas(pa)
    for profile_id in profile_ids:
        staging = root / f".staging-{profile_id}-{uuid.uuid4().hex[:8]}"
        try:
            events = _write_profile(pa, schemas, store, int(profile_id), staging, chunk_rows, row_group_rows)
            replaced = _move_into_place(staging, root, int(profile_id))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        verb = "replaced" if replaced else "wrote"
        yield f"{verb} profile {profile_id} ({events} events) as Parquet in {root}"


def _claim(root: Path, url: str) -> None:
    """Make ``root`` an export folder of the database at ``url``, or refuse one that is something else."""
    database = _without_password(url)
    marker = root / MARKER
    if marker.is_file():
        held = orjson.loads(marker.read_bytes()).get("database")
        if held != database:
            raise ExportError(
                f"{root} holds profiles exported from another database ({held}); profile ids are per database, "
                "so export into another directory"
            )
        return
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ExportError(f"{root} exists and is not a torchscope Parquet export; choose a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(orjson.dumps({"format": FORMAT_VERSION, "database": database, "tables": list(TABLES)}))


def _without_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _write_profile(
    pa: Any, schemas: dict[str, Any], store: Store, profile_id: int, staging: Path, chunk_rows: int, row_group_rows: int
) -> int:
    """Write every table of one profile under ``staging/<table>/part-0.parquet``; returns the number of events."""
    meta = store.profile(profile_id)
    run = store.run(int(meta["run_id"]))
    profile = pd.DataFrame([{**meta, "run_name": run["name"]}])
    frames = {
        "profiles": profile,
        "kernels": store.kernel_table(profile_id),
        "operators": store.op_table(profile_id),
        "steps": store.step_breakdown(profile_id).rename(columns={"start": "start_ns", "end": "end_ns"}),
    }
    steps = frames["steps"]  # step bounds are stored relative to the profile's start; the export is absolute
    frames["steps"] = steps.assign(start_ns=steps["start_ns"] + meta["start_ns"], end_ns=steps["end_ns"] + meta["start_ns"])
    for table, frame in frames.items():
        _write_frame(pa, schemas[table], frame, _part(staging, table))
    return _write_events(pa, schemas["events"], store, meta, _part(staging, "events"), chunk_rows, row_group_rows)


def _part(staging: Path, table: str) -> Path:
    folder = staging / table
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "part-0.parquet"


def _write_frame(pa: Any, schema: Any, frame: pd.DataFrame, path: Path) -> None:
    table = _arrow_table(pa, schema, frame)
    pa.parquet.write_table(table, path)


def _arrow_table(pa: Any, schema: Any, frame: pd.DataFrame) -> Any:
    """``frame``'s columns named in ``schema`` as an Arrow table of exactly that schema (NaN/None become null)."""
    arrays = [pa.array(frame[field.name], type=field.type, from_pandas=True) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _write_events(
    pa: Any, schema: Any, store: Store, meta: dict[str, Any], path: Path, chunk_rows: int, row_group_rows: int
) -> int:
    """Stream the profile's events into ``path`` in row groups of ``row_group_rows``; returns how many."""
    lanes = store.lanes(int(meta["id"])).set_index("id")
    lane_cols = lanes[["pid", "tid", "kind", "device", "stream", "label"]].rename(
        columns={"kind": "lane_kind", "label": "lane_label"}
    )
    start_ns = int(meta["start_ns"])
    rank = meta["rank"]
    pending: list[Any] = []
    pending_rows = total = 0
    with pa.parquet.ParquetWriter(path, schema) as writer:
        for chunk in store.iter_events(int(meta["id"]), chunk_rows):
            is_other = chunk["kind"] == "other"
            frame = chunk.join(lane_cols, on="lane_id").assign(
                event_id=chunk["id"],
                rank=rank,
                start_ns=chunk["start"] + start_ns,
                dur_ns=chunk["dur"],
                parent_id=chunk["parent"],
                correlation=chunk["corr"],
                link_id=chunk["link"],
                external_id=chunk["ext_id"],
                shapes=chunk["info"].where(~is_other, None),
                category=chunk["info"].where(is_other, None),
            )
            pending.append(_arrow_table(pa, schema, frame))
            pending_rows += len(frame)
            total += len(frame)
            while pending_rows >= row_group_rows:
                whole = pa.concat_tables(pending)
                writer.write_table(whole.slice(0, row_group_rows), row_group_size=row_group_rows)
                rest = whole.slice(row_group_rows)
                pending, pending_rows = ([rest] if len(rest) else []), len(rest)
        if pending_rows:
            writer.write_table(pa.concat_tables(pending), row_group_size=row_group_rows)
    return total


def _move_into_place(staging: Path, root: Path, profile_id: int) -> bool:
    """Move each staged table to ``root/<table>/profile_id=<id>``, replacing an earlier export; True if it did."""
    replaced = False
    for table in TABLES:
        target = root / table / f"profile_id={profile_id}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            old = staging / f"old-{table}"
            target.rename(old)  # out of the readers' way first; removed with the staging folder
            replaced = True
        (staging / table).rename(target)
    return replaced
