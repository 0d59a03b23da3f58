"""Which modules are watched: a registry keyed by ``id(module)`` and the two global module hooks that consult it.

Nothing is attached to a watched module, its submodules or its parameters: the global hooks
(``torch.nn.modules.module.register_module_forward_(pre_)hook``) are installed while at least one watch is live and
call the watches of the module being called; any other module costs a dict lookup. An entry goes when its module is
collected (a weak reference's callback on the :class:`~torchscope.capture.watch.Watch`) or its watches are removed.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import torch
from torch.nn.modules import module as nn_module

from torchscope.capture import compile_record
from torchscope.capture.graph_record import StepRecord

watched: dict[int, list[Any]] = {}
"""``id(root module) -> its live watches``; an entry goes when its module is collected or its watches are removed."""
_global_handles: list[Any] = []
"""The two global module hooks, installed while ``watched`` is not empty."""
recording: list[StepRecord] = []
"""The records of the captured forwards running now: they see every module call (the module-call hierarchy).
The global hooks stay installed for the whole watch: removing a global hook while a forward raises would mutate
the dict ``Module._call_impl`` iterates."""
_CALL_IMPL_FILE = nn_module.__file__
_COMPILE_HOOKS_WARNING = r"Using `torch\.compile\(module\)` when there are global hooks on modules"


def _global_pre(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
    """Global forward pre-hook: start a step of every watch of ``module``; any other module costs a lookup."""
    if torch.compiler.is_compiling():  # first, so that Dynamo folds the rest away when it traces a compiled call
        return
    for record in recording:
        record.module_pre_hook(module, args)
    watches = watched.get(id(module))
    if watches is None:
        if not watched:  # the last watched module was collected: the hooks go now, between two hook calls
            _uninstall()
        elif type(module).__name__ == "OptimizedModule":  # a torch.compile wrapper: its hooks run eagerly
            inner = getattr(module, "_orig_mod", None)
            compile_record.wrapped.append(inner)
            for watch in tuple(watched.get(id(inner), ())):
                watch._compiled_pre()
        return
    if torch._C._get_tracing_state() or torch.compiler.is_exporting():
        return  # torch.jit.trace / torch.export run the module to trace it: not a training step
    for watch in tuple(watches):
        watch._root_pre(module, args)


def _global_post(module: torch.nn.Module, args: Any, output: Any) -> None:
    """Global forward hook (also called when the forward raised): end the step of every watch of ``module``."""
    if torch.compiler.is_compiling():
        return
    for record in recording:
        record.module_post_hook(module, args, output)
    watches = watched.get(id(module))
    if watches is not None:
        for watch in tuple(watches):
            watch._root_post(module, output)
    elif type(module).__name__ == "OptimizedModule":
        inner = getattr(module, "_orig_mod", None)
        if compile_record.wrapped and compile_record.wrapped[-1] is inner:
            compile_record.wrapped.pop()
        for watch in tuple(watched.get(id(inner), ())):
            watch._compiled_post()


def call_kwargs() -> dict[str, Any]:
    """The keyword arguments of the module call whose global pre-hooks run now.

    Global pre-hooks get the positional arguments only; the keywords are a local of ``Module._call_impl``'s
    ``inner`` frame, a few frames up. Read only when a step starts being captured (once per captured step).
    """
    frame = sys._getframe(1)
    for _ in range(8):
        if frame is None:
            break
        if frame.f_code.co_name == "inner" and frame.f_code.co_filename == _CALL_IMPL_FILE:
            kwargs = frame.f_locals.get("kwargs")
            return kwargs if isinstance(kwargs, dict) else {}
        frame = frame.f_back
    return {}


def register(watch: Any, model: torch.nn.Module) -> None:
    watched.setdefault(id(model), []).append(watch)
    if not _global_handles:
        _global_handles.append(nn_module.register_module_forward_pre_hook(_global_pre))
        _global_handles.append(nn_module.register_module_forward_hook(_global_post, always_call=True))
    compile_record.install(_live_watches)
    # torch warns that global hooks fire once more for a torch.compile wrapper; ours ignore the wrapper
    warnings.filterwarnings("ignore", message=_COMPILE_HOOKS_WARNING, category=UserWarning)


def unregister(watch: Any, key: int) -> None:
    watches = watched.get(key)
    if watches is not None and watch in watches:
        watches.remove(watch)
        if not watches:
            del watched[key]
    if not watched:
        _uninstall()


def forget_module(key: int) -> None:
    """A watched module was collected: its watches stop (the weak reference's callback).

    The global hooks are not removed here: garbage collection can run this while ``Module._call_impl`` iterates
    the global forward hooks of a forward that raised (a live dict, not a copy); the next pre-hook call removes
    them (pre-hooks are iterated over a copy), as does the next ``remove()``."""
    for watch in watched.pop(key, ()):
        watch._removed = True


def _live_watches() -> list[Any]:
    """Every live watch, for the compile recorder."""
    return [watch for watches in tuple(watched.values()) for watch in tuple(watches)]


def _uninstall() -> None:
    while _global_handles:
        _global_handles.pop().remove()
    compile_record.uninstall()
