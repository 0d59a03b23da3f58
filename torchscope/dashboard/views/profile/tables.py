"""Rows and columns of the profile page's grids (operators, kernels, modules, memory by op). Pure functions.

Times are shown in microseconds as numbers (so AG Grid sorts and filters them numerically and the CSV export
keeps them numeric). Each row carries markdown links: to the timeline on every occurrence of the row's events
(``/timeline/<id>?start=..&end=..&q=name``) and, for ops and modules, to the graph node (``/graph/<run>?node=..``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from torchscope.dashboard import urls

NUM = {"type": "numericColumn", "filter": "agNumberColumnFilter",
       "valueFormatter": {"function": "d3.format(',.3~f')(params.value)"}}
TEXT = {"filter": "agTextColumnFilter"}
LINKS = {"field": "links", "headerName": "", "cellRenderer": "markdown", "sortable": False, "filter": False,
         "minWidth": 150, "maxWidth": 170, "pinned": "right"}  # fmt: skip


def _timeline(profile_id: int, name: str, spans: pd.DataFrame | None) -> str:
    """The timeline over every occurrence of ``name`` (its first start to its last end, 2% room), searching for it;
    the whole profile when ``spans`` does not know the name."""
    if spans is None or name not in spans.index:
        return urls.timeline(profile_id, q=name)
    first, last = int(spans.at[name, "first_start"]), int(spans.at[name, "last_end"])
    return urls.timeline_around(profile_id, first, last, q=name, room=0.02)


def _links(*pairs: tuple[str, str]) -> str:
    return " · ".join(f"[{label}]({href.replace(')', '%29').replace('(', '%28')})" for label, href in pairs)


def _us(values: pd.Series) -> list[float]:
    return np.round(values.to_numpy(dtype=np.float64) / 1e3, 3).tolist()


def op_columns(group_by_shape: bool) -> list[dict[str, Any]]:
    """Operator grid columns; ``input_shapes`` only when grouped by shape."""
    cols: list[dict[str, Any]] = [{"field": "name", "headerName": "operator", "minWidth": 260, "flex": 3, **TEXT}]
    if group_by_shape:
        cols.append({"field": "input_shapes", "headerName": "input shapes", "minWidth": 200, "flex": 2, **TEXT})
    cols += [
        {"field": "calls", "type": "numericColumn", "filter": "agNumberColumnFilter", "minWidth": 100, "maxWidth": 120},
        {"field": "host_total_us", "headerName": "host total (µs)", **NUM, "sort": "desc"},
        {"field": "host_self_us", "headerName": "host self (µs)", **NUM},
        {"field": "device_total_us", "headerName": "device total (µs)", **NUM},
        {"field": "device_self_us", "headerName": "device self (µs)", **NUM},
        {"field": "host_mean_us", "headerName": "host mean (µs)", **NUM},
        LINKS,
    ]
    return cols


def op_rows(
    ops: pd.DataFrame, profile_id: int, run_id: int, spans: pd.DataFrame | None, modules: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per operator (and input shapes) of :meth:`Store.op_table`, with a timeline link and, when the
    profile knows the module an op ran in (``modules``: op name -> module path), a link to that graph node."""
    if ops.empty:
        return []
    out = pd.DataFrame({"name": ops["name"].astype(str)})
    if "input_shapes" in ops.columns:
        out["input_shapes"] = ops["input_shapes"].fillna("").astype(str)
    out["calls"] = ops["calls"].astype(int)
    for col in ("host_total", "host_self", "device_total", "device_self", "host_mean"):
        out[f"{col}_us"] = _us(ops[f"{col}_ns"])
    modules = modules or {}
    out["links"] = [
        _links(("timeline", _timeline(profile_id, n, spans)),
               *([("graph", urls.graph(run_id, node=modules[n]))] if n in modules else []))
        for n in out["name"]
    ]
    out.insert(0, "row", np.arange(len(out)))
    return out.to_dict("records")


def kernel_columns() -> list[dict[str, Any]]:
    """Kernel grid columns."""
    return [
        {"field": "name", "headerName": "kernel", "minWidth": 320, "flex": 4, **TEXT},
        {"field": "calls", "type": "numericColumn", "filter": "agNumberColumnFilter", "minWidth": 100, "maxWidth": 120},
        {"field": "total_us", "headerName": "total (µs)", **NUM, "sort": "desc"},
        {"field": "mean_us", "headerName": "mean (µs)", **NUM},
        {"field": "min_us", "headerName": "min (µs)", **NUM},
        {"field": "max_us", "headerName": "max (µs)", **NUM},
        {"field": "share_pct", "headerName": "share (%)", **NUM},
        {"field": "tensor_cores", "headerName": "tensor cores", "maxWidth": 130, **TEXT},
        {"field": "occupancy_pct", "headerName": "occupancy (%)", **NUM},
        LINKS,
    ]


