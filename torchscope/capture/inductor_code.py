"""Which FX nodes (so which modules) each kernel of Inductor's generated code computes: read from the code itself.

Inductor writes its output code (the ``inductor_output_code`` entry of the structured trace) with a comment before
extern calls, and with a comment before kernels where it has one, naming the FX nodes of Dynamo's graph they come
from: ``# Topologically Sorted Source Nodes: [linear, relu], Original ATen: [aten.addmm, aten.relu]``. Where a
generated kernel has no such comment (CPU C++ kernels), its name says which ops it fused
(``cpp_fused_mul_relu_0``): those ops are matched to the graph's nodes by name. Pure functions over text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

_SOURCE = re.compile(r"#.*Source Nodes: \[([^\]]*)\], Original ATen: \[([^\]]*)\]")
_DEFINE = re.compile(r"^(\w+) = async_compile\.(cpp_pybinding|cpp|triton)\(")
_EXTERN = re.compile(r"^\s*(?:\w+ = )?extern_kernels\.(\w+)\(")
_ATEN = re.compile(r"^\s*(?:\w+ = )?torch\.ops\.aten\.(\w+)\.")
_CALL = re.compile(r"^\s*(\w+)(?:\.run)?\(")
_SUFFIX = re.compile(r"_\d+$")


class Kernel(NamedTuple):
    """One call of the generated code: a generated kernel or an extern op, with its source FX nodes."""

    name: str
    kind: str  # cpp | triton | extern
    profiler_name: str
    source_nodes: list[str]
    aten: list[str]
    by_name: bool  # the source nodes were matched from the kernel's name (no comment)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def fused_ops(kernel: str) -> str:
    """The op part of a generated kernel's name: ``cpp_fused_mul_relu_0`` -> ``mul_relu``."""
    body = _SUFFIX.sub("", kernel)
    for prefix in ("cpp_fused_", "triton_poi_fused_", "triton_red_fused_", "triton_per_fused_", "triton_tem_fused_",
                   "triton_fused_", "cpp_"):  # fmt: skip
        if body.startswith(prefix):
            return body[len(prefix) :]
    return body


def parse_kernels(code: str, targets: Mapping[str, str]) -> list[Kernel]:
    """The calls of ``code``'s ``call`` function in order; ``targets``: FX node name -> op name (``relu``, ``mul``)
    of the frame's Dynamo graph, to match kernels without a source comment by the ops in their names."""
    defined: dict[str, tuple[str, list[str], list[str]]] = {}
    comment: tuple[list[str], list[str]] | None = None
    calls: list[Kernel] = []
    in_call = False
    for line in code.splitlines():
        found = _SOURCE.search(line)
        if found:
            comment = (_names(found.group(1)), _names(found.group(2)))
            continue
        define = _DEFINE.match(line)
        if define:
            kind = "triton" if define.group(2) == "triton" else "cpp"
            nodes, aten = comment if comment else ([], [])
            defined[define.group(1)] = (kind, nodes, aten)
            comment = None
            continue
        if line.startswith("    def call(self, args)") or line.startswith("def call(args)"):
            in_call = True
            continue
        if not in_call:
            continue
        if line.startswith(("    def ", "def ", "class ", "runner = ")) and not line.startswith("        "):
            break
        extern = _EXTERN.match(line) or _ATEN.match(line)
        if extern:
            nodes, aten = comment if comment else ([], [])
            calls.append(Kernel(extern.group(1), "extern", f"aten::{extern.group(1)}", nodes, aten, False))
            comment = None
            continue
        call = _CALL.match(line)
        if call and call.group(1) in defined:
            kind, nodes, aten = defined[call.group(1)]
            by_name = not nodes
            if by_name:
                nodes = match_by_name(call.group(1), targets)
            calls.append(Kernel(call.group(1), kind, call.group(1), nodes, aten, by_name))
            comment = None
    return calls


def match_by_name(kernel: str, targets: Mapping[str, str]) -> list[str]:
    """FX nodes whose op appears in a generated kernel's name (``cpp_fused_mul_relu_0``: the ``mul`` and ``relu``
    nodes)."""
    ops = f"_{fused_ops(kernel)}_"
    return [name for name, op in targets.items() if op and f"_{op}_" in ops]


def common_module(modules: Iterable[str | None]) -> str | None:
    """The innermost module holding all of ``modules`` (their common dotted prefix; '' the root), None if none."""
    paths = [m for m in modules if m is not None]
    if not paths:
        return None
    parts = [p.split(".") if p else [] for p in paths]
    shared: list[str] = []
    for group in zip(*parts):
        if len(set(group)) != 1:
            break
        shared.append(group[0])
    return ".".join(shared)
