"""Every number and name as people read it, for the dashboard and the terminal (the CLI imports this). Pure.

Times are integer nanoseconds everywhere in torchscope; these functions pick the unit. A missing value (None or
NaN) prints as ``-`` unless a function says otherwise. Charts and grids that format in the browser (d3 formats in
hover templates and value formatters) keep their own format strings: those run in JavaScript.
"""

from __future__ import annotations

import html
import math
import re
import time
from typing import Any

import pandas as pd

_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"))
_BYTES = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def is_missing(value: Any) -> bool:
    """Whether ``value`` stands for nothing: None, NaN (float or numpy) or pandas' NA."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pd.NA are not equal to themselves (NA answers NA: bool raises)
    except TypeError:
        return True


def fmt_time(ns: int | float | None) -> str:
    """Local wall-clock time of an epoch-nanosecond timestamp, ``YYYY-MM-DD HH:MM:SS``; ``-`` when missing."""
    if is_missing(ns):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(ns) / 1e9))  # type: ignore[arg-type]


def fmt_duration(ns: int | float | None) -> str:
    """A length of time at a glance: ``1h 02m``, ``3m 05s``, ``4.2s``, ``15ms``, ``12µs``; ``-`` when missing."""
    if is_missing(ns):
        return "-"
    seconds = int(ns) / 1e9  # type: ignore[arg-type]
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    if seconds >= 1:
        return f"{seconds:.1f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds * 1e6:.0f}µs"


def fmt_ns(ns: float | None, signed: bool = False) -> str:
    """A time to 4 significant digits in the largest unit that keeps it >= 1: ``1.234ms``, ``+311µs``, ``0ns``
    (``signed``: a ``+`` on positive values); ``-`` when missing."""
    if is_missing(ns):
        return "-"
    sign = "+" if signed and ns > 0 else ""  # type: ignore[operator]
    for scale, unit in _UNITS:
        if abs(ns) >= scale:  # type: ignore[arg-type]
            return f"{sign}{ns / scale:.4g}{unit}"  # type: ignore[operator]
    return f"{sign}{ns:.4g}ns"


def fmt_ms(ns: float | None, decimals: int = 3, *, signed: bool = False, unit: bool = True) -> str:
    """Nanoseconds as milliseconds with ``decimals`` places: ``1.500 ms`` (``signed``: ``+1.500 ms``; without
    ``unit``: ``1.500``, for a column headed in ms); ``-`` when missing."""
    if is_missing(ns):
        return "-"
    text = f"{ns / 1e6:{'+' if signed else ''}.{decimals}f}"  # type: ignore[operator]
    return f"{text} ms" if unit else text


def fmt_us(ns: float | None, decimals: int = 3, *, signed: bool = False, grouped: bool = False) -> str:
    """Nanoseconds as microseconds with ``decimals`` places: ``12.500 µs`` (``signed``: ``+12.500 µs``;
    ``grouped``: thousands separated, ``1,234.5 µs``); ``-`` when missing."""
    if is_missing(ns):
        return "-"
    spec = f"{'+' if signed else ''}{',' if grouped else ''}.{decimals}f"
    return f"{ns / 1e3:{spec}} µs"  # type: ignore[operator]


def fmt_bytes(n: float | None, unit: str = "MiB", decimals: int = 3) -> str:
    """A size in ``unit`` (``B``, ``KiB``, ``MiB``, ``GiB``) with ``decimals`` places: ``1.500 MiB``; ``-`` when
    missing."""
    if is_missing(n):
        return "-"
    return f"{n / _BYTES[unit]:.{decimals}f} {unit}"  # type: ignore[operator]


def fmt_pct(ratio: float | None, *, missing: str = "new") -> str:
    """A relative change (0.125 -> ``+12.5%``); ``missing`` (``new``: there was nothing before) for None or NaN."""
    if is_missing(ratio):
        return missing
    return f"{ratio * 100:+.1f}%"  # type: ignore[operator]


def fmt_value(value: float | None, *, nan: str = "NaN") -> str:
    """A scalar with 4 significant digits; ``nan`` (``NaN``) for NaN, ``+Inf``, ``-Inf`` spelled out; ``-`` for
    None."""
    if value is None or value is pd.NA:
        return "-"
    value = float(value)
    if math.isnan(value):
        return nan
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"


def fmt_steps(last_step: int | float | None) -> str:
    """How many steps a run took from its last step (``41`` -> ``42``); ``-`` before any."""
    return "-" if is_missing(last_step) else str(int(last_step) + 1)  # type: ignore[arg-type]


def truncate(text: str | None, width: int) -> str:
    """``text`` cut to ``width`` characters, the last one an ellipsis when anything was cut; ``""`` for None."""
    text = text or ""
    return text if len(text) <= width else text[: width - 1] + "…"


def chart_text(text: object) -> str:
    """A name as plotly text that shows literally. Plotly renders its own subset of HTML in titles, tick labels,
    legends, annotations and hover text (``<b>``, ``<a href>``, ``<br>`` …) and decodes entities, so a run, tag, op
    or kernel name goes into a chart with ``&``, ``<`` and ``>`` as entities. Cut a name (:func:`truncate`) first."""
    return html.escape(str(text), quote=False)


def short_name(name: object, width: int = 60) -> str:
    """A label that fits a chart's axis: C++ kernel signatures lose ``void`` and namespaces (the functor, which
    tells kernels apart, stays), then every name is cut at ``width`` characters."""
    text = str(name)
    if text.startswith("void ") or "<" in text:  # a C++ kernel signature; op names keep their aten:: namespace
        text = re.sub(r"\b[A-Za-z_]\w*::", "", text.removeprefix("void "))
    return truncate(text, width)