def kernel_rows(kernels: pd.DataFrame, profile_id: int, spans: pd.DataFrame | None) -> list[dict[str, Any]]:
    """One row per kernel name of :meth:`Store.kernel_table`, with a timeline link."""
    if kernels.empty:
        return []
    out = pd.DataFrame({"name": kernels["name"].astype(str), "calls": kernels["calls"].astype(int)})
    for col in ("total", "mean", "min", "max"):
        out[f"{col}_us"] = _us(kernels[f"{col}_ns"])
    out["share_pct"] = np.round(kernels["share"].to_numpy(dtype=np.float64) * 100, 2)
    out["tensor_cores"] = np.where(kernels["tensor_cores"].to_numpy(dtype=bool), "yes", "no")
    occ = pd.to_numeric(kernels["mean_occupancy"], errors="coerce")
    out["occupancy_pct"] = [None if pd.isna(v) else round(float(v), 1) for v in occ]
    out["links"] = [_links(("timeline", _timeline(profile_id, n, spans))) for n in out["name"]]
    out.insert(0, "row", np.arange(len(out)))
    return out.to_dict("records")


def module_columns() -> list[dict[str, Any]]:
    """Module grid columns."""
    return [
        {"field": "module", "headerName": "module path", "minWidth": 300, "flex": 3, **TEXT},
        {"field": "calls", "type": "numericColumn", "filter": "agNumberColumnFilter", "minWidth": 100, "maxWidth": 120},
        {"field": "host_total_us", "headerName": "host total (µs)", **NUM, "sort": "desc"},
        {"field": "host_self_us", "headerName": "host self (µs)", **NUM},
        {"field": "device_total_us", "headerName": "device total (µs)", **NUM},
        {"field": "device_self_us", "headerName": "device self (µs)", **NUM},
        LINKS,
    ]


def module_rows(
    modules: pd.DataFrame, profile_id: int, run_id: int, spans: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """One row per module path of :meth:`Store.module_table`; the timeline link searches the module's event
    (``nn.Module: Linear_0``), the graph link selects the module path."""
    if modules.empty:
        return []
    out = pd.DataFrame({"module": modules["module"].astype(str), "calls": modules["calls"].astype(int)})
    for col in ("host_total", "host_self", "device_total", "device_self"):
        out[f"{col}_us"] = _us(modules[f"{col}_ns"])
    out["links"] = [
        _links(("timeline", _timeline(profile_id, f"nn.Module: {m.rsplit('/', 1)[-1]}", spans)),
               ("graph", urls.graph(run_id, node=m)))
        for m in out["module"]
    ]  # fmt: skip
    out.insert(0, "row", np.arange(len(out)))
    return out.to_dict("records")


def compiled_module_columns() -> list[dict[str, Any]]:
    """Columns of the module grid of a compiled model's profile (:meth:`Store.compiled_module_table`)."""
    return [
        {"field": "module", "headerName": "module path (compiled)", "minWidth": 300, "flex": 3, **TEXT},
        {"field": "calls", "type": "numericColumn", "filter": "agNumberColumnFilter", "minWidth": 100, "maxWidth": 120},
        {"field": "host_total_us", "headerName": "total (µs)", **NUM, "sort": "desc"},
        {"field": "host_self_us", "headerName": "self (µs)", **NUM},
        {"field": "kernel_us", "headerName": "Inductor kernels (µs)", **NUM},
        {"field": "other_us", "headerName": "rest of its compiled regions (µs)", **NUM},
        LINKS,
    ]


def compiled_module_rows(modules: pd.DataFrame, run_id: int) -> list[dict[str, Any]]:
    """One row per module path of :meth:`Store.compiled_module_table` (time of compiled code attributed from
    Inductor's kernels), with a link that selects the module on the graph."""
    if modules.empty:
        return []
    out = pd.DataFrame({"module": modules["module"].astype(str), "calls": modules["calls"].astype(int)})
    for col in ("host_total", "host_self", "kernel", "other"):
        out[f"{col}_us"] = _us(modules[f"{col}_ns"])
    out["links"] = [_links(("graph", urls.graph(run_id, node=m))) for m in out["module"]]
    out.insert(0, "row", np.arange(len(out)))
    return out.to_dict("records")


def memory_op_columns() -> list[dict[str, Any]]:
    """Columns of the ops that allocated most."""
    return [
        {"field": "op", "headerName": "operator", "minWidth": 260, "flex": 3, **TEXT},
        {"field": "allocations", "type": "numericColumn", "filter": "agNumberColumnFilter"},
        {"field": "allocated_bytes", "headerName": "allocated (bytes)", **NUM, "sort": "desc"},
        {"field": "frees", "type": "numericColumn", "filter": "agNumberColumnFilter"},
        {"field": "freed_bytes", "headerName": "freed (bytes)", **NUM},
        {"field": "held_bytes", "headerName": "allocated and not freed within the window (bytes)", "minWidth": 220,
         **NUM},
        LINKS,
    ]


def memory_op_rows(frame: pd.DataFrame, profile_id: int, spans: pd.DataFrame | None) -> list[dict[str, Any]]:
    """One row per op of :meth:`Store.memory_by_op`, sizes in bytes."""
    if frame.empty:
        return []
    out = pd.DataFrame({"op": frame["op"].astype(str), "allocations": frame["allocations"].astype(int),
                        "frees": frame["frees"].astype(int)})  # fmt: skip
    for col in ("allocated_bytes", "freed_bytes", "held_bytes"):
        out[col] = frame[col].astype("int64")
    out["links"] = [
        _links(("timeline", _timeline(profile_id, n, spans))) if n != "(no op)" else "" for n in out["op"]
    ]
    out.insert(0, "row", np.arange(len(out)))
    return out.to_dict("records")
