"""Records of the compile subject: what ``torch.compile`` did while a watched model ran.

Made by ``capture/compile_record.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class CompileEvent(NamedTuple):
    """One frame compiled by Dynamo: ``kind`` is ``compile`` (its first) or ``recompile`` (a guard failed)."""

    run_id: int
    model: str  # the watch's name
    step: int
    kind: str  # compile | recompile
    compile_id: str  # Dynamo's "frame/compile", e.g. "0/1"
    frame: str  # the compiled function's name (a resume function after a graph break: torch_dynamo_resume_in_...)
    file: str | None
    line: int | None  # the function's first line
    module: str | None  # path of the watched module whose code the frame is ('' is the root)
    reason: str | None  # recompile: the guard that failed
    duration_ns: int  # the whole frame's compile time
    graph_ops: int  # ops in the FX graph Dynamo captured for the frame
    wall_time: int


class GraphBreak(NamedTuple):
    """A graph break: Dynamo stopped tracing at ``file:line`` (user code) for ``reason``; the rest ran eagerly."""

    run_id: int
    model: str
    step: int
    compile_id: str
    reason: str  # one line: what Dynamo could not trace
    detail: str  # Dynamo's whole message (explanation, hints, user stack)
    file: str | None
    line: int | None
    module: str | None  # path of the watched module whose forward holds the line ('' is the root)
    module_class: str | None
    wall_time: int


class FxNode(NamedTuple):
    """A node of an FX graph Dynamo captured; ``inputs`` are ids of nodes of the same graph (JSON list)."""

    id: int
    name: str
    op: str  # placeholder | call_function | call_method | call_module | get_attr | output
    target: str  # the function or method name, e.g. linear, relu, mul
    module: str | None  # the watched module path the node was traced in (from nn_module_stack)
    file: str | None
    line: int | None
    inputs: str  # JSON list of node ids


class FxGraph(NamedTuple):
    """The FX graph Dynamo captured for one compiled frame."""

    run_id: int
    model: str
    step: int
    compile_id: str
    module: str | None  # the watched module whose frame this is
    nodes: Sequence[FxNode]
    wall_time: int


class CompiledKernel(NamedTuple):
    """A kernel (or extern call) of the code Inductor generated for a compiled frame's forward, in call order, with
    the FX nodes it computes (``Topologically Sorted Source Nodes``) and their module."""

    run_id: int
    model: str
    compile_id: str
    seq: int  # position among the frame's calls
    kernel: str  # cpp_fused_mul_relu_0, triton_poi_fused_..., or the extern op (addmm)
    kind: str  # cpp | triton | extern
    profiler_name: str  # the name a profile shows it under: aten::addmm for extern calls, else ``kernel``
    module: str | None  # the module all its source nodes share (their common prefix)
    source_nodes: str  # JSON list of FX node names
    aten: str  # JSON list of the ATen ops it covers
