"""System metrics of the training process, sampled by a background thread and logged as ``sys/...`` scalars.

Every ``interval`` seconds (5 by default; the first sample one interval after start) the sampler reads, through
psutil, the training process's CPU use (``sys/cpu_percent``, 100 = one core busy), its resident memory
(``sys/rss_gib``) and the host's memory in use (``sys/host_mem_percent``, ``sys/host_mem_used_gib``); and through
NVML, for every GPU the driver shows,
``sys/gpu{i}/util_percent``, ``sys/gpu{i}/mem_used_gib`` and ``sys/gpu{i}/temp_c`` (``i`` is NVML's index, which
ignores ``CUDA_VISIBLE_DEVICES``). With no NVIDIA driver or no GPU there are simply no GPU tags.

Samples go to the run's writer like ``run.log`` records, at the run's current step (so they never move the run's
step count) with their own wall time; the dashboard plots them against wall time. Nothing here may disturb
training: a metric that cannot be read is skipped, and the thread is a daemon that never blocks exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import psutil

from torchscope.storage.runs.records import ScalarLog

GIB = float(1 << 30)
DEFAULT_INTERVAL = 5.0


def load_nvml() -> ModuleType | None:
    """``pynvml`` initialised, or None when there is no NVIDIA driver, no NVML library or no GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() == 0:
            pynvml.nvmlShutdown()
            return None
        return pynvml
    except Exception:  # noqa: BLE001 - pynvml raises NVMLError_* subclasses, ImportError, OSError
        return None


class SystemSampler:
    """Reads one sample of the system metrics; ``nvml`` is an initialised ``pynvml`` module or None."""

    def __init__(self, nvml: ModuleType | None, process: psutil.Process | None = None) -> None:
        self.nvml = nvml
        self.process = process or psutil.Process()
        self.process.cpu_percent(None)  # the first call only starts psutil's measuring interval
        self._gpus: list[Any] = []
        if nvml is not None:
            try:
                self._gpus = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
            except Exception:  # noqa: BLE001 - a broken driver reads as no GPU
                self._gpus = []

    def sample(self) -> dict[str, float]:
        """``{tag: value}`` of every metric that could be read now."""
        values: dict[str, float] = {}
        _read(values, "sys/cpu_percent", lambda: self.process.cpu_percent(None))
        _read(values, "sys/rss_gib", lambda: self.process.memory_info().rss / GIB)
        memory = _try(psutil.virtual_memory)
        if memory is not None:
            values["sys/host_mem_percent"] = float(memory.percent)
            values["sys/host_mem_used_gib"] = (memory.total - memory.available) / GIB
        nvml = self.nvml
        for i, handle in enumerate(self._gpus):
            prefix = f"sys/gpu{i}/"
            _read(values, prefix + "util_percent", lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            _read(values, prefix + "mem_used_gib", lambda: nvml.nvmlDeviceGetMemoryInfo(handle).used / GIB)
            _read(values, prefix + "temp_c", lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        return values

    def close(self) -> None:
        """Release NVML."""
        if self.nvml is not None:
            _try(self.nvml.nvmlShutdown)
            self.nvml = None


def _try(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:  # noqa: BLE001 - one unreadable metric must not lose the others
        return None


def _read(values: dict[str, float], tag: str, read: Callable[[], Any]) -> None:
    value = _try(read)
    if value is not None:
        values[tag] = float(value)


class SystemMetrics:
    """The background thread: samples every ``interval`` seconds and hands ``{tag: value}`` to ``emit``.

    ``emit(values, wall_time_ns)`` must not block (``Run`` puts on its writer). ``stop()`` is idempotent.
    """

    def __init__(
        self,
        emit: Callable[[dict[str, float], int], None],
        *,
        interval: float = DEFAULT_INTERVAL,
        sampler: SystemSampler | None = None,
    ) -> None:
        self.emit = emit
        self.interval = interval
        self.sampler = sampler
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="torchscope-system-metrics", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            # NVML initialisation can take a second on a big machine: do it here, not in init().
            if self.sampler is None:
                self.sampler = SystemSampler(load_nvml())
            # The first sample comes one interval in: CPU use is measured over the interval before it.
            while not self._stop.wait(self.interval):
                values = self.sampler.sample()
                if values:
                    self.emit(values, time.time_ns())
                    self.samples += 1
        except Exception:  # noqa: BLE001 - system metrics are best effort; training goes on without them
            pass
        finally:
            if self.sampler is not None:
                self.sampler.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling and wait (up to ``timeout``) for the thread to end."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)


def start_for_run(run: Any, interval: float = DEFAULT_INTERVAL) -> SystemMetrics:
    """Start sampling into ``run`` (a :class:`torchscope.capture.run.Run`): records go on its writer as scalars."""

    def emit(values: dict[str, float], wall_ns: int) -> None:
        step = max(run.step - 1, 0)
        run.writer.put(ScalarLog(run.id, step, wall_ns, values))

    return SystemMetrics(emit, interval=interval)
