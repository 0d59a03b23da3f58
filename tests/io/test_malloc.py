"""``torchscope import`` hands freed columns back to the system (``torchscope.io.malloc``), measured in a child
process: a freshly started interpreter, so that nothing else this test session allocated is in the way."""

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

