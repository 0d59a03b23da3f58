"""What ``run.log`` accepts: string tags and single real numbers, checked on the training thread without a host sync.

Accepted values: ``float`` and ``int`` (ints beyond a float's range are not), ``bool`` (1.0 / 0.0), numpy scalars
and one-element numpy arrays of a bool, integer or float dtype (converted here), and one-element torch tensors of a
real dtype (kept as tensors: the writer thread calls ``.item()``, so the training thread never waits for the device).
NaN and ±Inf are numbers and are kept. Anything else (strings, even ``"1.5"``, ``None``, lists, dicts, complex
numbers, tensors of more than one element) is dropped.

Tags must be non-empty ``str`` (a ``str`` subclass such as a ``StrEnum`` member is stored as its plain text) without
NUL characters or unpaired surrogates (which no database stores the same way). A tag of any other type is dropped,
not converted: ``1`` and ``"1"`` would become one series, and ``str(("a", 1))`` is rarely what was meant.

Each dropped value counts in ``run.dropped`` and is warned once per run (per tag, or per kind of bad tag) at the
``run.log`` line that logged it.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Callable, Mapping
from typing import Any

_FLOAT_MAX_INT = int(sys.float_info.max)  # an int beyond this overflows a float

FLOATS = frozenset({float})
"""The value types that need no check (run.log's fast path)."""
STEP_MIN, STEP_END = -(2**63), 2**63
"""A step is an int64 above its minimum (which the store reserves)."""
_REAL_KINDS = ("b", "i", "u", "f")  # numpy dtype kinds: bool, signed, unsigned, float
_ADVICE = "log one real number per tag, e.g. run.log({'loss': loss.item()})"


def check_step(step: Any) -> int | None:
    """``step`` as a Python int, or None when it is not an integer inside int64 (whose minimum the store reserves)."""
    if type(step) is not int:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            return None
        step = int(step)
    return step if STEP_MIN < step < STEP_END else None


def clean(data: Mapping[Any, Any], known: set[str], drop: Callable[[str, str], None]) -> dict[str, Any]:
    """The loggable ``{tag: value}`` of ``data``; every other entry goes to ``drop(key, message)``.

    ``known`` holds the tags already seen to be valid (a set lookup is the whole check for them); new valid tags are
    added to it.
    """
    # the common case, checked with C-level iteration only (run.log's hot path): known tags, plain floats
    if known.issuperset(data) and FLOATS.issuperset(map(type, data.values())):
        return dict(data)
    out: dict[str, Any] = {}
    for tag, value in data.items():
        name = _tag(tag, known, drop)
        if name is None:
            continue
        number = _value(value)
        if number is None:
            big = type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool))
            what = "is too large for a float (beyond ±1.8e308)" if big else "is not a single real number"
            drop(f"log-value:{name}", f"torchscope: run.log dropped the value of {name!r}: {_describe(value)} {what}; "
                 f"{_ADVICE}")  # fmt: skip
            continue
        out[name] = number
    return out


def _tag(tag: Any, known: set[str], drop: Callable[[str, str], None]) -> str | None:
    if tag in known and type(tag) is str:
        return tag
    if not isinstance(tag, str):
        drop(f"log-tag-type:{type(tag).__name__}", f"torchscope: run.log dropped a value logged under the "
             f"{type(tag).__name__} tag {tag!r:.60}: tags must be strings, e.g. run.log({{'loss': 0.5}})")  # fmt: skip
        return None
    name = str.__str__(tag)
    problem = None
    if not name:
        problem = "an empty tag"
    elif "\x00" in name:
        problem = "a tag with a NUL character"
    else:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            problem = "a tag that is not valid Unicode text (an unpaired surrogate)"
    if problem is not None:
        drop(f"log-tag:{problem}", f"torchscope: run.log dropped a value logged under {problem} ({name!r:.60}); "
             "name it with non-empty text, e.g. run.log({'loss': 0.5})")  # fmt: skip
        return None
    known.add(name)
    return name


def _value(value: Any) -> Any:
    """``value`` as a float (or a one-element torch tensor, read on the writer thread); None when it is not one real
    number."""
    kind = type(value)
    if kind is float:
        return value
    if kind is int or kind is bool:
        return _float(value)
    if isinstance(value, (str, bytes, complex)) or value is None:
        return None
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        ok = value.numel() == 1 and not value.is_complex() and value.device.type != "meta"
        return value.detach().reshape(()) if ok else None  # 0-d: one number in the writer's arrays, not a row
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(value, "size", None) == 1 and getattr(dtype, "kind", None) in _REAL_KINDS:
        return _float(value.item() if hasattr(value, "item") else value)  # numpy scalars and one-element arrays
    if isinstance(value, numbers.Real) and dtype is None:
        return _float(value)
    return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (OverflowError, TypeError, ValueError):
        return None


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"
