"""What ``torch.compile`` did while a watched model ran: compiled frames, recompiles, graph breaks, FX graphs.

Dynamo reports its work on the structured-trace logger ``torch.__trace`` (what ``TORCH_TRACE`` and tlparse read).
While at least one watch is live, :class:`CompileRecorder` is a handler on that logger and keeps four of its
entries: ``recompile_reasons`` (the guard that failed), ``dynamo_graph_break_reason`` (the user's file and line,
Dynamo's explanation), ``dynamo_output_graph`` (the FX ``GraphModule`` Dynamo hands to the backend; read from the
compiling frame, for its nodes' ``nn_module_stack``) and ``compilation_metrics`` (the frame, its compile time, op
count), which closes a compiled frame: its records then go to the writer of the watch whose model the frame's code
belongs to. Nothing runs unless Dynamo compiles. Any change in torch's internals degrades to one
:class:`~torchscope.errors.TorchscopeWarning`, never to an exception in training.

:func:`force_eager` is how captured steps stay eager: a step that is captured runs with
``torch.compiler.set_stance("force_eager")`` so the graph record sees real ops, not Dynamo's tracing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch

from torchscope.capture.inductor_code import common_module, parse_kernels
from torchscope.storage.compile.records import CompiledKernel, CompileEvent, FxGraph, FxNode, GraphBreak
from torchscope.user_code import warn_once

TRACE_LOGGER = "torch.__trace"
_BREAK_HEADER = re.compile(r"Graph break in user code at (.*):(\d+)\n")
_FRAME_LINE = re.compile(r'File "([^"]+)", line (\d+)')
_COMPILE_ID_PREFIX = re.compile(r"^\s*\d+/\d+:\s*")
_MODULE_KEY = re.compile(r"\._modules\[['\"]([^'\"]+)['\"]\]|\[['\"]([^'\"]+)['\"]\]|\[(\d+)\]")
DETAIL_CHARS = 4000
MAX_OPEN_FRAMES = 64
"""Compiles whose ``compilation_metrics`` has not come yet that are kept (a failed compile may never send it)."""
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
"""torchscope's package folder: Dynamo also compiles our global module hooks when a module call graph-breaks;
those frames are ours, not the user's, and are not recorded."""


def _nothing() -> None:
    pass


def force_eager() -> Callable[[], None] | None:
    """Make compiled code run eagerly from now on; returns the function that restores the previous stance, or None
    when that cannot be done here (inside a region Dynamo is running, or a torch without ``set_stance``).

    Without ``torch._dynamo`` imported nothing can be compiled: nothing to do, and no second spent importing it."""
    if "torch._dynamo" not in sys.modules:
        return _nothing
    try:
        stance = torch.compiler.set_stance("force_eager")
    except Exception:  # noqa: BLE001 - inside a compiled region, or torch changed: the step is not captured
        return None
    return lambda: stance.__exit__(None, None, None)


def module_path(path: str) -> str:
    """A module path of the watched model with ``torch.compile`` wrappers left out (``a._orig_mod.l`` -> ``a.l``)."""
    return ".".join(part for part in path.split(".") if part != "_orig_mod")


