"""Which module owns a parameter, and which module holds which: learnt while the script builds its models.

``torch.nn.modules.module``'s global registration hooks (parameter, buffer and submodule) are called whenever a module
gets a parameter, buffer or child. Nothing is attached to a module or a parameter: the tree keeps ``id -> weak
reference`` maps, each entry dropped by its weak reference's callback when its object dies. Models that were never
built in this process (unpickled by ``torch.load``, or made by ``copy.deepcopy``) are not in the tree; see
:func:`modules_in_frames` for those.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

import torch
from torch.nn.modules import module as nn_module


def has_forward(module: torch.nn.Module) -> bool:
    """Whether ``module`` defines a forward (``nn.ModuleList``, ``nn.ModuleDict`` and plain holders do not)."""
    return getattr(type(module), "forward", None) is not torch.nn.Module.forward


class ModuleTree:
    """Parameter owners and module parents of every module built while the tree is installed.

    ``on_module`` is called once per module seen (with the module), for ``--watch NAME``; it must not raise.
    """

    def __init__(self, on_module: Callable[[torch.nn.Module], None] | None = None) -> None:
        self._seen: dict[int, weakref.ref[torch.nn.Module]] = {}
        self._parents: dict[int, list[weakref.ref[torch.nn.Module]]] = {}
        self._owners: dict[int, tuple[weakref.ref[torch.Tensor], list[weakref.ref[torch.nn.Module]]]] = {}
        self._on_module = on_module
        self._handles = [
            nn_module.register_module_module_registration_hook(self._child_registered),
            nn_module.register_module_parameter_registration_hook(self._tensor_registered),
            nn_module.register_module_buffer_registration_hook(self._module_only),
        ]

    def remove(self) -> None:
        """Remove the global hooks (idempotent); what was learnt stays readable."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- the hooks (never raise, never replace what is registered) ------------------------------------------------
    def _see(self, module: torch.nn.Module) -> None:
        key = id(module)
        ref = self._seen.get(key)
        if ref is not None and ref() is module:
            return
        self._seen[key] = weakref.ref(module, lambda _ref, key=key: self._forget(key))
        if self._on_module is not None:
            self._on_module(module)

    def _forget(self, key: int) -> None:
        self._seen.pop(key, None)
        self._parents.pop(key, None)

    def _child_registered(self, parent: torch.nn.Module, name: str, child: Any) -> None:
        try:
            self._see(parent)
            if isinstance(child, torch.nn.Module):
                self._see(child)
                refs = self._parents.setdefault(id(child), [])
                if not any(ref() is parent for ref in refs):
                    refs.append(weakref.ref(parent))
        except Exception:  # noqa: BLE001 - building a model must never fail because of torchscope
            pass

    def _tensor_registered(self, owner: torch.nn.Module, name: str, param: Any) -> None:
        try:
            self._see(owner)
            if not isinstance(param, torch.Tensor):
                return
            key = id(param)
            entry = self._owners.get(key)
            if entry is None or entry[0]() is not param:
                entry = (weakref.ref(param, lambda _ref, key=key: self._owners.pop(key, None)), [])
                self._owners[key] = entry
            if not any(ref() is owner for ref in entry[1]):
                entry[1].append(weakref.ref(owner))
        except Exception:  # noqa: BLE001
            pass

    def _module_only(self, owner: torch.nn.Module, name: str, buffer: Any) -> None:
        try:
            self._see(owner)
        except Exception:  # noqa: BLE001
            pass

    # -- reading ----------------------------------------------------------------------------------------------------
    def owners(self, param: torch.Tensor) -> list[torch.nn.Module]:
        """The live modules ``param`` was registered in; empty when it was never seen."""
        entry = self._owners.get(id(param))
        if entry is None or entry[0]() is not param:
            return []
        return [m for ref in entry[1] if (m := ref()) is not None and _holds(m, param)]

    def roots(self, module: torch.nn.Module) -> list[torch.nn.Module]:
        """The top-most live modules that hold ``module`` (itself when nothing holds it)."""
        found: dict[int, torch.nn.Module] = {}
        visited: set[int] = set()
        stack = [module]
        while stack:
            current = stack.pop()
            if id(current) in visited:
                continue
            visited.add(id(current))
            parents = [
                p for ref in self._parents.get(id(current), ()) if (p := ref()) is not None and _is_child(p, current)
            ]
            if parents:
                stack.extend(parents)
            else:
                found.setdefault(id(current), current)
        return list(found.values())

    def trained_roots(self, params: Iterable[torch.Tensor]) -> tuple[list[torch.nn.Module], list[torch.Tensor]]:
        """The modules to watch for an optimizer of ``params``, and the parameters no known module owns.

        A module to watch is a root of an owner of the parameters; a root without a forward of its own (a
        ``ModuleList`` or ``ModuleDict`` holding a generator and a discriminator) stands for its children that hold
        some of them.
        """
        params = [p for p in params if isinstance(p, torch.Tensor)]
        roots: dict[int, torch.nn.Module] = {}
        unknown = []
        for param in params:
            owners = self.owners(param)
            if not owners:
                unknown.append(param)
            for owner in owners:
                for root in self.roots(owner):
                    roots.setdefault(id(root), root)
        ids = {id(p) for p in params}
        return expand_holders(list(roots.values()), ids), unknown


