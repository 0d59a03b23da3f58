"""The layout of a tensor's statistics row, shared by the CPU path (:mod:`torchscope.capture.tensor_stats`) and the
batched device path (:mod:`torchscope.capture.device_stats`), so that neither imports the other for it.

A row is :data:`WIDTH` float64 numbers: the :data:`SCALARS`, then :data:`BINS` histogram counts, then :data:`SAMPLE`
sampled values (names in :data:`COLUMNS`).
"""

from __future__ import annotations

import numpy as np

BINS = 32
"""Histogram bins, spread evenly over ``[hist_lo, hist_hi]`` (the finite min and max)."""
SAMPLE = 16
"""Values sampled from each tensor, evenly strided over its flattened elements (first element included)."""

HIST_MAX = 8192
"""Tensors up to this many elements get an exact histogram and zero count; for larger ones both are taken over this
many elements at fixed pseudo-random positions, the zero count scaled to the tensor (an estimate). Exact histograms
and zero counts cost as much as a matmul on the CPU. No RNG is consumed."""
_PRIME = 1_000_003

SCALARS = (
    "numel", "min", "max", "mean", "std", "norm", "nan", "posinf", "neginf", "zeros", "hist_lo", "hist_hi", "hist_n",
)  # fmt: skip
COLUMNS = SCALARS + tuple(f"hist{i}" for i in range(BINS)) + tuple(f"sample{i}" for i in range(SAMPLE))
WIDTH = len(COLUMNS)
HIST = len(SCALARS)
"""Where the histogram counts start in a row."""
SAMPLE_AT = HIST + BINS
"""Where the sampled values start in a row."""


def scattered_positions(n: int) -> np.ndarray:
    """:data:`HIST_MAX` distinct positions spread over ``range(n)`` (``n > HIST_MAX``), the same on every device."""
    prime = _PRIME if n % _PRIME else _PRIME + 2  # coprime with n, so the positions are distinct
    return (np.arange(HIST_MAX, dtype=np.int64) * prime) % n
