"""Statistics of one tensor, computed on the tensor's own device, gathered to the host once per step.

A tensor's statistics are one row of float64 numbers (layout in :mod:`torchscope.capture.stats_layout`). On the CPU
the row is computed right away (reading a CPU scalar costs no synchronisation). On an accelerator the tensor is copied
when it is produced and reduced in batches by device ops only — no ``.item()``, no boolean indexing, no data-dependent
shapes (:mod:`torchscope.capture.device_stats`); the rows stay on the device until :meth:`StatsBatch.gather` copies
them to the host with one transfer.

Statistics are taken (or the values copied) when the tensor is produced, so a later in-place op cannot change them.
``min, max, mean, std, norm`` and the histogram are over the finite elements; NaN, +Inf and -Inf are counted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from torchscope.capture.device_stats import DeviceStats
from torchscope.capture.stats_layout import BINS, HIST, HIST_MAX, SAMPLE, SAMPLE_AT, WIDTH, scattered_positions

_NAN = float("nan")
_INF = float("inf")


def _as_float(x: torch.Tensor) -> torch.Tensor | None:
    """``x`` detached as float32/float64, or None for dtypes that have no meaningful statistics (complex)."""
    x = x.detach()
    if x.is_complex():
        return None
    if x.dtype in (torch.float32, torch.float64):
        return x
    if x.is_floating_point() or x.dtype == torch.bool:
        return x.float()
    return x.double()  # integers: float64 keeps them exact up to 2**53


def _sample_stride(numel: int) -> int:
    return max(1, numel // SAMPLE)


def _hist_source(finite: torch.Tensor) -> torch.Tensor:
    """The elements the histogram counts: all of them, or ``HIST_MAX`` of them at fixed scattered positions."""
    n = finite.numel()
    if n <= HIST_MAX:
        return finite
    return finite[_scattered_index(n, finite.device)]


_index_cache: dict[tuple[int, torch.device], torch.Tensor] = {}


def _scattered_index(n: int, device: torch.device) -> torch.Tensor:
    """:func:`~torchscope.capture.stats_layout.scattered_positions` as a tensor; cached, as sizes recur every step."""
    key = (n, device)
    index = _index_cache.get(key)
    if index is None:
        if len(_index_cache) > 256:
            _index_cache.clear()
        index = _index_cache[key] = torch.from_numpy(scattered_positions(n)).to(device)
    return index


def _empty_row(numel: int) -> np.ndarray:
    row = np.full(WIDTH, np.nan)
    row[0] = numel
    row[6:10] = 0
    row[12] = 0
    row[HIST : HIST + BINS] = 0
    return row


NUMPY_MAX = HIST_MAX
"""CPU tensors up to this many elements are reduced by numpy (a torch call costs several microseconds whatever its
size, a numpy call about one, and a small tensor's statistics are a dozen calls); being at most :data:`HIST_MAX`,
their histogram and zero count are exact, as on every device."""


def _numpy_row(flat: np.ndarray) -> np.ndarray:
    """The statistics row of a small flat float array (``numel <= NUMPY_MAX``)."""
    numel = flat.size
    row = np.empty(WIDTH)
    row[0] = numel
    finite_mask = np.isfinite(flat)
    if finite_mask.all():
        finite = flat
        row[6:9] = 0
    else:
        row[6] = np.count_nonzero(np.isnan(flat))
        row[7] = np.count_nonzero(flat == _INF)
        row[8] = np.count_nonzero(flat == -_INF)
        finite = flat[finite_mask]
    n = finite.size
    if n == 0:
        row[[1, 2, 3, 4, 5, 10, 11]] = _NAN
        row[9] = row[12] = 0
        row[HIST : HIST + BINS] = 0
    else:
        wide = finite.astype(np.float64)
        lo, hi = float(wide.min()), float(wide.max())
        mean = float(wide.sum()) / n
        deviation = wide - mean
        row[1], row[2], row[3] = lo, hi, mean
        row[4] = math.sqrt(float(np.dot(deviation, deviation)) / max(n - 1, 1))
        row[5] = math.sqrt(float(np.dot(wide, wide)))
        h_lo, h_hi = (lo - 1, hi + 1) if lo == hi else (lo, hi)
        row[9] = n - np.count_nonzero(wide)
        bins = np.clip(np.floor((wide - h_lo) * BINS / (h_hi - h_lo)), 0, BINS - 1).astype(np.intp)
        row[10], row[11], row[12] = h_lo, h_hi, n
        row[HIST : HIST + BINS] = np.bincount(bins, minlength=BINS)
    sample = flat[:: _sample_stride(numel)][:SAMPLE]
    row[SAMPLE_AT : SAMPLE_AT + sample.size] = sample
    row[SAMPLE_AT + sample.size :] = _NAN
    return row


def cpu_row(x: torch.Tensor) -> np.ndarray:
    """The statistics row of a CPU tensor (host values are free here, so finite tensors take a short path)."""
    numel = x.numel()
    xf = _as_float(x)
    if xf is None or numel == 0:
        return _empty_row(numel)
    flat = xf.reshape(-1)
    if numel <= NUMPY_MAX:
        return _numpy_row(flat.numpy())
    row = np.empty(WIDTH)
    row[0] = numel
    lo_t, hi_t = torch.aminmax(flat)
    lo, hi = lo_t.item(), hi_t.item()
    if math.isfinite(lo) and math.isfinite(hi):
        finite = flat
        row[6:9] = 0
    else:  # NaN propagates through aminmax; count the non-finite values and keep the finite ones
        isnan = torch.isnan(flat)
        row[6] = int(isnan.sum())
        row[7] = int((flat == _INF).sum())
        row[8] = int((flat == -_INF).sum())
        finite = flat[torch.isfinite(flat)]
        if finite.numel():
            lo_t, hi_t = torch.aminmax(finite)
            lo, hi = lo_t.item(), hi_t.item()
    n = finite.numel()
    if n == 0:
        row[[1, 2, 3, 4, 5, 10, 11]] = _NAN
        row[9] = row[12] = 0
        row[HIST : HIST + BINS] = 0
    else:
        mean = finite.sum().item() / n
        norm = torch.linalg.vector_norm(finite).item()
        row[1], row[2], row[3], row[5] = lo, hi, mean, norm
        # the std from the sum of squares costs no pass; when the mean dwarfs the spread that formula cancels
        # catastrophically, and a second pass over the deviations gives it exactly (std_mean is far slower)
        spread = norm * norm - n * mean * mean
        if spread > 1e-3 * norm * norm:
            row[4] = math.sqrt(spread / max(n - 1, 1))
        else:
            row[4] = torch.linalg.vector_norm(finite - mean).item() / math.sqrt(max(n - 1, 1))
        h_lo, h_hi = (lo - 1, hi + 1) if lo == hi else (lo, hi)  # as torch.histc does for a constant tensor
        source = _hist_source(finite)
        zeros = int((source == 0).sum())
        row[9] = zeros if source.numel() == n else round(zeros * n / source.numel())
        row[10], row[11], row[12] = h_lo, h_hi, source.numel()
        row[HIST : HIST + BINS] = torch.histc(source, BINS, h_lo, h_hi).numpy()
    sample = flat[:: _sample_stride(numel)][:SAMPLE]
    row[SAMPLE_AT : SAMPLE_AT + sample.numel()] = sample.double().numpy()
    row[SAMPLE_AT + sample.numel() :] = _NAN
    return row


class StatsBatch:
    """The statistics rows of one captured step, in the order they were taken; one host transfer in total.

    CPU tensors get their row at once (:func:`cpu_row`). Other devices stage the tensor for a batched reduction
    (:mod:`torchscope.capture.device_stats`); ``force_device_path`` sends CPU tensors that way too (for tests).
    """

    def __init__(self, force_device_path: bool = False) -> None:
        self.meta: list[tuple[Any, ...]] = []
        self._rows: list[np.ndarray | tuple[tuple[torch.device, torch.dtype], int]] = []
        self._devices: dict[tuple[torch.device, torch.dtype], DeviceStats] = {}
        self._force_device = force_device_path

    def add(self, x: torch.Tensor, meta: tuple[Any, ...]) -> int:
        """Take the statistics of ``x`` now; ``meta`` describes it (node, output, role, ...). Returns its row index."""
        numel = x.numel()
        if x.layout != torch.strided or x.is_quantized or x.device.type == "meta" or x.is_complex() or numel == 0:
            row: Any = _empty_row(numel)  # sparse, quantized, meta, complex, empty: the size only
        elif x.device.type == "cpu" and not self._force_device:
            row = cpu_row(x)
        else:
            wide = x.dtype == torch.float64 or not (x.is_floating_point() or x.dtype == torch.bool)
            key = (x.device, torch.float64 if wide else torch.float32)
            staged = self._devices.get(key)
            if staged is None:
                staged = self._devices[key] = DeviceStats(*key)
            row = (key, staged.add(x))
        self._rows.append(row)
        self.meta.append(meta)
        return len(self._rows) - 1

    def __len__(self) -> int:
        return len(self._rows)

    def gather(self) -> np.ndarray:
        """Every row as one ``(n, WIDTH)`` float64 array: one transfer per device (and compute dtype)."""
        out = np.empty((len(self._rows), WIDTH))
        host = {key: staged.rows().cpu().numpy() for key, staged in self._devices.items()}  # the transfers
        for i, row in enumerate(self._rows):
            out[i] = row if isinstance(row, np.ndarray) else host[row[0]][row[1]]
        return out
