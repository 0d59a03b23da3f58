"""Zero-code capture for ``torchscope run``: watch the modules a script trains, count its optimizer steps, profile a
window of them, all through the public :class:`~torchscope.capture.run.Run` API.

- **Which modules.** ``torch.optim.Optimizer.__init__`` is wrapped (on the class, for the script's lifetime; the
  optimizer objects are untouched): when an optimizer is built, the roots of the modules that own its parameters are
  watched (:class:`~torchscope.capture.module_tree.ModuleTree`; a model loaded or copied rather than built is found
  among the variables of the code building the optimizer). With ``names`` (``--watch NAME``) instead, every module
  whose class is called ``NAME`` is watched as soon as it is built, trained or not.
- **Steps.** A step is one ``optimizer.step()`` (torch's global step hook): the run's step is the most steps any one
  optimizer made. After each, the optimizer's learning rate is logged (``optimizer/lr``; ``optimizer2/lr`` ... for
  later optimizers) at that step, so the run's step is the number of steps done; watches use it (``step="log"``),
  so captured step ``k`` is the forward of training iteration ``k``. A forward under ``torch.no_grad`` (evaluation)
  is never captured while the script trains.
- **Profile window.** ``profile=(a, b)`` records optimizer steps ``a .. b-1`` with ``torch.profiler`` (one warm-up
  step before ``a`` when ``a > 0``), as one profile of the run whose ``ProfilerStep#k`` is optimizer step ``k``. The
  profiler starts at the warm-up step, not before, and not at all when the script runs a profiler of its own then
  (two cannot run at once; the script's wins).

Nothing here raises into the script: a failure warns once on the run and carries on.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import warnings
import weakref
from typing import Any

import torch
from torch.nn.modules import module as nn_module
from torch.optim import optimizer as optim_module

from torchscope.capture.module_tree import ModuleTree, modules_in_frames
from torchscope.user_code import SKIP_PREFIXES

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


class AutoWatch:
    """Installed by :meth:`start` for the script's lifetime, removed by :meth:`close` (idempotent).

    ``every``, ``tensors`` and ``grads`` are ``run.watch``'s; ``names`` selects modules by class name instead of by
    optimizer; ``profile`` is a ``(first, end)`` window of optimizer steps; ``say`` prints a status line.
    """

    def __init__(
        self,
        run: Any,
        *,
        names: tuple[str, ...] = (),
        every: int = 50,
        tensors: str = "stats",
        grads: bool = True,
        profile: tuple[int, int] | None = None,
        say: Any = None,
    ) -> None:
        self.run = run
        self.names = set(names)
        self.every, self.tensors, self.grads = every, tensors, grads
        self.window = profile
        self.say = say or (lambda text: None)
        self.steps = 0
        """Optimizer steps so far: the most ``step()`` calls any one optimizer made."""
        self.watches: list[Any] = []
        """The handles of the modules watched so far."""
        self.optimizer_count = 0
        self._optimizers: dict[int, list[Any]] = {}  # id -> [weakref, index, steps]
        self._watched: dict[int, Any] = {}  # id(module) -> its watch
        self._skipped: dict[int, int | None] = {}  # id(module) -> its watch's last_step, during a no_grad forward
        self._session: Any = None
        self._handles: list[Any] = []
        self._original_init: Any = None
        self._tree: ModuleTree | None = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def start(self) -> AutoWatch:
        """Install the hooks (before the script runs)."""
        self._tree = ModuleTree(self._module_built if self.names else None)
        self._handles.append(optim_module.register_optimizer_step_post_hook(self._after_step))
        self._wrap_optimizer_init()
        if self.window is not None and self._profile_from() == 0:
            self._start_profile(*self.window)
        return self

    def close(self) -> None:
        """Remove every hook, restore ``Optimizer.__init__``, store a profile window still recording. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._original_init is not None and torch.optim.Optimizer.__init__ is not self._original_init:
            torch.optim.Optimizer.__init__ = self._original_init
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._tree is not None:
            self._tree.remove()
        if self._session is not None:
            self._session.stop()
        for watch in self.watches:
            watch.flush()

    # -- finding the modules ----------------------------------------------------------------------------------------
    def _wrap_optimizer_init(self) -> None:
        original = self._original_init = torch.optim.Optimizer.__init__
        me = weakref.ref(self)

        @functools.wraps(original)
        def __init__(optimizer: Any, *args: Any, **kwargs: Any) -> None:  # it replaces __init__
            original(optimizer, *args, **kwargs)
            auto = me()
            if auto is not None and not auto._closed:
                auto._optimizer_built(optimizer, sys._getframe(1))

        torch.optim.Optimizer.__init__ = __init__

    def _optimizer_built(self, optimizer: Any, frame: Any) -> None:
        try:
            entry = self._register_optimizer(optimizer)
            if self.names:  # --watch CLASS: the named modules are watched as they are built
                return
            params = [p for group in optimizer.param_groups for p in group["params"]]
            assert self._tree is not None
            modules, unknown = self._tree.trained_roots(params)
            if unknown:  # a model loaded (torch.load) or copied, not built here: look for it in the user's variables
                modules += [m for m in modules_in_frames(frame, unknown, SKIP_PREFIXES) if m not in modules]
            new = [m for m in modules if id(m) not in self._watched]
            for module in new:
                self._watch(module)
            label = f"optimizer {entry[1]} ({type(optimizer).__name__})"
            if new:
                self.say(f"watching {', '.join(self._watched[id(m)].name for m in new)} (trained by {label})")
            elif not modules:
                self.say(f"{label}: its parameters belong to no nn.Module; nothing to watch")
        except Exception as exc:  # noqa: BLE001 - never into the script
            self._warn("optimizer", exc)

    def _module_built(self, module: torch.nn.Module) -> None:
        if type(module).__name__ in self.names and id(module) not in self._watched:
            try:
                self._watch(module)
                self.say(f"watching {self._watched[id(module)].name} (--watch {type(module).__name__})")
            except Exception as exc:  # noqa: BLE001
                self._warn("watch", exc)

    def _watch(self, module: torch.nn.Module) -> None:
        if not self.watches:  # the no_grad hooks, only once there is something to watch; before the watches' own
            self._handles.append(nn_module.register_module_forward_pre_hook(self._forward_pre))
            self._handles.append(nn_module.register_module_forward_hook(self._forward_post, always_call=True))
        watch = self.run.watch(module, every=self.every, tensors=self.tensors, grads=self.grads, step="log")
        self._watched[id(module)] = watch
        self.watches.append(watch)
        # the entry goes with the module, so that a new module at the same address is not taken for it
        weakref.finalize(module, self._watched.pop, id(module), None)

    def _register_optimizer(self, optimizer: Any) -> list[Any]:
        entry = self._optimizers.get(id(optimizer))
        if entry is None or entry[0]() is not optimizer:
            self.optimizer_count += 1
            entry = [weakref.ref(optimizer), self.optimizer_count, 0]
            self._optimizers[id(optimizer)] = entry
        return entry

    # -- steps ------------------------------------------------------------------------------------------------------
    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        try:
            entry = self._register_optimizer(optimizer)
            entry[2] += 1
            count, index = entry[2], entry[1]
            if count > self.steps:
                self.steps = count
                if self._session is not None:
                    self._session.step()
                    if self.window is not None and count >= self.window[1]:
                        self._session.stop()  # the window is stored: the profiler is released
                        self._session = None
                elif self.window is not None and count == self._profile_from():
                    self._start_profile(*self.window)
            lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
            if lr is not None:
                tag = "optimizer/lr" if index == 1 else f"optimizer{index}/lr"
                self.run.log({tag: lr}, step=count - 1)
        except Exception as exc:  # noqa: BLE001
            self._warn("step", exc)

    def _forward_pre(self, module: torch.nn.Module, args: Any) -> None:
        # An evaluation forward (no_grad) of a watched module while the script trains is not a training step: the
        # watch sees the step as already captured (and gets its last step back when the forward ends).
        watch = self._watched.get(id(module))
        if watch is None or torch.is_grad_enabled() or not self._optimizers:
            return
        if id(module) not in self._skipped:
            self._skipped[id(module)] = watch.last_step
            watch.last_step = int(self.run.step)

    def _forward_post(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if self._skipped and id(module) in self._skipped:
            watch = self._watched.get(id(module))
            last = self._skipped.pop(id(module))
            if watch is not None:
                watch.last_step = last

    # -- profiling --------------------------------------------------------------------------------------------------
    def _profile_from(self) -> int:
        """The step the profiler starts at: the warm-up step before the window (none before step 0)."""
        assert self.window is not None
        return max(self.window[0] - 1, 0)

    def _start_profile(self, first: int, end: int) -> None:
        """Start the profiler now, at step :meth:`_profile_from`, numbering its steps as the optimizer's; not when
        the script runs a profiler of its own (two cannot run at once: the script's comes first)."""
        warmup = first - self._profile_from()
        if _script_profiling():
            self.window = None
            self.say(f"the script is profiling at step {self.steps}: --profile-steps {first}:{end} skipped")
            return
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*won't be using warmup.*")
                self._session = self.run.profile(
                    wait=first - warmup, warmup=warmup, active=end - first, repeat=1, record_shapes=True,
                    profile_memory=True, with_stack=True, name=f"steps {first}-{end - 1}, window",
                )  # fmt: skip
            prof = self._session.profiler  # its steps are the optimizer's: ProfilerStep#k is step k
            prof.step_num = first - warmup
            prof.current_action = prof.schedule(prof.step_num)
            self._session.start()
        except Exception as exc:  # noqa: BLE001
            self._session = None
            self._warn("profile", exc)

    def _warn(self, key: str, exc: BaseException) -> None:
        try:
            message = f"torchscope run: {key} hook failed: {type(exc).__name__}: {exc}"
            self.run.writer.warn_once(f"autowatch:{key}", message)
        except Exception:  # noqa: BLE001
            pass


def _script_profiling() -> bool:
    """Whether a profiler runs now, or a scheduled ``torch.profiler.profile`` was started (and is waiting for its
    window): once, when the window starts, a look at the live objects (the script's profiler is not ours to patch)."""
    if torch._C._autograd._profiler_enabled():
        return True
    kind = torch.profiler.profile
    # type(), not isinstance(): isinstance asks an object for its __class__, which some module proxies warn about
    return any(issubclass(type(o), kind) and getattr(o, "step_rec_fn", None) is not None for o in gc.get_objects())


def parse_window(text: str) -> tuple[int, int]:
    """``"10:13"`` -> ``(10, 13)`` (steps 10, 11, 12); ``"5"`` -> ``(5, 6)``. Raises ValueError otherwise."""
    first, sep, end = text.partition(":")
    a = int(first)
    b = int(end) if sep else a + 1
    if a < 0 or b <= a:
        raise ValueError(f"{text!r} is not a window of steps: give FIRST:END with 0 <= FIRST < END, e.g. 10:13")
    return a, b


__all__ = ["AutoWatch", "parse_window"]
