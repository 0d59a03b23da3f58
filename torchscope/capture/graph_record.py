"""Recording one captured step: every torch-API call the forward made, the tensors between them, the module calls.

The level of ops the graph shows is **the torch API as Python code calls it**: each call of a ``torch.*`` function,
a ``torch.nn.functional`` function, a ``Tensor`` method, operator (``x + y``, ``x[i]``) or tensor-valued property
(``x.T``) that returns a tensor or changes one in place is one op node. What such a call does inside (``F.layer_norm``
calling ``torch.layer_norm``, ``nn.MultiheadAttention`` running ``F.multi_head_attention_forward``) is part of that
one node. Calls that return no tensor (``x.shape``, ``x.dim()``, ``bool(x)``) are not ops. The calls are seen by a
:class:`torch.overrides.TorchFunctionMode` that is active only while a captured step's forward runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from torchscope.user_code import user_location

Node = tuple[Any, ...]
NODE_FIELDS = (
    "id", "kind", "name", "op", "module", "parent", "call", "file", "line", "order", "depth", "target",
    "in_shapes", "out_shapes", "out_dtypes",
)  # fmt: skip
"""Fields of a node tuple, in order (the ``graph_nodes`` table and ``store.graph`` columns)."""
EDGE_FIELDS = ("src", "src_output", "dst", "dst_arg", "kind", "shape", "dtype")

_INPLACE_DUNDERS = frozenset(
    {"__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__", "__ipow__",
     "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__", "__imatmul__"}
)  # fmt: skip
_PREFIX = {
    "torch": "torch.",
    "torch._C._nn": "F.",
    "torch.nn.functional": "F.",
    "torch._C._linalg": "torch.linalg.",
    "torch._C._fft": "torch.fft.",
    "torch._C._special": "torch.special.",
    "torch.functional": "torch.",
}
_func_info: dict[Any, tuple[str, bool]] = {}


def func_info(func: Any) -> tuple[str, bool]:
    """``(display name, in place?)`` of a torch function, e.g. ``("torch.cat", False)``, ``("Tensor.relu_", True)``."""
    hit = _func_info.get(func)
    if hit is not None:
        return hit
    name = getattr(func, "__name__", None) or type(func).__name__
    owner = getattr(func, "__self__", None)
    if name == "__get__" and owner is not None:  # a tensor property such as x.T
        label = f"Tensor.{getattr(owner, '__name__', 'property')}"
    else:
        qual = getattr(func, "__qualname__", name) or name
        module = getattr(func, "__module__", None)
        if qual.startswith(("TensorBase.", "Tensor.")):
            label = "Tensor." + qual.split(".", 1)[1]
        elif module in _PREFIX:
            label = _PREFIX[module] + name
        elif module:
            label = f"{module}.{name}"
        else:
            label = name
    inplace = (name.endswith("_") and not name.endswith("__")) or name in _INPLACE_DUNDERS
    hit = _func_info[func] = (label, inplace)
    return hit


def shape_text(shapes: list[tuple[int, ...]]) -> str:
    """Shapes as a JSON list of lists, e.g. ``[[16, 64], [64]]``."""
    return "[" + ", ".join("[" + ", ".join(map(str, s)) + "]" for s in shapes) + "]"


def one_shape(t: torch.Tensor) -> str:
    """A tensor's shape as a JSON list, e.g. ``[16, 64]``."""
    return "[" + ", ".join(map(str, t.shape)) + "]"


def dtype_name(t: torch.Tensor) -> str:
    """A tensor's dtype without the ``torch.`` prefix, e.g. ``float32``."""
    return str(t.dtype).removeprefix("torch.")


def _tensors_in(value: Any, label: str, into: list[tuple[torch.Tensor, str]]) -> None:
    """Tensors among an argument (a tensor or a list/tuple of them, as ``torch.cat`` takes) with their labels."""
    if isinstance(value, torch.Tensor):
        into.append((value, label))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if isinstance(item, torch.Tensor):
                into.append((item, f"{label}.{i}"))


def _nonfinite_constant(args: Any) -> bool:
    """Whether a Python number among ``args`` (or in a list/tuple there) is NaN or ±Inf."""
    for arg in args:
        if isinstance(arg, float) and not math.isfinite(arg):
            return True
        if isinstance(arg, (list, tuple)) and any(isinstance(a, float) and not math.isfinite(a) for a in arg):
            return True
    return False


def _outputs(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for t in out if isinstance(t, torch.Tensor)]
    return []


