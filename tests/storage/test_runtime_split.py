"""``Store.runtime_split``: CUDA runtime time split into launches, waits and set-up, per step."""

from __future__ import annotations

from pathlib import Path

import orjson

from torchscope.io.importing import import_path
from torchscope.storage.store import Store


def _x(name: str, cat: str, ts_us: float, dur_us: float) -> dict:
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": 1, "ts": ts_us, "dur": dur_us, "args": {}}


def test_launches_waits_and_set_up_are_told_apart(tmp_path: Path, db_path: Path) -> None:
    events = [
        _x("ProfilerStep#1", "user_annotation", 0, 10_000),
        _x("cudaStreamCreateWithFlags", "cuda_runtime", 10, 300),  # set-up
        _x("cudaMalloc", "cuda_runtime", 400, 500),  # set-up
        _x("cudaLaunchKernel", "cuda_runtime", 1_000, 2_000),  # 2 ms: the first launch loads the module: set-up
        *(_x("cudaLaunchKernel", "cuda_runtime", 3_100 + 200 * i, 100) for i in range(5)),  # launches, 0.5 ms
        _x("cudaMemcpyAsync", "cuda_runtime", 4_200, 50),  # a launch
        _x("cuLaunchKernel", "cuda_driver", 4_300, 25),  # a launch through the driver API
        _x("cudaStreamSynchronize", "cuda_runtime", 5_000, 1_000),  # waiting for the device
        _x("ProfilerStep#2", "user_annotation", 10_000, 2_000),
        _x("cudaLaunchKernel", "cuda_runtime", 10_500, 40),
        _x("cudaEventQuery", "cuda_runtime", 11_000, 5),
    ]
    path = tmp_path / "runtime.json"
    path.write_bytes(orjson.dumps({"traceEvents": events}))
    result = import_path(db_path, path)
    with Store(db_path) as store:
        pid = int(store.profiles(result.run_id)["id"].iloc[0])
        split = store.runtime_split(pid).set_index("step")
    assert split.loc[1].to_dict() == {"wall_ns": 10_000_000, "launch_ns": 575_000, "sync_ns": 1_000_000,
                                      "setup_ns": 2_800_000}  # fmt: skip
    assert split.loc[2].to_dict() == {"wall_ns": 2_000_000, "launch_ns": 40_000, "sync_ns": 5_000, "setup_ns": 0}


def test_a100_reference_trace_is_cuda_start_up_not_launches(shared_data: Path, db_path: Path) -> None:
    """Conformance: the A100 AlexNet trace spends seconds creating the context (cudaDeviceGetStreamPriorityRange,
    cudaFree, cudaMalloc) and loading modules on first launches; its short launches are a small share."""
    result = import_path(db_path, shared_data / "kineto" / "a100_alexnet.json.gz")
    with Store(db_path) as store:
        pid = int(store.profiles(result.run_id)["id"].iloc[0])
        row = store.runtime_split(pid).iloc[0]
    assert row["step"] == -1
    assert row["setup_ns"] / row["wall_ns"] > 0.3 > row["launch_ns"] / row["wall_ns"]
