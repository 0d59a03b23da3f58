"""Statistics rows of accelerator tensors, batched: a constant number of kernels per batch instead of per tensor.

A per-tensor statistics row takes a few dozen small kernels; on a GPU their launch cost, not the arithmetic, is what a
captured step would pay. So each tensor is only *staged*: copied, as one flat float32/float64 segment, with a single
copy kernel (the copy also freezes its values against later in-place ops). A batch of staged segments is reduced
together with segment reductions when it grows past :data:`FLUSH_ELEMENTS` or when the step ends. Everything stays on
the device; the index tables the batch needs are built on the host from sizes the host already knows and sent with
non-blocking copies, so nothing here waits for the device. Rows have the layout of
:mod:`torchscope.capture.stats_layout` and match :func:`~torchscope.capture.tensor_stats.cpu_row`.
"""

from __future__ import annotations

import numpy as np
import torch

from torchscope.capture.stats_layout import BINS, HIST, HIST_MAX, SAMPLE, WIDTH, scattered_positions

FLUSH_ELEMENTS = 8 << 20
"""Staged elements per device and dtype after which a batch is reduced: the copies take up to 32 MiB (float32) and
the reduction's temporaries about 12x that, for a few dozen kernel launches per batch."""
_INF = float("inf")
_NAN = float("nan")


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    host = torch.from_numpy(array)
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


class DeviceStats:
    """Staged tensors of one device and compute dtype; :meth:`rows` reduces them into ``(n, WIDTH)`` float64 rows."""

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.dtype = dtype
        self._staged: list[torch.Tensor] = []
        self._lengths: list[int] = []
        self._blocks: list[torch.Tensor] = []
        self._elements = 0

    def add(self, x: torch.Tensor) -> int:
        """Stage ``x`` (one copy kernel); returns its row number among this object's rows."""
        flat = x.detach().reshape(-1).to(self.dtype, copy=True)
        self._staged.append(flat)
        self._lengths.append(flat.numel())
        self._elements += flat.numel()
        index = sum(len(b) for b in self._blocks) + len(self._staged) - 1
        if self._elements >= FLUSH_ELEMENTS:
            self._reduce()
        return index

    def rows(self) -> torch.Tensor:
        """Every row so far as one ``(n, WIDTH)`` float64 tensor on the device."""
        self._reduce()
        return torch.cat(self._blocks) if self._blocks else torch.empty((0, WIDTH), dtype=torch.float64)

    def _reduce(self) -> None:
        if not self._staged:
            return
        staged, lengths_host = self._staged, self._lengths
        self._staged, self._lengths, self._elements = [], [], 0
        self._blocks.append(_reduce(staged, lengths_host, self.device))


def _index_tables(lengths: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (into the concatenated data) of each segment's histogram subset and its segment ids; sample
    positions (``-1`` where a short tensor has fewer than :data:`SAMPLE` values)."""
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    hist_parts, seg_parts = [], []
    sample = np.full((len(lengths), SAMPLE), -1, dtype=np.int64)
    for i, (n, offset) in enumerate(zip(lengths, offsets)):
        positions = np.arange(n, dtype=np.int64) if n <= HIST_MAX else scattered_positions(n)
        hist_parts.append(positions + offset)
        seg_parts.append(np.full(len(positions), i, dtype=np.int64))
        strided = np.arange(0, n, max(1, n // SAMPLE), dtype=np.int64)[:SAMPLE]
        sample[i, : len(strided)] = strided + offset
    return np.concatenate(hist_parts), np.concatenate(seg_parts), sample


def _reduce(staged: list[torch.Tensor], lengths_host: list[int], device: torch.device) -> torch.Tensor:
    """Rows of the staged segments (all non-empty): about 40 kernels for the whole batch."""
    k = len(staged)
    data = torch.cat(staged)
    f64 = torch.float64
    hist_pos, hist_seg, sample_pos = _index_tables(lengths_host)
    lengths = _to_device(np.asarray(lengths_host, dtype=np.int64), device)
    hist_pos_d, hist_seg_d = _to_device(hist_pos, device), _to_device(hist_seg, device)
    sample_pos_d = _to_device(sample_pos, device)
    numel = lengths.to(f64)

    # unsafe=True skips segment_reduce's check of the lengths, which would read them back on the host
    fin = torch.isfinite(data)
    masks = torch.stack([fin, torch.isnan(data), data == _INF], 1).to(data.dtype)
    counts = torch.segment_reduce(masks, "sum", lengths=lengths, axis=0, unsafe=True).to(f64)  # finite, nan, +inf
    n_fin, nan, posinf = counts[:, 0], counts[:, 1], counts[:, 2]
    neginf = numel - n_fin - nan - posinf
    clean = torch.where(fin, data, 0.0).to(f64)
    total = torch.segment_reduce(clean, "sum", lengths=lengths, unsafe=True)
    squares = torch.segment_reduce(clean * clean, "sum", lengths=lengths, unsafe=True)
    lo = torch.segment_reduce(torch.where(fin, data, _INF), "min", lengths=lengths, unsafe=True).to(f64)
    hi = torch.segment_reduce(torch.where(fin, data, -_INF), "max", lengths=lengths, unsafe=True).to(f64)
    mean = total / n_fin.clamp(min=1)
    segment = torch.repeat_interleave(torch.arange(k, device=device), lengths, output_size=data.numel())
    deviation = torch.where(fin, clean - mean[segment], 0.0)
    spread = torch.segment_reduce(deviation * deviation, "sum", lengths=lengths, unsafe=True)
    var = spread / (n_fin - 1).clamp(min=1)

    same = lo == hi
    h_lo = torch.where(same, lo - 1, lo)
    h_hi = torch.where(same, hi + 1, hi)
    width = torch.where(h_hi > h_lo, h_hi - h_lo, 1.0)
    hx, hfin = data[hist_pos_d].to(f64), fin[hist_pos_d]
    # histc's rule: bin = floor((v - lo) * bins / (hi - lo)), the maximum in the last bin; non-finite to a spare bin
    bins = ((torch.where(hfin, hx, 0.0) - h_lo[hist_seg_d]) * BINS / width[hist_seg_d]).floor().clamp(0, BINS - 1)
    bins = torch.where(hfin, bins.long(), BINS) + hist_seg_d * (BINS + 1)
    hist = torch.zeros(k * (BINS + 1), dtype=f64, device=device)
    hist.index_add_(0, bins, torch.ones_like(hx))
    hist = hist.view(k, BINS + 1)[:, :BINS]
    hist_n = hist.sum(1)
    zeros = torch.zeros(k, dtype=f64, device=device).index_add_(0, hist_seg_d, (hfin & (hx == 0)).to(f64))
    zeros = torch.where(numel > HIST_MAX, torch.round(zeros * n_fin / hist_n.clamp(min=1)), zeros)
    sample = torch.where(sample_pos_d >= 0, data[sample_pos_d.clamp(min=0)].to(f64), _NAN)

    undefined = n_fin == 0  # no finite element: min, max, mean, std, norm and the histogram range are undefined
    def_ = torch.stack([lo, hi, mean, var.sqrt(), squares.sqrt(), h_lo, h_hi], 1)
    def_ = torch.where(undefined[:, None], _NAN, def_)
    scalars = torch.stack(
        [numel, *def_[:, :5].unbind(1), nan, posinf, neginf, zeros, def_[:, 5], def_[:, 6], hist_n], 1
    )
    assert scalars.shape[1] == HIST
    return torch.cat([scalars, hist, sample], 1)
