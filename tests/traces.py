"""Real Kineto traces for tests, recorded here with torch.profiler on the CPU (no reference data needed)."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
import torch


def record_cpu_trace(path: Path, steps: int = 4, width: int = 32) -> Path:
    """Train a small MLP for ``steps`` profiled steps (shapes, memory and module stacks recorded) and write the
    Chrome trace to ``path`` (``.json``); returns ``path``."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    schedule = torch.profiler.schedule(wait=0, warmup=1, active=steps)
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], schedule=schedule, record_shapes=True, profile_memory=True,
        with_stack=True, on_trace_ready=lambda p: p.export_chrome_trace(str(path)),
    ) as prof:  # fmt: skip
        for _ in range(steps + 1):
            loss = model(torch.randn(16, width)).square().mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
            prof.step()
    return path


def trace_events(path: Path) -> tuple[dict, list]:
    """(top-level fields, events) of a trace written as plain JSON."""
    data = orjson.loads(path.read_bytes())
    return {k: v for k, v in data.items() if k != "traceEvents"}, data["traceEvents"]


# -- GPU-shaped traces synthesised from a CPU recording ----------------------------------------------------------------

VIEW_OPS = frozenset((
    "aten::as_strided", "aten::resolve_conj", "aten::t", "aten::transpose", "aten::view", "aten::expand",
    "aten::detach", "detach", "aten::empty", "aten::empty_strided", "aten::empty_like", "aten::result_type",
    "aten::to", "aten::_to_copy", "aten::reshape", "aten::_unsafe_view",
))  # fmt: skip
"""Operators that launch no device work (views, allocations, dispatch wrappers)."""
GEMM_OPS = ("aten::mm", "aten::addmm")
GEMM_KERNEL = "sm80_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize64x64x8_stage3_warpsize2x2x1_tensor16x8x8_kernel"
SGEMM_KERNEL = "volta_sgemm_64x32_sliced1x4_nn"
COLLECTIVE_OPS = ("c10d::allreduce_",)
NCCL_KERNEL = "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)"
STREAM, OPTIMIZER_STREAM, COMM_STREAM = 7, 20, 24
MAX_DEVICE_US = 500.0  # device work lasts as long as its op did on the CPU, within [1 µs, this]
LAUNCH_US = 3.0  # the launch latency (and the longest runtime call), in µs


