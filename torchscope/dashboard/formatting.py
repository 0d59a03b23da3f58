"""Human-readable times, durations and values for the terminal and the dashboard. Pure functions."""

from __future__ import annotations

import math
import time


def fmt_time(ns: int | float | None) -> str:
    """Local wall-clock time of an epoch-nanosecond timestamp, ``YYYY-MM-DD HH:MM:SS``; ``-`` when missing."""
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(ns) / 1e9))


def fmt_duration(ns: int | float | None) -> str:
    """``1h 02m``, ``3m 05s``, ``4.2s``, ``15ms``, ``12µs``; ``-`` when missing."""
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return "-"
    seconds = int(ns) / 1e9
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    if seconds >= 1:
        return f"{seconds:.1f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds * 1e6:.0f}µs"


def fmt_value(value: float | None) -> str:
    """A scalar with 4 significant digits; ``NaN``, ``+Inf``, ``-Inf`` spelled out; ``-`` when missing."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"
