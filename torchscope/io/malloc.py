"""Keep a large import's freed memory from staying with the process (glibc's ``malloc``).

glibc serves a block of at least its *mmap threshold* from a mapping of its own, returned to the system when freed,
and anything smaller from its heap, whose freed pages mostly stay with the process. The threshold starts at 128 KiB
and rises, up to 32 MiB, each time a mapped block is freed: after the first batches of an import, the numpy columns
of every later batch (hundreds of KiB to a few MiB each) come from the heap, and the holes they leave between
longer-lived objects add up to hundreds of MB at peak. Setting the threshold once switches that rise off.

What still comes from the heap (Python's objects, numpy arrays under the threshold, a thread's own arena) leaves free
pages between live blocks when it is freed; :func:`release_free_memory` hands them back between an import's phases
(at 10M events, 285 MB of them before the summaries).
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 256 << 10
"""Blocks of this many bytes or more get their own mapping."""


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (musl has ``mallopt`` and ``malloc_trim`` but ignores them), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def release_free_memory() -> bool:
    """Return the free pages of every ``malloc`` arena of this process to the system (glibc's ``malloc_trim``);
    whether it could. Costs milliseconds; meant between the phases of a large import."""
    libc = _glibc()
    if libc is None:
        return False
    trim = libc.malloc_trim
    trim.argtypes, trim.restype = (ctypes.c_size_t,), ctypes.c_int
    trim(0)
    return True


def map_large_blocks(threshold: int = LARGE_BLOCK) -> bool:
    """Have glibc give every block of ``threshold`` bytes or more its own mapping, and trim its heap at the same size;
    for this process and the processes it forks. Returns whether it could (False off glibc: nothing changes).

    Meant for a process that does one large job (``torchscope import``), not for a library call inside a user's
    program: it changes how that whole process allocates.
    """
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, threshold))
