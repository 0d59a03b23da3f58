"""How ``torchscope import`` sets up its process: freed columns go back to the system (``torchscope.io.malloc``),
and the cycle collector pauses while it runs (``torchscope.io.collector``). Each is measured in a child process: a
freshly started interpreter, so that nothing else this test session allocated or started is in the way."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import psutil
    from torchscope.io.malloc import map_large_blocks

    if sys.argv[1] == "on":
        assert map_large_blocks()
    process = psutil.Process()
    np.ones(1 << 17)  # a 1 MiB block, mapped and freed: glibc raises its threshold for mapping to 1 MiB
    before = process.memory_info().rss
    columns, kept = [], []
    for _ in range(200):  # 200 columns of 800 kB, each followed by a small array that outlives them
        columns.append(np.ones(100_000))
        kept.append(np.ones(1000))
    del columns
    print((process.memory_info().rss - before) / 2**20)
    """
)


def _kept_mib(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def test_freed_columns_go_back_to_the_system_once_large_blocks_are_mapped():
    # without the setting, glibc serves the 800 kB columns from its heap and keeps their 153 MiB when they are freed
    # (the small arrays between them pin the heap); with it, each column is its own mapping, unmapped when freed
    assert _kept_mib("off") > 120
    assert _kept_mib("on") < 10



_IMPORT_SCRIPT = textwrap.dedent(
    """
    import gc
    import sys
    import threading

    from torchscope.io.importing import import_path
    from torchscope.storage.profile.writes import ProfileBuilder

    seen = []
    add = ProfileBuilder.add
    ProfileBuilder.add = lambda self, batch: (seen.append(gc.isenabled()), add(self, batch))[1]
    if sys.argv[3] == "with a thread":
        stop = threading.Event()
        threading.Thread(target=stop.wait).start()
    import_path(sys.argv[1], sys.argv[2])
    print(sorted(set(seen)), gc.isenabled())
    if sys.argv[3] == "with a thread":
        stop.set()
    """
)


def _collector_during_import(trace, db, mode: str) -> str:
    args = [sys.executable, "-c", _IMPORT_SCRIPT, str(db), str(trace), mode]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()


def test_an_import_pauses_the_cycle_collector_only_while_it_runs_and_only_with_no_other_thread(cpu_trace, tmp_path):
    # torchscope.io.collector: off while batches are stored, on again afterwards
    assert _collector_during_import(cpu_trace, tmp_path / "a.db", "alone") == "[False] True"
    # another thread (a live run's) could make cycles: the collector stays on
    assert _collector_during_import(cpu_trace, tmp_path / "b.db", "with a thread") == "[True] True"
