"""Event kinds of profiles: the small integers stored in ``profile_events.kind`` and their Chrome categories."""

from __future__ import annotations

import re

KINDS = (
    "cpu_op",  # 0  an ATen / autograd operator on a host thread
    "python_function",  # 1  a Python frame (with_stack=True), incl. "nn.Module: Name_i"
    "user_annotation",  # 2  record_function / ProfilerStep#N / nccl:all_reduce on the host
    "cuda_runtime",  # 3  a CUDA/HIP runtime API call (cudaLaunchKernel, cudaMemcpyAsync, ...)
    "cuda_driver",  # 4  a CUDA driver API call (cuLaunchKernel)
    "kernel",  # 5  a GPU kernel
    "memcpy",  # 6  a GPU memory copy
    "memset",  # 7  a GPU memory set
    "gpu_user_annotation",  # 8  a record_function range projected on a device stream
    "collective",  # 9  a communication kernel (NCCL/RCCL): a kernel whose name says so
    "cuda_sync",  # 10 a stream/event/device synchronisation on the device
    "trace",  # 11 the profiler's own span ("PyTorch Profiler (0)")
    "instant",  # 12 an instant event other than a memory event
    "other",  # 13 any other category (kept in info)
)
KIND = {name: i for i, name in enumerate(KINDS)}

CATEGORY_KIND = {
    "cpu_op": KIND["cpu_op"],
    "operator": KIND["cpu_op"],
    "python_function": KIND["python_function"],
    "user_annotation": KIND["user_annotation"],
    "cuda_runtime": KIND["cuda_runtime"],
    "cuda_driver": KIND["cuda_driver"],
    "kernel": KIND["kernel"],
    "gpu_memcpy": KIND["memcpy"],
    "gpu_memset": KIND["memset"],
    "gpu_user_annotation": KIND["gpu_user_annotation"],
    "cuda_sync": KIND["cuda_sync"],
    "Trace": KIND["trace"],
}
"""Chrome/Kineto ``cat`` -> kind. Kernels whose name is a collective become ``collective``."""

KIND_CATEGORY = {kind: cat for cat, kind in CATEGORY_KIND.items() if cat != "operator"}
KIND_CATEGORY[KIND["collective"]] = "kernel"

DEVICE_KINDS = frozenset(
    KIND[k] for k in ("kernel", "memcpy", "memset", "gpu_user_annotation", "collective", "cuda_sync")
)
"""Kinds that run on a device stream; a lane holding any of them is a device lane."""

LAUNCH_KINDS = frozenset((KIND["cuda_runtime"], KIND["cuda_driver"]))
COLLECTIVE_PREFIXES = ("nccl", "ncclKernel", "ncclDevKernel", "rccl", "void ncclKernel", "void ncclDevKernel")

TENSOR_CORE_MARKERS = ("hmma", "wmma", "imma", "xmma", "gmma", "tensorop", "mfma")
_TENSOR_CORE_SHAPES = re.compile(r"(?:^|[_a-z])[shi](?:884|1688|16816|8816|16832)", re.IGNORECASE)
"""Tensor-core kernels by name, as cuBLAS/cuDNN/CUTLASS and AMD name them: HMMA/WMMA/XMMA/WGMMA, CUTLASS
``tensorop``, MFMA, and cuBLAS instruction shapes (``volta_h884gemm``, ``turing_s1688gemm``, ``s16816gemm``)."""


def is_collective(name: str) -> bool:
    """Whether a kernel name is a communication kernel (NCCL, RCCL)."""
    return name.startswith(COLLECTIVE_PREFIXES)


def uses_tensor_cores(name: str) -> bool:
    """Whether a kernel name marks a tensor-core kernel (a name-based heuristic, as torch-tb-profiler's)."""
    lower = name.lower()
    return any(marker in lower for marker in TENSOR_CORE_MARKERS) or bool(_TENSOR_CORE_SHAPES.search(name))