def named_tensors(value: Any, name: str, depth: int = 0) -> list[tuple[str, torch.Tensor]]:
    """The tensors inside nested tuples, lists, mappings (``ModelOutput`` too) and dataclasses, named by their path:
    ``input[0]``, ``output['logits']``, ``output[1].hidden``."""
    if isinstance(value, torch.Tensor):
        return [(name, value)]
    if depth > 8 or isinstance(value, (str, bytes)):
        return []
    found: list[tuple[str, torch.Tensor]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found += named_tensors(item, f"{name}[{key!r}]", depth + 1)
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            found += named_tensors(item, f"{name}[{i}]", depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            found += named_tensors(getattr(value, field.name), f"{name}.{field.name}", depth + 1)
    return found


class StepRecord:
    """The graph of one captured step under construction; see the module docstring for what an op is.

    ``observe(tensor, node, output)`` is called for every tensor the graph gets (op outputs, inputs,
    parameters) so that the caller can take statistics and register gradient hooks; it must not raise.
    """

    def __init__(
        self,
        paths: dict[int, str],
        params: dict[int, tuple[str, str]],
        observe: Callable[[torch.Tensor, int, int], None],
    ) -> None:
        self.paths = paths
        self.params = params
        self.observe = observe
        self.nodes: list[Node] = []
        self.edges: list[tuple[Any, ...]] = []
        self.producer: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.stack: list[tuple[int, int, str]] = []  # (module node id, id(module), path)
        self.calls: dict[str, int] = {}
        self.op_counts: dict[str, int] = {}
        self.n_ops = 0
        self.thread = threading.get_ident()
        self.failed: BaseException | None = None
        self.deliberate: set[int] = set()
        """Ops given a non-finite Python constant (an attention mask's -inf): their NaN/Inf is intended."""

    # -- nodes other than ops ---------------------------------------------------------------------------------------
    def _add(self, kind: str, name: str, op: str | None, tensors: list[torch.Tensor], **fields: Any) -> int:
        node_id = len(self.nodes)
        parent = self.stack[-1][0] if self.stack else None
        module = fields.get("module", self.stack[-1][2] if self.stack else None)
        self.nodes.append(
            (
                node_id, kind, name, op, module, fields.get("parent", parent), fields.get("call"),
                fields.get("file"), fields.get("line"), fields.get("order"), fields.get("depth", len(self.stack)),
                fields.get("target"), fields.get("in_shapes"),
                shape_text([tuple(t.shape) for t in tensors]) if tensors else None,
                ("[" + ", ".join(f'"{dtype_name(t)}"' for t in tensors) + "]") if tensors else None,
            )
        )  # fmt: skip
        for i, t in enumerate(tensors):
            self.producer[t] = (node_id, i)
            self.observe(t, node_id, i)
        return node_id

    def add_tensors(self, kind: str, leaves: list[tuple[str, torch.Tensor]], to_graph: bool) -> None:
        """Input nodes (``to_graph=False``) or output nodes (edges from the producer) for named tensors."""
        for name, t in leaves:
            if to_graph:
                src, src_out = self.source(t)
                node_id = len(self.nodes)
                self.edges.append((src, src_out, node_id, "0", "data", one_shape(t), dtype_name(t)))
                self.nodes.append(
                    (node_id, kind, name, None, self.stack[-1][2] if self.stack else None,
                     self.stack[-1][0] if self.stack else None, None, None, None, None, len(self.stack), None,
                     shape_text([tuple(t.shape)]), None, None)
                )  # fmt: skip
            else:
                self._add(kind, name, None, [t])

    def source(self, t: torch.Tensor) -> tuple[int, int]:
        """The ``(node, output)`` that produced ``t``, creating a param/buffer/const node on first sight."""
        hit = self.producer.get(t)
        if hit is not None:
            return hit
        known = self.params.get(id(t))
        if known is not None:
            name, kind = known
            owner = name.rpartition(".")[0]
            # in the box of the module call that owns it, so that collapsing the module hides it too
            level = next((i for i in range(len(self.stack) - 1, -1, -1) if self.stack[i][2] == owner), None)
            parent = self.stack[level][0] if level is not None else None
            depth = level + 1 if level is not None else 0
            node = self._add(kind, name, None, [t], module=owner, parent=parent, depth=depth)
        else:  # a tensor made outside the captured forward (a global, a closure, another thread)
            node = self._add("const", f"const_{len(self.nodes)}", None, [t])
        return node, 0

    # -- module calls -----------------------------------------------------------------------------------------------
    def enter_module(self, module: torch.nn.Module, path: str) -> None:
        """Open a module-call node for ``module`` (at ``path`` in the watched model; its n-th call is ``name#n``)."""
        call = self.calls.get(path, 0)
        self.calls[path] = call + 1
        name = path or type(module).__name__
        if call:
            name = f"{name}#{call}"
        node = self._add("module", name, type(module).__name__, [], module=path, call=call)
        self.stack.append((node, id(module), path))

    def exit_module(self, module: torch.nn.Module) -> None:
        """Close ``module``'s innermost open call (and any call inside it left open by an exception)."""
        key = id(module)
        for i in range(len(self.stack) - 1, -1, -1):  # an exception may have skipped inner exits
            if self.stack[i][1] == key:
                del self.stack[i:]
                return

    def module_pre_hook(self, module: torch.nn.Module, args: Any) -> None:
        """Global module pre-hook while capturing: push a module-call node for modules of the watched model."""
        path = self.paths.get(id(module))
        if path is not None and self.failed is None and threading.get_ident() == self.thread:
            try:
                self.enter_module(module, path)
            except Exception as exc:  # noqa: BLE001 - never break the user's forward
                self.failed = exc

    def module_post_hook(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        """Global module hook while capturing: close the module-call node that :meth:`module_pre_hook` opened."""
        if id(module) in self.paths and self.failed is None and threading.get_ident() == self.thread:
            self.exit_module(module)

    # -- ops --------------------------------------------------------------------------------------------------------
    def on_op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Record one torch-API call (see the module docstring) whose result was ``out``."""
        label, inplace = func_info(func)
        target = kwargs.get("out")
        if target is not None:
            outs = _outputs(target)
        elif inplace:
            outs = [args[0]] if args and isinstance(args[0], torch.Tensor) else []
        else:
            outs = _outputs(out)
        if not outs:
            return
        inputs: list[tuple[torch.Tensor, str]] = []
        for i, arg in enumerate(args):
            _tensors_in(arg, str(i), inputs)
        for key, arg in kwargs.items():
            if key != "out":
                _tensors_in(arg, key, inputs)
        sources = [(self.source(t), label_, t) for t, label_ in inputs]
        node_id = len(self.nodes)
        if _nonfinite_constant(args) or _nonfinite_constant(kwargs.values()):
            self.deliberate.add(node_id)
        for (src, src_out), arg_label, t in sources:
            self.edges.append((src, src_out, node_id, arg_label, "data", one_shape(t), dtype_name(t)))
        file, line = user_location(3)
        count = self.op_counts.get(label, 0)
        self.op_counts[label] = count + 1
        short = label.rpartition(".")[2]
        order = self.n_ops
        self.n_ops += 1
        self._add(
            "op", f"{short}_{count}", label, outs, file=file, line=line, order=order,
            in_shapes=shape_text([tuple(t.shape) for t, _ in inputs]),
        )  # fmt: skip

    def grad_nodes(self, targets: list[tuple[int, int]]) -> list[int]:
        """Append one ``grad`` node per ``(node, output)`` target and the backward edges between them."""
        first = len(self.nodes)
        by_target = {}
        for k, (node, output) in enumerate(targets):
            base = self.nodes[node]
            name = f"grad:{base[2]}" + (f"[{output}]" if output else "")
            shapes = base[13]
            out_shape = None
            if shapes:
                out_shape = "[" + _json_list_item(shapes, output) + "]"
            dtypes = base[14]
            out_dtype = "[" + _json_list_item(dtypes, output) + "]" if dtypes else None
            self.nodes.append(
                (first + k, "grad", name, None, base[4], base[5], None, None, None, None, base[10], node, None,
                 out_shape, out_dtype)
            )  # fmt: skip
            by_target[(node, output)] = first + k
        producers_grads: dict[int, list[int]] = {}
        for (node, _output), grad in by_target.items():
            producers_grads.setdefault(node, []).append(grad)
        for src, src_out, dst, _arg, kind, shape, dtype in list(self.edges):
            grad_src = by_target.get((src, src_out))
            if kind != "data" or grad_src is None:
                continue
            for grad_dst in producers_grads.get(dst, ()):
                self.edges.append((grad_dst, 0, grad_src, "grad", "grad", shape, dtype))
        return [by_target[t] for t in targets]


def _json_list_item(text: str, index: int) -> str:
    """Item ``index`` of a JSON list of shapes or dtypes written by this module, as JSON."""
    return json.dumps(json.loads(text)[index])


class GraphMode(TorchFunctionMode):
    """Sends every torch-API call of the thread that entered it to :meth:`StepRecord.on_op`; after a failure the
    record stops growing and the step is dropped when the forward returns."""

    def __init__(self, record: StepRecord) -> None:
        super().__init__()
        self.record = record

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        if kwargs is None:
            kwargs = {}
        out = func(*args, **kwargs)
        record = self.record
        if record.failed is None:
            try:
                record.on_op(func, args, kwargs, out)
            except Exception as exc:  # noqa: BLE001 - a capture bug must not break the user's forward
                record.failed = exc  # reported once, when the forward returns
        return out