class ModuleIndex:
    """Which module of a model a source line belongs to: the methods of each submodule's class, by file and lines."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.spans: list[tuple[str, int, int, str, str]] = []  # file, first, last, path, class
        seen: set[tuple[str, str]] = set()
        for path, module in model.named_modules():
            if type(module).__name__ == "OptimizedModule":
                continue
            path = module_path(path)
            cls = type(module)
            if (path, cls.__qualname__) in seen:
                continue
            seen.add((path, cls.__qualname__))
            for code in _class_codes(cls):
                lines = [line for _, _, line in code.co_lines() if line is not None]
                if lines:
                    self.spans.append((code.co_filename, min(lines + [code.co_firstlineno]), max(lines), path,
                                       cls.__name__))  # fmt: skip

    def find(self, file: str | None, line: int | None) -> tuple[str, str] | None:
        """``(module path, class name)`` of the innermost method holding ``file:line`` (first such module)."""
        if file is None or line is None:
            return None
        best = None
        for span_file, first, last, path, cls in self.spans:
            if span_file == file and first <= line <= last and (best is None or last - first < best[0]):
                best = (last - first, path, cls)
        return None if best is None else (best[1], best[2])

    def find_in_stack(self, text: str) -> tuple[str, str] | None:
        """The module of the innermost ``File "...", line N`` of a traceback text that belongs to the model."""
        for file, line in reversed(_FRAME_LINE.findall(text)):
            hit = self.find(file, int(line))
            if hit is not None:
                return hit
        return None


_codes: dict[type, list[Any]] = {}


def _class_codes(cls: type) -> list[Any]:
    hit = _codes.get(cls)
    if hit is None:
        hit = []
        for klass in cls.__mro__:
            if klass.__module__.startswith("torch.nn.modules") or klass is object:
                continue  # torch's own classes: a line there is not the user's
            for value in vars(klass).values():
                code = getattr(value, "__code__", None)
                if code is not None:
                    hit.append(code)
        _codes[cls] = hit
    return hit


def break_reason(text: str) -> str:
    """One line from Dynamo's graph-break message: its title and explanation (or its first line)."""
    lines = [line.rstrip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if line.strip().startswith("Explanation:"):
            title = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            explanation = line.strip().removeprefix("Explanation:").strip()
            return f"{title}: {explanation}" if title else explanation
    return next((line.strip() for line in lines if line.strip()), "graph break")


def fx_module(stack: Any, root: str | None) -> str | None:
    """The watched module path of an FX node from its ``nn_module_stack`` (innermost entry), under ``root``."""
    if not stack:
        return root
    fqn = list(stack.values())[-1][0]
    if not isinstance(fqn, str):
        return root
    rest = fqn.split("]", 1)[1] if fqn.startswith("L[") and "]" in fqn else fqn  # drop L['self']
    rest = _MODULE_KEY.sub(lambda m: "." + (m.group(1) or m.group(2) or m.group(3)), rest).strip(".")
    rest = module_path(rest)
    if not root:
        return rest
    return f"{root}.{rest}" if rest else root


def fx_nodes(gm: Any, root: str | None) -> list[FxNode]:
    """The nodes of an FX ``GraphModule`` as records: op, target name, module (``nn_module_stack``), user line."""
    nodes = list(gm.graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    out = []
    for i, node in enumerate(nodes):
        target = node.target
        name = target if isinstance(target, str) else (getattr(target, "_opname", None)  # an ATen OpOverload
                                                        or getattr(target, "__name__", None) or str(target))
        found = _FRAME_LINE.findall(node.meta.get("stack_trace") or "")
        user = [f for f in found if not f[0].startswith(_TORCH_DIR)] or found  # the user's line, not torch's
        file, line = (user[-1][0], int(user[-1][1])) if user else (None, None)
        inputs = json.dumps([index[n] for n in node.all_input_nodes if n in index])
        module = fx_module(node.meta.get("nn_module_stack"), root)
        out.append(FxNode(i, node.name, node.op, name, module, file, line, inputs))
    return out


def _compiling_graph_module() -> Any:
    """The ``gm`` Dynamo is about to hand to the backend: a local of ``compile_and_call_fx_graph`` up the stack."""
    frame = sys._getframe(2)
    for _ in range(24):
        if frame is None:
            return None
        gm = frame.f_locals.get("gm") if frame.f_code.co_name == "compile_and_call_fx_graph" else None
        if isinstance(gm, torch.fx.GraphModule):
            return gm
        frame = frame.f_back
    return None


def _compiled_module(name: Any, file: Any) -> Any:
    """The ``self`` of the frame Dynamo compiles now (``co_name``/``co_filename`` of its metrics), when a module."""
    frame = sys._getframe(2)
    for _ in range(40):
        if frame is None:
            return None
        user = frame.f_locals.get("frame")
        code = getattr(user, "f_code", None)
        if code is not None and code.co_name == name and code.co_filename == file:
            owner = getattr(user, "f_locals", {}).get("self")
            return owner if isinstance(owner, torch.nn.Module) else None
        frame = frame.f_back
    return None


class _Frame:
    """What the trace said so far about one compile of one frame (``compile_id``)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.breaks: list[tuple[str, str, str | None, int | None]] = []  # reason, detail, file, line
        self.graphs: list[Any] = []
        self.code: list[str] = []  # Inductor's generated code of the frame's forward


class CompileRecorder(logging.Handler):
    """A handler on Dynamo's structured trace that turns compiles into records; see the module docstring.

    ``watches()`` gives the live watches; a frame's records go to the watch whose model holds the frame's code,
    or to the first live watch when none does (a compiled function outside every watched model).
    """

    def __init__(self, watches: Callable[[], Iterable[Any]]) -> None:
        super().__init__(level=logging.DEBUG)
        self._watches = watches
        self._frames: dict[str, _Frame] = {}
        self._breaks_seen: set[tuple[Any, ...]] = set()
        self._failed = False

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102 - logging.Handler's
        if self._failed:
            return
        try:
            self._on_trace(getattr(record, "metadata", None), getattr(record, "payload", None))
        except Exception as exc:  # noqa: BLE001 - never into the user's compile
            self._failed = True
            warn_once(
                "compile-record", f"torchscope: recording torch.compile stopped ({type(exc).__name__}: {exc}); "
                "this torch's trace format may have changed"
            )  # fmt: skip

    def _frame(self, meta: dict[str, Any]) -> _Frame:
        key = f"{meta.get('frame_id')}/{meta.get('frame_compile_id')}"
        if key not in self._frames and len(self._frames) >= MAX_OPEN_FRAMES:  # frames whose metrics never came
            self._frames.pop(next(iter(self._frames)))
        return self._frames.setdefault(key, _Frame())

    def _on_trace(self, meta: Any, payload: Any) -> None:
        if not isinstance(meta, dict):
            return
        artifact = meta.get("artifact")
        if isinstance(artifact, dict):
            name = artifact.get("name")
            if name == "recompile_reasons":
                self._frame(meta).reason = _recompile_reason(payload)
            elif name == "dynamo_graph_break_reason" and isinstance(payload, str):
                self._on_break(self._frame(meta), payload)
        elif "dynamo_output_graph" in meta:
            gm = _compiling_graph_module()
            if gm is not None:
                self._frame(meta).graphs.append(gm)
        elif "inductor_output_code" in meta and isinstance(payload, str):
            if "forward" in payload[:200]:  # "# AOT ID: ['0_forward']": the backward is compiled later, lazily
                self._frame(meta).code.append(payload)
        elif "compilation_metrics" in meta:
            self._on_metrics(meta["compilation_metrics"])

    def _on_break(self, frame: _Frame, payload: str) -> None:
        header = _BREAK_HEADER.search(payload)
        file, line = (header.group(1), int(header.group(2))) if header else (None, None)
        body = payload.split("Graph Break Reason:", 1)[-1]
        message = body.split("\nUser code traceback:", 1)[0].strip()
        if any(b[2] == file and b[3] == line for b in frame.breaks):
            return  # Dynamo restarts the analysis and reports the same break again
        detail = payload.split("\nTraceback (most recent call last)", 1)[0].strip()[:DETAIL_CHARS]
        frame.breaks.append((break_reason(message), detail, file, line))

    def _on_metrics(self, metrics: dict[str, Any]) -> None:
        compile_id = str(metrics.get("compile_id"))
        frame = self._frames.pop(compile_id, None) or _Frame()
        file, first = metrics.get("co_filename"), metrics.get("co_firstlineno")
        if isinstance(file, str) and os.path.abspath(file).startswith(_OWN_DIR):
            return
        compiled = _compiled_module(metrics.get("co_name"), file)
        if compiled is None and wrapped:
            compiled = wrapped[-1]
        watch, index, module = self._owner(file, first, compiled)
        if watch is None:
            return
        run = watch.run
        if run is None or run.status != "running":
            return
        step, now, model = watch.compile_step(), time.time_ns(), watch.name
        recompile = compile_id.split("/")[-1] not in ("0", "None") or frame.reason is not None
        duration = metrics.get("entire_frame_compile_time_s") or 0.0
        reason = frame.reason
        if metrics.get("fail_reason"):
            reason = f"{reason + '; ' if reason else ''}failed: {metrics['fail_reason']}"
        put = run.writer.put
        put(CompileEvent(
            run.id, model, step, "recompile" if recompile else "compile", compile_id, str(metrics.get("co_name")),
            file, first, module, reason, int(float(duration) * 1e9), int(metrics.get("graph_op_count") or 0), now,
        ))  # fmt: skip
        for text, detail, bfile, bline in frame.breaks:
            key = (run.id, model, step, bfile, bline, text)
            if key in self._breaks_seen:  # a break inside an inlined call also breaks the calling frame
                continue
            self._breaks_seen.add(key)
            hit = index.find(bfile, bline) if index is not None else None
            if hit is None and index is not None:
                hit = index.find_in_stack(detail)
            put(GraphBreak(run.id, model, step, compile_id, text, detail, bfile, bline, hit[0] if hit else None,
                           hit[1] if hit else None, now))  # fmt: skip
        graphs = [fx_nodes(gm, module) for gm in frame.graphs]
        for nodes in graphs:
            put(FxGraph(run.id, model, step, compile_id, module, nodes, now))
        if frame.code and graphs:
            module_of = {n.name: n.module for n in graphs[-1]}
            targets = {n.name: _op_name(n.target) for n in graphs[-1] if n.op.startswith("call_")}
            for seq, kernel in enumerate(parse_kernels(frame.code[-1], targets)):
                where = common_module(module_of.get(name) for name in kernel.source_nodes)
                put(CompiledKernel(run.id, model, compile_id, seq, kernel.name, kernel.kind, kernel.profiler_name,
                                   module if where is None else where, json.dumps(kernel.source_nodes),
                                   json.dumps(kernel.aten)))  # fmt: skip

    def _owner(self, file: Any, line: Any, compiled: Any) -> tuple[Any, ModuleIndex | None, str | None]:
        """The watch a frame belongs to, its model's index, and the frame's module path: the compiled ``self``
        when it is a module of a watched model, else the module whose code holds the frame's first line."""
        first = None
        for watch in self._watches():
            model = watch.model
            if model is None:
                continue
            index = ModuleIndex(model)
            if compiled is not None:
                for path, module in model.named_modules():
                    if module is compiled:
                        return watch, index, module_path(path)
            if first is None:
                first = (watch, index, None)
            hit = index.find(file, line)
            if hit is not None:
                return watch, index, hit[0]
        return first if first is not None else (None, None, None)


def _op_name(target: str) -> str:
    """``relu``, ``mul`` for ``relu``, ``__mul__``, ``add_``: the op's name as a generated kernel's name spells it."""
    return target.strip("_").removesuffix("_")


def _recompile_reason(payload: Any) -> str | None:
    if payload is None:
        return None
    text = payload if isinstance(payload, str) else json.dumps(payload)
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    items = value if isinstance(value, list) else [value]
    return "; ".join(_COMPILE_ID_PREFIX.sub("", str(item)).strip() for item in items) or None


_recorder: CompileRecorder | None = None
wrapped: list[Any] = []
"""The modules whose ``torch.compile`` wrapper is being called now, innermost last (pushed and popped by the global
module hooks): when Dynamo compiles the wrapper's call, the frame it compiles belongs to the innermost one."""


def install(watches: Callable[[], Iterable[Any]]) -> None:
    """Put the recorder on Dynamo's trace logger (idempotent)."""
    global _recorder
    logger = logging.getLogger(TRACE_LOGGER)
    if _recorder is not None:
        if _recorder not in logger.handlers:  # torch._logging.set_logs() clears the logger's handlers
            logger.addHandler(_recorder)
        return
    try:
        recorder = CompileRecorder(watches)
        logger.addHandler(recorder)
        if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)  # torch's own TORCH_TRACE set-up does the same: the logger only traces
        logger.propagate = False  # as torch sets it: trace records are for trace handlers, not the app's log
        _recorder = recorder
    except Exception as exc:  # noqa: BLE001
        warn_once("compile-record", f"torchscope: cannot record torch.compile ({type(exc).__name__}: {exc})")


def uninstall() -> None:
    """Take the recorder off the trace logger (idempotent)."""
    global _recorder
    wrapped.clear()
    if _recorder is not None:
        logging.getLogger(TRACE_LOGGER).removeHandler(_recorder)
        _recorder = None
