"""Which function stores each type of record the writer is given: one handler per record type.

A handler is ``handler(conn, interner, records)``: it gets every record of its type (a NamedTuple or frozen
dataclass of a subject's ``records.py``) from one writer batch and inserts them inside the batch's transaction.
The table is written out here, not filled in by decorators as modules happen to be imported: one place lists every
record the store accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from torchscope.storage.bulk import Interner
from torchscope.storage.compile.records import CompiledKernel, CompileEvent, FxGraph, GraphBreak
from torchscope.storage.compile.writes import (
    write_compile_events, write_compiled_kernels, write_fx_graphs, write_graph_breaks,
)  # fmt: skip
from torchscope.storage.graph.records import GraphStep
from torchscope.storage.graph.writes import write_graph
from torchscope.storage.profile.live_writes import write_profile_windows
from torchscope.storage.profile.records import ProfileWindow
from torchscope.storage.runs.records import RunUpdate, ScalarLog
from torchscope.storage.runs.scalar_writes import write_scalars
from torchscope.storage.runs.writes import write_run_updates
from torchscope.storage.tensorboard.records import HistogramLog, ModelGraph
from torchscope.storage.tensorboard.writes import write_histogram_logs, write_model_graphs

Handler = Callable[[Connection, Interner, list[Any]], None]

HANDLERS: dict[type, Handler] = {
    ScalarLog: write_scalars,
    RunUpdate: write_run_updates,
    GraphStep: write_graph,
    ProfileWindow: write_profile_windows,
    CompileEvent: write_compile_events,
    GraphBreak: write_graph_breaks,
    FxGraph: write_fx_graphs,
    CompiledKernel: write_compiled_kernels,
    HistogramLog: write_histogram_logs,
    ModelGraph: write_model_graphs,
}
"""The handler of each record type (``Writer.put`` accepts exactly these)."""
