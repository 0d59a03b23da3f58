"""``run.watch(model)``: capture the executed graph and the tensor values of sampled training steps.

A step is one call of the watched root module's forward (``step="forward"``, the default), the step
``run.log`` will use next (``step="log"``), or what a callable returns (``step=fn``: the training framework's own
step; None leaves that forward out). On a captured step (``step % every == 0``):

- the forward runs under a :class:`~torchscope.capture.graph_record.GraphMode` and with global module hooks that
  record the module-call hierarchy (both only for this forward, so non-captured steps pay for a counter only);
- every op output, input, parameter and buffer gets a statistics row (:mod:`torchscope.capture.tensor_stats`) and,
  with ``grads=True``, a gradient hook; the step ends when its backward pass ends (or the next forward starts)
  (:mod:`torchscope.capture.step`);
- then the rows are gathered with one host transfer, the first NaN/Inf origin is looked for, and one record goes to
  the run's writer. The training thread never waits on the database.

**The model stays the user's model.** Nothing is attached to the watched module, its submodules or its parameters
between captures: which modules are watched is decided by a registry keyed by ``id(module)`` (each entry dropped by
a weak reference's callback when the module dies), consulted by two *global* module hooks
(``torch.nn.modules.module.register_module_forward_pre_hook``) that are installed while at least one watch is live.
So ``torch.save(model)``, ``pickle``, ``copy.deepcopy``, ``torch.jit.script`` and ``torch.export`` see a plain module.
A :class:`Watch` holds its run and the model weakly; the registry holds the watch only while the model and the run
live, and a watch whose run finished or was collected retires itself at the next forward.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections.abc import Callable
from typing import Any

import torch

from torchscope.storage.compile.records import FxGraph
from torchscope.storage.graph.records import (
    Anomaly, GraphEdge, GraphNode, GraphStep, GraphStructure, StepStats, TensorMeta, TensorValue,
)  # fmt: skip
from torchscope.capture.anomaly import find_origins
from torchscope.capture.compile_record import force_eager, fx_nodes, module_path
from torchscope.capture.graph_record import GraphMode, StepRecord, named_tensors
from torchscope.capture.registry import call_kwargs, forget_module, recording, register, unregister
from torchscope.capture.step import CapturedStep
from torchscope.errors import CaptureError

TENSOR_MODES = ("none", "stats", "full")

class Watch:
    """The handle ``run.watch(model)`` returns: removes every hook it installed; holds the model weakly.

    Use ``remove()`` (idempotent) or ``with run.watch(model): ...``. ``flush()`` ends a captured step that is still
    waiting for its backward pass. ``steps_captured`` counts the steps handed to the writer. ``export(*inputs)``
    records the graph ``torch.export`` makes of the model (see docs/capture.md).
    """

    def __init__(
        self, run: Any, model: torch.nn.Module, every: int, tensors: str, grads: bool, step: Any, name: str
    ) -> None:
        self._run = weakref.ref(run)
        self.name = name
        self.every = every
        self.tensors = tensors
        self.grads = grads
        self.step_source = step
        self.forward_count = 0
        self.steps_captured = 0
        self.last_step: int | None = None
        self._key = id(model)
        self._model = weakref.ref(model, lambda _ref, key=id(model): forget_module(key))
        self._seen_versions: dict[str, bool] = {}
        self._pending: CapturedStep | None = None
        self._current: CapturedStep | None = None
        self._mode: GraphMode | None = None
        self._depth = 0
        self._removed = False
        self._restore_stance: Any = None  # restores torch.compile's stance after a captured step ran eagerly
        self._wrapper_depth = 0  # inside a call of a torch.compile wrapper of the model
        self._wrapper_restore: Any = None
        register(self, model)

    @property
    def run(self) -> Any:
        """The run this watch records into, or None once it was garbage collected (held weakly)."""
        return self._run()

    @property
    def model(self) -> torch.nn.Module | None:
        """The watched model, or None once it was garbage collected."""
        return self._model()

    # -- handle protocol --------------------------------------------------------------------------------------------
    def remove(self) -> None:
        """Remove every hook; a step still waiting for its backward is stored as it is. Idempotent."""
        if self._removed:
            return
        self._removed = True
        unregister(self, self._key)
        self._stop_capture()
        self.flush()

    def flush(self) -> None:
        """Store a captured step that is still waiting for gradients (without them)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.finish()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- root hooks -------------------------------------------------------------------------------------------------
    def _root_pre(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if self._depth:  # the root calling itself: part of the same step
            self._depth += 1
            return
        if self._wrapper_depth and self._wrapper_restore is None:
            return  # a compiled call (counted by _compiled_pre) whose module call Dynamo left to Python
        run = self._run()
        if run is None or run.status != "running":  # the run ended: nothing to record into any more
            self.remove()
            return
        self._depth = 1
        try:
            self.forward_count += 1
            if self._pending is not None:  # the previous captured step's backward never came (or came late)
                self.flush()
            step = self._step_now(run, self.forward_count - 1)
            if step is None or step % self.every or step == self.last_step:
                return
            self.last_step = step
            self._start_capture(module, step, args, call_kwargs())
        except Exception as exc:  # noqa: BLE001
            if self._current is not None:
                self._current.abandon()
            self._stop_capture()
            self._fail(exc)

    def _compiled_pre(self) -> None:
        """A call of a ``torch.compile`` wrapper of the model starts: a step to capture runs eagerly (so that the
        model's own hooks see it); any other is counted here, since Dynamo runs the model's call."""
        if self._wrapper_depth:
            self._wrapper_depth += 1
            return
        self._wrapper_depth = 1
        run = self._run()
        if run is None or run.status != "running":
            return
        try:
            step = self._step_now(run, self.forward_count)
            if step is not None and step % self.every == 0 and step != self.last_step:
                self._wrapper_restore = force_eager()
                if self._wrapper_restore is not None:
                    return
            self.forward_count += 1
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _compiled_post(self) -> None:
        """The wrapper's call ended (also when it raised): the previous stance comes back."""
        if self._wrapper_depth > 1:
            self._wrapper_depth -= 1
            return
        self._wrapper_depth = 0
        restore, self._wrapper_restore = self._wrapper_restore, None
        if restore is not None:
            restore()

    def export(self, *args: Any, **kwargs: Any) -> bool:
        """Record the graph ``torch.export`` makes of the watched model for these inputs (non-strict, ATen level),
        for the graph page's FX view ("torch.export" box) and ``store.fx_graph`` (``compile_id == "export"``).

        Runs only when called (an export traces the whole model: seconds). Returns whether it worked; an export that
        fails (data-dependent control flow such as ``if x.item() > 0``) warns once and returns False."""
        model, run = self.model, self.run
        if model is None or run is None:
            return False
        try:
            program = torch.export.export(model, args, kwargs or None, strict=False)
            nodes = fx_nodes(program.graph_module, "")
        except Exception as exc:  # noqa: BLE001 - an export that fails is reported, never raised into training
            run.writer.warn_once(
                f"export:{self.name}", f"torchscope: torch.export of {self.name} failed: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}"
            )  # fmt: skip
            return False
        run.writer.put(FxGraph(run.id, self.name, self.compile_step(), "export", "", nodes, time.time_ns()))
        return True

    def compile_step(self) -> int:
        """The step a compile happening now belongs to (the compile recorder's; see ``compile_record``)."""
        run = self._run()
        if self.step_source != "forward" and run is not None:
            step = self._step_now(run, 0)
            if step is not None:
                return step
        return max(self.forward_count - 1, 0)

    def _step_now(self, run: Any, forward_step: int) -> int | None:
        """The step a forward starting now belongs to; None: a forward the step callable leaves out."""
        source = self.step_source
        if source == "forward":
            return forward_step
        if source == "log":
            return int(run.step)
        step = source()
        return None if step is None else int(step)

    def _root_post(self, module: torch.nn.Module, output: Any) -> None:
        if self._depth > 1:
            self._depth -= 1
            return
        if self._depth == 0:
            return
        self._depth = 0
        current = self._current
        if current is None:
            return
        self._stop_capture()
        try:
            record = current.record
            if record.failed is None:
                leaves = named_tensors(output, "output")
                record.add_tensors("output", leaves, to_graph=True)
                record.exit_module(module)
            if record.failed is not None:
                current.abandon()
                self._fail(record.failed)
                return
            self._pending = current
            current.end_forward()
            if current.done:
                self._pending = None
        except Exception as exc:  # noqa: BLE001
            current.abandon()
            self._fail(exc)

    def _start_capture(self, model: torch.nn.Module, step: int, args: Any, kwargs: Any) -> None:
        restore = force_eager()  # compiled submodules run eagerly in a captured step: their ops are recorded
        if restore is None:
            return  # this forward runs inside a region Dynamo is running: not a step that can be captured
        self._restore_stance = restore
        # torch.compile wrappers of submodules are left out: their module is the one the user wrote
        paths = {id(m): module_path(name) for name, m in model.named_modules() if type(m).__name__ != "OptimizedModule"}
        params = {id(p): (module_path(name), "param") for name, p in model.named_parameters()}
        params.update({id(b): (module_path(name), "buffer") for name, b in model.named_buffers()})
        holder: dict[str, CapturedStep] = {}
        record = StepRecord(paths, params, lambda t, n, o: holder["step"].observe(t, n, o))
        current = holder["step"] = CapturedStep(
            step, record, tensors=self.tensors, grads=self.grads, emit=self._emit, fail=self._fail
        )
        self._current = current
        record.enter_module(model, "")
        leaves = [] if not args else named_tensors(args, "input")
        for key, value in kwargs.items():
            leaves += named_tensors(value, f"input.{key}")
        record.add_tensors("input", leaves, to_graph=False)
        del paths[id(model)]  # the root's call node is made here, not by the global hooks
        recording.append(record)
        self._mode = GraphMode(record)
        self._mode.__enter__()

    def _stop_capture(self) -> None:
        mode, self._mode = self._mode, None
        if mode is not None:
            mode.__exit__(None, None, None)
        restore, self._restore_stance = self._restore_stance, None
        if restore is not None:
            restore()
        current, self._current = self._current, None
        if current is not None and current.record in recording:
            recording.remove(current.record)

    # -- output -----------------------------------------------------------------------------------------------------
    def _emit(self, step: CapturedStep) -> None:
        record = step.record
        grad_ids = record.grad_nodes(step.grad_targets) if step.grad_targets else []
        stats = None
        if step.stats is not None and len(step.stats):
            values = step.stats.gather()
            meta = []
            for node, output, shape, dtype, device in step.stats.meta:
                if node < 0:
                    meta.append(TensorMeta(grad_ids[-1 - node], 0, "grad", shape, dtype, device))
                else:
                    meta.append(TensorMeta(node, output, "value", shape, dtype, device))
            stats = StepStats(meta, values)
        full = []
        devices = {copy_device for *_, copy_device in step.full_devices}
        for device in devices:  # the non-blocking copies of whole tensors must have landed
            torch.cuda.synchronize(device)
        for node, output, role, copy in step.full:
            if node < 0:
                node = grad_ids[-1 - node]
            full.append(TensorValue(node, output, role, _to_numpy(copy)))
        nodes, edges = record.nodes, record.edges
        key = _structure_key(nodes, edges)
        new = key not in self._seen_versions
        self._seen_versions[key] = True
        grad_of = {grad_ids[k]: target for k, target in enumerate(step.grad_targets)}
        origins = find_origins(nodes, edges, stats, grad_of, deliberate=record.deliberate) if stats else []
        for origin in origins:
            self._warn_anomaly(step.step, origin)
        structure = None
        if new:  # the structure travels once per version; its nodes and edges become records only then
            structure = GraphStructure([GraphNode._make(n) for n in nodes], [GraphEdge._make(e) for e in edges])
        anomalies = [Anomaly(*(o[f] for f in Anomaly._fields)) for o in origins]
        run = self._run()
        if run is None:
            return
        run.writer.put(
            GraphStep(
                run_id=run.id, model=self.name, step=step.step, wall_time=step.wall_time, hash=key,
                graph=structure, stats=stats, tensors=full, anomalies=anomalies,
            )
        )
        self.steps_captured += 1

    # -- failures ---------------------------------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        run = self._run()
        if run is None:
            return
        writer = run.writer
        writer.drop("steps")
        writer.warn_once(
            f"capture:{type(exc).__name__}", f"torchscope: graph capture skipped a step: {type(exc).__name__}: {exc}"
        )

    def _warn_anomaly(self, step: int, origin: dict[str, Any]) -> None:
        where = f"{origin['file']}:{origin['line']}" if origin.get("file") else "unknown line"
        module = origin.get("module") or "<root>"
        what = "NaN" if origin["nan"] else "Inf"
        key = f"anomaly:{origin['phase']}:{origin['op']}:{where}"
        if origin["op"] in ("param", "input"):
            # Nothing in this step made it: it came in with a parameter (an earlier update wrote it) or the data.
            source = "the parameter" if origin["op"] == "param" else "the input"
            message = (f"torchscope: first {what} of step {step} ({origin['phase']}) is already in {source} "
                       f"{origin['tensor']}: it was there before this step ran")  # fmt: skip
        else:
            message = (f"torchscope: first {what} of step {step} ({origin['phase']}) comes from {origin['op']} "
                       f"in {module} at {where}")  # fmt: skip
        run = self._run()
        if run is not None:
            run.writer.warn_once(key, message)


def _to_numpy(t: torch.Tensor) -> Any:
    try:
        return t.numpy()
    except TypeError:  # bfloat16, float8: numpy has no such dtype
        return t.float().numpy()


def _structure_key(nodes: list[Any], edges: list[Any]) -> str:
    digest = hashlib.blake2b(repr((nodes, edges)).encode(), digest_size=16)
    return digest.hexdigest()


def watch(
    run: Any,
    model: torch.nn.Module,
    every: int = 50,
    tensors: str = "stats",
    grads: bool = True,
    *,
    step: str | Callable[[], int | None] = "forward",
    name: str | None = None,
) -> Watch:
    """Capture ``model``'s executed graph and tensor values every ``every``-th step; see the module docstring.

    ``run`` is the :class:`~torchscope.capture.run.Run` (``run.watch(model)`` calls this). ``tensors``: ``"none"``
    (graph only), ``"stats"`` (statistics of every tensor) or ``"full"`` (also whole tensors up to
    :data:`~torchscope.capture.step.FULL_MAX_BYTES` each, compressed in the store). ``grads``: also capture gradients
    of parameters and activations. ``step``: ``"forward"`` counts root forward calls, ``"log"`` uses ``run.step``, a
callable is asked at each root forward (a framework's global step; None: not a training forward, left out; hold the
framework's objects weakly in it, as the watch holds the model).
    ``name`` tells the watched models of one run apart (default: the model's class; a name already watched in this run
    gets ``#2``, ``#3``...). Raises :class:`CaptureError` for arguments that cannot work; after that, capture problems
    only warn.
    """
    # what torch.compile returns (checked by name: importing torch._dynamo to test the type takes a second): the
    # module it wraps is watched; its captured steps run eagerly (see _compiled_pre)
    if type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):
        model = model._orig_mod
    if not isinstance(model, torch.nn.Module):
        raise CaptureError(f"run.watch needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise CaptureError(f"every must be a positive integer (capture every n-th step), got {every!r}")
    if tensors not in TENSOR_MODES:
        raise CaptureError(f"tensors must be one of {', '.join(TENSOR_MODES)}, got {tensors!r}")
    if not (callable(step) or step in ("forward", "log")):
        raise CaptureError(f"step must be 'forward', 'log' or a callable returning the step, got {step!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise CaptureError(f"name must be a non-empty string, got {name!r}")
    taken = run.watch_names  # names stay taken: each keeps its own steps
    base = name or type(model).__name__
    unique, n = base, 1
    while unique in taken:
        n += 1
        unique = f"{base}#{n}"
    taken.add(unique)
    return Watch(run, model, every, tensors, bool(grads), step, unique)


__all__ = ["Watch", "watch"]