def _holds(module: torch.nn.Module, param: torch.Tensor) -> bool:
    return any(p is param for p in module._parameters.values()) or any(b is param for b in module._buffers.values())


def _is_child(parent: torch.nn.Module, child: torch.nn.Module) -> bool:
    return any(c is child for c in parent._modules.values())


def expand_holders(modules: list[torch.nn.Module], param_ids: set[int]) -> list[torch.nn.Module]:
    """``modules`` with each one that has no forward replaced by its children holding some of ``param_ids``."""
    out: dict[int, torch.nn.Module] = {}
    stack = list(reversed(modules))
    while stack:
        module = stack.pop()
        if has_forward(module) or not module._modules:
            out.setdefault(id(module), module)
            continue
        children = [c for c in module.children() if any(id(p) in param_ids for p in c.parameters())]
        stack.extend(reversed(children))
    return list(out.values())


def modules_in_frames(
    frame: FrameType | None, params: list[torch.Tensor], skip: tuple[str, ...]
) -> list[torch.nn.Module]:
    """The top-most modules, among those the user's frames (from ``frame`` outwards) and ``__main__`` refer to, that
    hold some of ``params``: how a model that was loaded or copied rather than built is found.

    A frame's locals are looked at, and the attributes of its ``self``; files starting with ``skip`` are not the
    user's.
    """
    ids = {id(p) for p in params}
    candidates: dict[int, torch.nn.Module] = {}

    def consider(value: Any) -> None:
        is_new = isinstance(value, torch.nn.Module) and id(value) not in candidates
        if is_new and any(id(p) in ids for p in value.parameters()):
            candidates[id(value)] = value

    scopes: list[dict[str, Any]] = []
    while frame is not None:
        if not frame.f_code.co_filename.startswith(skip):
            scopes.append(frame.f_locals)
            owner = frame.f_locals.get("self")
            if owner is not None and hasattr(owner, "__dict__") and not isinstance(owner, torch.nn.Module):
                scopes.append(vars(owner))
        frame = frame.f_back
    main = sys.modules.get("__main__")
    if main is not None:
        scopes.append(vars(main))
    for scope in scopes:
        for value in list(scope.values()):
            consider(value)
    found = list(candidates.values())
    inner = {id(sub) for m in found for sub in m.modules() if sub is not m}
    return expand_holders([m for m in found if id(m) not in inner], ids)


__all__ = ["ModuleTree", "expand_holders", "has_forward", "modules_in_frames"]
