"""``torchscope import``: Kineto / Chrome traces and TensorBoard logs into the store, in one transaction.

What a path holds is detected from its contents: ``.json``/``.json.gz`` files (one profile each; a
``tensorboard_trace_handler`` directory gives one profile per worker/rank file) and TensorBoard event files (one run
per log directory, as TensorBoard itself shows them). Everything is written in one transaction, so a file that is
truncated, corrupt or not a trace leaves the database as it was.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from torchscope.errors import TorchscopeError, TraceImportError
from torchscope.storage.bulk import Interner
from torchscope.storage.runs.span import set_run_span
from torchscope.storage.runs.writes import create_run
from torchscope.io.collector import collector_paused
from torchscope.io.decode_workers import Decoders
from torchscope.io.malloc import release_free_memory
from torchscope.storage.transaction import import_transaction
from torchscope.storage.profile.records import EventBatch, TraceMeta
from torchscope.storage.profile.writes import ProfileBuilder
from torchscope.storage.summaries import store_summaries

TRACE_SUFFIXES = (".json", ".json.gz")
PLUGIN_TRACE_SUFFIXES = (".pt.trace.json", ".pt.trace.json.gz")
EVENTS_MARKER = "tfevents"


@dataclass
class ImportResult:
    """What one import stored: runs, their profiles, scalars, histograms, graphs, hparam metrics, texts and images;
    and what it did not (``skipped``: TensorBoard values by kind, e.g. ``run_metadata``, ``audio``, a plugin)."""

    runs: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name"} (+ "hparams": how many, from TB)
    profiles: list[dict[str, Any]] = field(default_factory=list)  # insert_profile's summaries (+ "file")
    scalars: int = 0
    histograms: int = 0
    graphs: list[dict[str, Any]] = field(default_factory=list)  # {"run_id", "tag", "kind", "nodes"}
    metrics: int = 0
    texts: int = 0
    images: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def run_id(self) -> int:
        """The id of the first run the import created."""
        return int(self.runs[0]["id"])

    def summary(self) -> str:
        """A few printable lines: what was imported into which run."""
        lines = []
        for run in self.runs:
            hparams = f": {run['hparams']} hparams" if run.get("hparams") else ""
            lines.append(f"imported run {run['id']} ({run['name']}){hparams}")
        for p in self.profiles:
            lines.append(
                f"  profile {p['id']} from {p['file']}: {p['events']} events, {p['kernels']} kernels, "
                f"{p['steps']} steps, {p['lanes']} lanes (decoded by {p['decoded_by']})"
            )
        if self.scalars or self.histograms or self.metrics or self.texts or self.images:
            lines.append(f"  {self.scalars} scalars, {self.histograms} histograms, {self.metrics} hparam metrics, "
                         f"{self.texts} texts, {self.images} images")  # fmt: skip
        if self.skipped:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items()))
            lines.append(f"  not imported (torchscope does not keep these): {kinds}")
        for g in self.graphs:
            lines.append(f"  graph {g['tag'] or '(graph_def)'} ({g['kind']}): {g['nodes']} nodes")
        lines.append(f"  in {self.seconds:.2f} s")
        return "\n".join(lines)


def classify(path: Path) -> tuple[list[Path], list[Path]]:
    """The trace files and the TensorBoard event files under ``path`` (a file or a directory)."""
    if not path.exists():
        raise TraceImportError(f"{path} does not exist")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    events = [p for p in files if EVENTS_MARKER in p.name]
    traces = [p for p in files if p.name.endswith(TRACE_SUFFIXES)]
    if events and path.is_dir():  # a TensorBoard log dir: only the profiler plugin's traces, not any JSON in it
        traces = [p for p in traces if p.name.endswith(PLUGIN_TRACE_SUFFIXES)]
    if not traces and not events:
        if path.is_file():
            raise TraceImportError(
                f"{path} is neither a Chrome/Kineto trace (.json, .json.gz) nor a TensorBoard event file"
            )
        raise TraceImportError(f"{path} holds no trace files (.json, .json.gz) and no TensorBoard event files")
    return traces, events


def import_path(
    db: str | os.PathLike[str] | None, path: str | os.PathLike[str], name: str | None = None, progress: bool = False
) -> ImportResult:
    """Import the trace(s) or TensorBoard log(s) at ``path`` into the store ``db`` as new runs (source "import").

    Raises :class:`TraceImportError` (and stores nothing) when anything under ``path`` cannot be imported.
    """
    started = time.perf_counter()
    root = Path(path).expanduser()
    traces, event_files = classify(root)
    base_name = name or root.name.split(".")[0] or str(root)
    result = ImportResult()
    try:
        with collector_paused(), import_transaction(db, str(root)) as conn:
            interner = Interner()
            if traces:
                run_id = create_run(
                    conn, name=base_name, config={"imported_from": str(root)}, started_at=time.time_ns(),
                    source="import", status="finished",
                )  # fmt: skip
                result.runs.append({"id": run_id, "name": base_name})
                _import_traces(conn, interner, run_id, traces, root, progress, result)
                spans = [(p["start_ns"], p["start_ns"] + p["duration_ns"]) for p in result.profiles]
                set_run_span(conn, interner, run_id, min(s for s, _ in spans), max(e for _, e in spans))
            if event_files:
                from torchscope.io.tensorboard import import_event_files

                import_event_files(conn, interner, root, event_files, base_name, result, progress)
    except TorchscopeError:
        raise
    except MemoryError as exc:
        raise TraceImportError(f"{root}: not enough memory to import it") from exc
    except OSError as exc:
        raise TraceImportError(f"{root}: cannot read it ({exc})") from exc
    result.seconds = time.perf_counter() - started
    return result


def _import_traces(conn: Any, interner: Interner, run_id: int, files: list[Path], root: Path, progress: bool,
                   result: ImportResult) -> None:  # fmt: skip
    """Store each trace file as a profile of ``run_id``; files are decoded in parallel processes (see
    :class:`~torchscope.io.decode_workers.Decoders`) while this process writes them one after the other."""
    with Decoders(files) as decoders:
        for file in files:
            label = str(file.relative_to(root)) if file != root else file.name
            profile_name = label.removesuffix(".gz").removesuffix(".json").removesuffix(".pt.trace")
            builder = ProfileBuilder(conn, interner, run_id, name=profile_name, source="import", path=str(file),
                                     keep_frames=True, between_phases=release_free_memory)  # fmt: skip
            decoded_by = "a worker process" if decoders.in_worker(file) else "this process"
            meta = None
            with tqdm(total=file.stat().st_size, desc=f"import {file.name}", unit="B", unit_scale=True,
                      disable=not progress, leave=False) as bar:  # fmt: skip
                for item in decoders.items(file):
                    if isinstance(item, TraceMeta):
                        meta = item
                    elif isinstance(item, EventBatch):
                        builder.add(item)
                        bar.set_postfix_str(f"{builder.n:,} events", refresh=False)
                    else:  # bytes of the file read so far
                        bar.update(item - bar.n)
                bar.set_postfix_str(f"{builder.n:,} events: storing")
                assert meta is not None  # the decoder ends every file with its meta, or raises
                summary = builder.finish(meta)
                frames = builder.frames
                del builder
                bar.set_postfix_str(f"{summary['events']:,} events: summaries")
                release_free_memory()  # what storing the events freed, before the summaries' temporaries
                store_summaries(conn, summary["id"], frames, between=release_free_memory)
                del frames
            summary["file"] = label
            summary["decoded_by"] = decoded_by
            result.profiles.append(summary)
