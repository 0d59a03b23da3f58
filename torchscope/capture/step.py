"""One captured step of a watched model: its graph record, its statistics, and the hooks that wait for its gradients.

:class:`~torchscope.capture.watch.Watch` starts a :class:`CapturedStep` on a sampled forward; the step collects a
statistics row (and, with ``tensors="full"``, a copy) of every tensor the graph record reports, hooks the gradients
it will get, and ends once — when its backward pass has finished, at the end of the forward if no gradient is coming,
or when the watch is flushed — by handing itself to ``emit``. It never raises into the user's forward or backward:
a failure goes to ``fail``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from torchscope.capture.graph_record import StepRecord, dtype_name, one_shape
from torchscope.capture.tensor_stats import StatsBatch

FULL_MAX_BYTES = 4 << 20
"""``tensors="full"``: tensors larger than this keep statistics only."""
FULL_STEP_BYTES = 256 << 20
"""``tensors="full"``: at most this many bytes of whole tensors per step."""


class CapturedStep:
    """One captured step; see the module docstring. ``stats`` is None with ``tensors="none"``.

    Gradients are numbered in the order their hooks were registered (``grad_targets``); their statistics rows and
    kept copies carry node ``-1 - k`` until the graph record knows the gradient's node.
    """

    def __init__(
        self,
        step: int,
        record: StepRecord,
        *,
        tensors: str,
        grads: bool,
        emit: Callable[[CapturedStep], None],
        fail: Callable[[BaseException], None],
    ) -> None:
        self.step = step
        self.wall_time = time.time_ns()
        self.record = record
        self.tensors = tensors
        self.grads = grads
        self.stats = StatsBatch() if tensors != "none" else None
        self.full: list[tuple[int, int, str, torch.Tensor]] = []
        self.full_bytes = 0
        self.full_devices: list[tuple[int, torch.device]] = []
        self.grad_targets: list[tuple[int, int]] = []
        self.handles: list[Any] = []
        self.lock = threading.Lock()
        self.backward_started = False
        self.done = False
        self._emit = emit
        self._fail = fail

    # called by the StepRecord for every tensor that becomes part of the graph
    def observe(self, t: torch.Tensor, node: int, output: int) -> None:
        """Take the statistics (and a kept copy) of ``t``, output ``output`` of ``node``; hook its gradient."""
        if self.stats is not None:
            self.stats.add(t, (node, output, one_shape(t), dtype_name(t), str(t.device)))
        if self.tensors == "full":
            self._keep_full(t, node, output, "value")
        if self.grads and t.requires_grad and torch.is_grad_enabled():
            k = len(self.grad_targets)
            self.grad_targets.append((node, output))
            try:
                self.handles.append(t.register_hook(lambda g, k=k: self._on_grad(k, g)))
            except RuntimeError:  # e.g. a view that autograd forbids hooking; its gradient is simply not captured
                self.grad_targets.pop()

    def _keep_full(self, t: torch.Tensor, node: int, output: int, role: str) -> None:
        size = t.numel() * t.element_size()
        if size > FULL_MAX_BYTES or self.full_bytes + size > FULL_STEP_BYTES or t.is_complex():
            return
        self.full_bytes += size
        if t.device.type == "cpu":
            copy = t.detach().clone()
        else:  # no host sync now: the copies complete before the step is emitted
            copy = t.detach().to("cpu", non_blocking=True)
            if t.device.type == "cuda":
                self.full_devices.append((node, t.device))
        self.full.append((node, output, role, copy))

    def _on_grad(self, k: int, grad: torch.Tensor) -> None:
        try:
            with self.lock:
                if self.done:
                    return
                if not self.backward_started:
                    self.backward_started = True
                    # runs once when this backward pass has finished, on the thread that ran it
                    torch.autograd.Variable._execution_engine.queue_callback(self.finish)
                if self.stats is not None and isinstance(grad, torch.Tensor):
                    self.stats.add(grad, (-1 - k, 0, one_shape(grad), dtype_name(grad), str(grad.device)))
                if self.tensors == "full" and isinstance(grad, torch.Tensor):
                    self._keep_full(grad, -1 - k, 0, "grad")
        except Exception as exc:  # noqa: BLE001 - never break the user's backward
            self._fail(exc)

    def abandon(self) -> None:
        """Drop this step (its forward failed): remove its gradient hooks, store nothing."""
        with self.lock:
            self.done = True
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def end_forward(self) -> None:
        """The forward returned: finish now unless gradients are coming."""
        if not self.grad_targets:
            self.finish()

    def finish(self) -> None:
        """Remove the gradient hooks and hand the step to ``emit`` (a failure goes to ``fail``). Idempotent."""
        with self.lock:
            if self.done:
                return
            self.done = True
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        try:
            self._emit(self)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
