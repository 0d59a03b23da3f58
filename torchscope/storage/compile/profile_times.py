"""Time per module of compiled code in a profile: Inductor's kernels attributed back to the modules they compute.

A compiled frame runs inside a ``Torch-Compiled Region: <frame>/<compile>`` record function; Inductor's code runs
under ``## Call CompiledFxGraph <key> ##``. Its direct children are the extern calls (``aten::addmm``), matched in
order to the frame's extern kernels (``compiled_kernels``), and, in profiles of code compiled with
``torch._inductor.config.cpp.enable_kernel_profile = True``, the generated C++ kernels (``graph_<n>_cpp_fused_...``),
matched by name. Each kernel's time goes to its module (the common module of the FX nodes it computes); the rest of
the region (guards, Python glue, kernels the profile does not show) goes to the frame's module. Forward only: the
backward of compiled code runs outside the region. Reads only; nothing here changes the profile's tables.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
from sqlalchemy import Connection, text

COLUMNS = ["module", "calls", "host_total_ns", "host_self_ns", "kernel_ns", "other_ns"]
REGION = "Torch-Compiled Region: "
CALL = "## Call CompiledFxGraph"
_REGIONS_SQL = (
    "SELECT e.id, n.name, e.start, e.dur, e.lane_id FROM profile_events e JOIN names n ON n.id = e.name_id "
    "JOIN profile_lanes l ON l.id = e.lane_id WHERE l.profile_id = :p AND n.name LIKE :like ORDER BY e.start"
)
_REGION_NAMES_SQL = (
    "SELECT COUNT(*), COUNT(n.id) FROM timeline_names t LEFT JOIN names n ON n.id = t.name_id AND n.name LIKE :like "
    "WHERE t.profile_id = :p"
)  # the names of each lane of the profile, kept when it was stored: a few rows, where the events are millions
_INSIDE_SQL = (
    "SELECT e.id, n.name, e.start, e.dur, e.parent FROM profile_events e JOIN names n ON n.id = e.name_id "
    "WHERE e.lane_id = :lane AND e.start >= :s AND e.start <= :end ORDER BY e.start"
)
_KERNELS_SQL = (
    "SELECT k.compile_id, k.seq, k.kind, k.kernel, k.profiler_name, m.name FROM compiled_kernels k "
    "LEFT JOIN names m ON m.id = k.module_id WHERE k.run_id = :r ORDER BY k.compile_id, k.seq"
)
_FRAMES_SQL = (
    "SELECT e.compile_id, m.name FROM compile_events e LEFT JOIN names m ON m.id = e.module_id WHERE e.run_id = :r"
)


def compiled_module_table(conn: Connection, profile_id: int, run_id: int) -> pd.DataFrame:
    """See :meth:`Store.compiled_module_table`."""
    names, region_names = conn.execute(text(_REGION_NAMES_SQL), {"p": int(profile_id), "like": REGION + "%"}).one()
    if names and not region_names:  # no compiled region in the profile: no need to look through its events
        return pd.DataFrame(columns=COLUMNS)
    regions = conn.execute(text(_REGIONS_SQL), {"p": int(profile_id), "like": REGION + "%"}).all()
    if not regions:
        return pd.DataFrame(columns=COLUMNS)
    kernels: dict[str, list[tuple[str, str, str, str | None]]] = defaultdict(list)
    for compile_id, _seq, kind, kernel, profiler_name, module in conn.execute(text(_KERNELS_SQL), {"r": run_id}):
        kernels[compile_id].append((kind, kernel, profiler_name, module))
    frames = {c: m for c, m in conn.execute(text(_FRAMES_SQL), {"r": run_id})}
    own: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # module -> [kernel ns, other ns]
    calls: dict[str, set[int]] = defaultdict(set)
    for region_id, name, start, dur, lane in regions:
        compile_id = name[len(REGION) :].strip()
        home = frames.get(compile_id)
        inside = conn.execute(text(_INSIDE_SQL), {"lane": lane, "s": start, "end": start + dur}).all()
        attributed = _nested_regions(inside, region_id)  # a resumed frame's region inside this one is its own
        for call in (e for e in inside if e[1].startswith(CALL)):
            children = [e for e in inside if e[4] == call[0]]
            for event, module in _match(children, kernels.get(compile_id, [])):
                if module is not None:
                    own[module][0] += int(event[3])
                    calls[module].add(region_id)
                    attributed += int(event[3])
        if home is not None:
            own[home][1] += int(dur) - attributed
            calls[home].add(region_id)
    rows = []
    for module in sorted(own):
        total = sum(k + o for m, (k, o) in own.items() if m == module or module == "" or m.startswith(module + "."))
        kernel_ns, other_ns = own[module]
        rows.append((module, len(calls[module]), total, kernel_ns + other_ns, kernel_ns, other_ns))
    return pd.DataFrame(rows, columns=COLUMNS).astype({c: "int64" for c in COLUMNS[1:]})


def _nested_regions(inside: list, region_id: int) -> int:
    """Time of the regions whose nearest enclosing region is ``region_id`` (they are counted as themselves)."""
    by_id = {e[0]: e for e in inside}
    total = 0
    for event in inside:
        if event[0] == region_id or not event[1].startswith(REGION):
            continue
        up = by_id.get(event[4])
        while up is not None and not up[1].startswith(REGION):
            up = by_id.get(up[4])
        if up is not None and up[0] == region_id:
            total += int(event[3])
    return total


def _match(children: list, kernels: list[tuple[str, str, str, str | None]]) -> list[tuple[object, str | None]]:
    """Each child event of a ``## Call CompiledFxGraph`` with the module of the kernel it is: extern calls in order
    of their op, generated kernels by name (``graph_0_cpp_fused_relu_0`` is ``cpp_fused_relu_0``)."""
    externs: dict[str, list[str | None]] = defaultdict(list)
    generated: dict[str, str | None] = {}
    for kind, kernel, profiler_name, module in kernels:
        if kind == "extern":
            externs[profiler_name].append(module)
        else:
            generated[kernel] = module
    used: dict[str, int] = defaultdict(int)
    out = []
    for event in children:
        name = event[1]
        queue = externs.get(name)
        if queue is not None and used[name] < len(queue):
            out.append((event, queue[used[name]]))
            used[name] += 1
            continue
        hit = next((k for k in generated if name == k or name.endswith("_" + k)), None)
        if hit is not None:
            out.append((event, generated[hit]))
    return out
