"""System metrics: sampled with and without NVML, by a thread that stops with the run, stored as ``sys/`` scalars."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

import torchscope
from torchscope.capture import system_metrics
from torchscope.capture.system_metrics import GIB, SystemMetrics, SystemSampler, load_nvml

HOST_TAGS = {"sys/cpu_percent", "sys/rss_gib", "sys/host_mem_percent", "sys/host_mem_used_gib"}


class FakeNVML:
    """The slice of ``pynvml`` the sampler uses, for two GPUs; the second cannot report its temperature."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        self.shut_down = False

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=[87, 3][handle], memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=[12 * GIB, 0.5 * GIB][handle], total=80 * GIB, free=0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        if handle == 1:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return 64

    def nvmlShutdown(self) -> None:
        self.shut_down = True


def test_without_nvml_only_process_and_host_metrics_are_sampled() -> None:
    sampler = SystemSampler(None)
    sum(range(2_000_000))  # some CPU time for the process to report
    values = sampler.sample()
    assert set(values) == HOST_TAGS
    rss = psutil.Process().memory_info().rss / GIB
    assert values["sys/rss_gib"] == pytest.approx(rss, rel=0.2)
    assert 0 < values["sys/host_mem_percent"] < 100
    assert values["sys/cpu_percent"] >= 0
    sampler.close()


def test_with_nvml_every_gpu_reports_utilisation_memory_and_temperature() -> None:
    nvml = FakeNVML()
    sampler = SystemSampler(nvml)  # type: ignore[arg-type]
    values = sampler.sample()
    gpu = {tag: value for tag, value in values.items() if tag.startswith("sys/gpu")}
    assert gpu == {
        "sys/gpu0/util_percent": 87.0, "sys/gpu0/mem_used_gib": 12.0, "sys/gpu0/temp_c": 64.0,
        "sys/gpu1/util_percent": 3.0, "sys/gpu1/mem_used_gib": 0.5,  # no temperature: that read failed alone
    }  # fmt: skip
    assert HOST_TAGS <= set(values)
    sampler.close()
    assert nvml.shut_down


def test_load_nvml_is_none_without_a_driver_or_gpu_and_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import pynvml

    def no_driver() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    assert load_nvml() is None
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: 0)
    monkeypatch.setattr(pynvml, "nvmlShutdown", lambda: None)
    assert load_nvml() is None


def test_this_machine_without_gpu_samples_without_error() -> None:
    nvml = load_nvml()  # None here (no NVIDIA driver); a module on a GPU machine
    sampler = SystemSampler(nvml)
    values = sampler.sample()
    assert HOST_TAGS <= set(values)
    assert any(t.startswith("sys/gpu0/") for t in values) == (nvml is not None)
    sampler.close()


def test_thread_samples_every_interval_and_stops() -> None:
    got: list[tuple[dict[str, float], int]] = []
    three = threading.Event()

    def emit(values: dict[str, float], wall: int) -> None:
        got.append((values, wall))
        if len(got) == 3:
            three.set()

    start = time.time_ns()
    metrics = SystemMetrics(emit, interval=0.05, sampler=SystemSampler(None))
    assert three.wait(10)
    metrics.stop()
    count = metrics.samples
    assert not metrics._thread.is_alive()
    assert count == len(got) >= 3
    walls = [wall for _, wall in got]
    assert walls == sorted(walls) and walls[0] >= start + 50_000_000  # the first sample one interval in
    assert all(set(values) == HOST_TAGS for values, _ in got)


def test_a_failing_sampler_stops_quietly() -> None:
    class Broken(SystemSampler):
        def sample(self) -> dict[str, float]:
            raise OSError("no /proc")

    metrics = SystemMetrics(lambda v, w: None, interval=0.01, sampler=Broken(None))
    metrics._thread.join(5)
    assert not metrics._thread.is_alive() and metrics.samples == 0


def test_init_stores_sys_scalars_at_the_current_step_and_finish_stops_the_thread(db_path: Path) -> None:
    run = torchscope.init(name="sys", db=db_path, system_metrics=0.05)
    for step in range(5):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    store = torchscope.open(db_path)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(t.startswith("sys/") for t in store.tags(run.id)):
        run.flush()
    run.finish()
    assert not run._system._thread.is_alive()
    frame = store.scalars(run.id)
    system = frame[frame["tag"].str.startswith("sys/")]
    assert HOST_TAGS <= set(system["tag"])
    assert set(system["step"]) <= {4}  # at the run's current step: the step count is not moved
    assert store.run(run.id)["last_step"] == 4
    assert run.dropped == 0


def test_init_without_system_metrics_starts_no_thread(db_path: Path) -> None:
    before = {t.name for t in threading.enumerate()}
    with torchscope.init(name="quiet", db=db_path, system_metrics=False) as run:
        assert run._system is None
        assert "torchscope-system-metrics" not in {t.name for t in threading.enumerate()} - before
    assert system_metrics.DEFAULT_INTERVAL == 5.0