def gpu_shaped_trace(cpu_trace: Path, path: Path, device: str = "synthetic GPU (CPU recording + CUDA activity)") -> Path:
    """Write to ``path`` (``.json.gz``) the recorded CPU trace ``cpu_trace`` with CUDA activity added as Kineto writes
    it, so that GPU features (kernels, memcpy/memset, streams, launches and their ``ac2g`` flows, device properties)
    are exercised without a GPU.

    Every host event of the recording is kept as recorded. Each leaf ATen op that does work (not a view or an
    allocation) gets one ``cuda_runtime`` launch inside it, correlated to one device activity on device 0:
    ``aten::copy_`` a host-to-device memcpy, ``aten::fill_``/``aten::zero_`` a memset, ``aten::mm``/``aten::addmm``
    a GEMM (the backward ``aten::mm`` a tensor-core one by name), ``c10d::allreduce_`` (a DDP job's gradient
    all-reduce) an NCCL all-reduce kernel on stream 24, anything else an elementwise kernel. Device work
    runs in launch order on stream 7, the optimizer step's (``Optimizer.step``) on stream 20; each activity lasts as
    long as its op did on the CPU (within 1-500 µs) and starts after its launch and after the previous work on its
    stream. ``device`` is the name in ``deviceProperties``. Returns ``path``.
    """
    data = orjson.loads(cpu_trace.read_bytes())
    events = data["traceEvents"]
    ops = sorted((e for e in events if e.get("ph") == "X" and e.get("cat") == "cpu_op"), key=lambda e: e["ts"])
    optimizer = [(e["ts"], e["ts"] + e["dur"]) for e in events
                 if e.get("ph") == "X" and str(e.get("name", "")).startswith("Optimizer.step#")]  # fmt: skip
    added: list[dict] = []
    stream_free = {STREAM: 0.0, OPTIMIZER_STREAM: 0.0, COMM_STREAM: 0.0}
    pid = ops[0]["pid"]
    inside_gemm = 0.0  # end of the GEMM being walked through: the ops nested in it launch nothing
    for i, op in enumerate(ops):
        end = op["ts"] + op["dur"]
        collective = op["name"] in COLLECTIVE_OPS
        if op["ts"] < inside_gemm or op["name"] in VIEW_OPS or not (op["name"].startswith("aten::") or collective):
            continue
        if op["name"] in GEMM_OPS:
            inside_gemm = end
        elif not collective and any(o["tid"] == op["tid"] and o["ts"] + o["dur"] <= end and o["name"] not in VIEW_OPS
                 for o in ops[i + 1 : i + 40] if o["ts"] >= op["ts"]):  # fmt: skip
            continue  # its work is done by the ops nested in it
        corr = 100_000 + len(added) // 4
        ext = op["args"].get("External id", 0)
        launch_ts, launch_dur = _free_slot(op, ops[i + 1 : i + 40])
        stream = OPTIMIZER_STREAM if any(a <= op["ts"] < b for a, b in optimizer) else STREAM
        stream = COMM_STREAM if collective else stream
        start = max(launch_ts + LAUNCH_US, stream_free[stream])
        dur = min(max(op["dur"], 1.0), MAX_DEVICE_US)
        stream_free[stream] = start + dur
        args = {"External id": ext, "device": 0, "context": 1, "stream": stream, "correlation": corr}
        name = op["name"]
        if name == "aten::copy_":
            cat, runtime, device_name = "gpu_memcpy", "cudaMemcpyAsync", "Memcpy HtoD (Pageable -> Device)"
            args |= {"bytes": 4096, "memory bandwidth (GB/s)": round(4096 / (dur * 1000), 3)}
        elif name in ("aten::fill_", "aten::zero_"):
            cat, runtime, device_name = "gpu_memset", "cudaMemsetAsync", "Memset (Device)"
            args |= {"bytes": 4096, "memory bandwidth (GB/s)": round(4096 / (dur * 1000), 3)}
        else:
            cat, runtime = "kernel", "cudaLaunchKernel"
            if collective:
                device_name = NCCL_KERNEL
            elif name in GEMM_OPS:
                device_name = GEMM_KERNEL if name == "aten::mm" else SGEMM_KERNEL
            else:
                device_name = f"void at::native::vectorized_elementwise_kernel<4, {name.removeprefix('aten::')}>"
            args |= {"registers per thread": 32, "shared memory": 0, "grid": [8, 1, 1], "block": [128, 1, 1]}
        added += [
            {"ph": "X", "cat": "cuda_runtime", "name": runtime, "pid": pid, "tid": op["tid"], "ts": launch_ts,
             "dur": launch_dur, "args": {"External id": ext, "correlation": corr}},
            {"ph": "s", "id": corr, "pid": pid, "tid": op["tid"], "ts": launch_ts, "cat": "ac2g", "name": "ac2g"},
            {"ph": "X", "cat": cat, "name": device_name, "pid": 0, "tid": stream, "ts": start, "dur": dur,
             "args": args},
            {"ph": "f", "id": corr, "pid": 0, "tid": stream, "ts": start, "cat": "ac2g", "name": "ac2g", "bp": "e"},
        ]  # fmt: skip
    added += [
        {"ph": "M", "name": "process_name", "pid": 0, "tid": 0, "args": {"name": "python"}},
        {"ph": "M", "name": "process_labels", "pid": 0, "tid": 0, "args": {"labels": "GPU 0"}},
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": STREAM, "args": {"name": f"stream {STREAM}"}},
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": OPTIMIZER_STREAM,
         "args": {"name": f"stream {OPTIMIZER_STREAM}"}},
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": COMM_STREAM, "args": {"name": f"stream {COMM_STREAM}"}},
    ]  # fmt: skip
    data["traceEvents"] = events + added
    data["deviceProperties"] = [{"id": 0, "name": device, "totalGlobalMem":
                                 17179869184, "computeMajor": 8, "computeMinor": 0, "numSms": 108, "warpSize": 32}]  # fmt: skip
    path.write_bytes(gzip.compress(orjson.dumps(data)))
    return path


def _free_slot(op: dict, following: list[dict]) -> tuple[float, float]:
    """(start, length) of a launch inside ``op`` in its longest stretch not covered by an op nested in it, as the
    runtime call of an operator is made by the operator itself."""
    end = op["ts"] + op["dur"]
    nested = sorted((o["ts"], o["ts"] + o["dur"]) for o in following
                    if o["tid"] == op["tid"] and op["ts"] <= o["ts"] and o["ts"] + o["dur"] <= end)  # fmt: skip
    gaps, reach = [], op["ts"]
    for lo, hi in nested + [(end, end)]:
        if lo > reach:
            gaps.append((lo - reach, reach))
        reach = max(reach, hi)
    length, start = max(gaps) if gaps else (0.0, op["ts"])
    return start + length / 4, min(LAUNCH_US, length / 2)


def load_trace(path: Path) -> dict:
    """The decoded JSON of a ``.json`` or ``.json.gz`` trace."""
    raw = path.read_bytes()
    return orjson.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def reference(*names: str) -> list:
    """``trace_file`` params for reference traces of ``../shared/data/kineto``: conformance tests, one per name."""
    return [pytest.param(name, marks=pytest.mark.conformance, id=name) for name in names]
