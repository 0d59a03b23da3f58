"""Pure post-processing of comparisons: two tables in, one diff table out. Columns are listed in docs/compare.md.

numpy and pandas, and the status values of :mod:`torchscope.storage.compare.records`; the reads that feed these
live in :mod:`torchscope.storage.compare.reads`. Every diff says of each row whether it is present in ``both``
sides, ``only A`` or ``only B``; a side that lacks a row counts zero calls and zero time there, so the per-row deltas
of an additive column add up exactly to the change of its total (:func:`totals`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from torchscope.storage.compare.records import BOTH, ONLY_A, ONLY_B, STATUS_ORDER, totals  # noqa: F401 - re-exported

_MERGE_STATUS = {"both": BOTH, "left_only": ONLY_A, "right_only": ONLY_B}


def table_diff(
    a: pd.DataFrame,
    b: pd.DataFrame,
    keys: Sequence[str],
    sums: Sequence[str],
    means: Mapping[str, str] | None = None,
    sort_by: str | None = None,
) -> pd.DataFrame:
    """Join two per-key tables into one row per key with ``<col>_a``, ``<col>_b`` and ``<col>_delta`` (B - A).

    ``sums`` are additive integer columns (calls, nanoseconds): a key missing on one side counts 0 there.
    ``means`` maps a mean column to the sum it divides by ``calls`` (``{"mean_ns": "total_ns"}``); means are
    recomputed from the sums, NaN on the side that lacks the key. Rows are sorted by the absolute change of
    ``sort_by`` (default the first of ``sums`` after ``calls``), largest first, then by key.
    ``pct_change`` is the change of ``sort_by`` relative to A (NaN where A is 0).
    """
    means = dict(means or {})
    keys = list(keys)
    left = a[keys + list(sums)].copy()
    right = b[keys + list(sums)].copy()
    joined = left.merge(right, on=keys, how="outer", suffixes=("_a", "_b"), indicator=True, sort=False)
    out = joined[keys].copy()
    out["status"] = joined["_merge"].astype(str).map(_MERGE_STATUS)
    for col in sums:
        va = joined[f"{col}_a"].fillna(0).astype("int64")
        vb = joined[f"{col}_b"].fillna(0).astype("int64")
        out[f"{col}_a"], out[f"{col}_b"], out[f"{col}_delta"] = va, vb, vb - va
    for mean, total in means.items():
        ma = out[f"{total}_a"] / out["calls_a"].where(out["calls_a"] > 0)
        mb = out[f"{total}_b"] / out["calls_b"].where(out["calls_b"] > 0)
        out[f"{mean}_a"], out[f"{mean}_b"], out[f"{mean}_delta"] = ma, mb, mb - ma
    sort_by = sort_by or next((c for c in sums if c != "calls"), sums[0])
    base = out[f"{sort_by}_a"]
    out["pct_change"] = out[f"{sort_by}_delta"] / base.where(base != 0)
    out["_abs"] = out[f"{sort_by}_delta"].abs()
    out = out.sort_values(["_abs", *keys], ascending=[False] + [True] * len(keys), kind="stable", na_position="last")
    out = out.drop(columns="_abs").reset_index(drop=True)
    out.attrs["sort_by"] = sort_by
    return out


def by_status(diff: pd.DataFrame, status: str) -> pd.DataFrame:
    """The rows of a diff with the given status (``both``, ``only A``, ``only B``), in the diff's order."""
    return diff[diff["status"] == status].reset_index(drop=True)


# -- step time and breakdown ----------------------------------------------------------------------------------------


def breakdown_diff(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Where the step time went, side by side: one row per ``step_breakdown`` category (``wall`` first).

    Columns ``category, total_ns_a, total_ns_b, mean_ns_a, mean_ns_b, mean_ns_delta, share_a, share_b``; means are
    per step (the two profiles may hold different numbers of steps), shares are of the wall time. The categories
    after ``wall`` add up to it on each side, so their ``mean_ns_delta`` add up to the change of the mean step time.
    """
    categories = [c.removesuffix("_ns") for c in a.columns if c.endswith("_ns")]
    rows = []
    for cat in categories:
        ta, tb = int(a[f"{cat}_ns"].sum()), int(b[f"{cat}_ns"].sum())
        ma = ta / len(a) if len(a) else float("nan")
        mb = tb / len(b) if len(b) else float("nan")
        rows.append((cat, ta, tb, ma, mb, mb - ma))
    cols = ["category", "total_ns_a", "total_ns_b", "mean_ns_a", "mean_ns_b", "mean_ns_delta"]
    out = pd.DataFrame(rows, columns=cols)
    wall_a = out.loc[out["category"] == "wall", "total_ns_a"].sum()
    wall_b = out.loc[out["category"] == "wall", "total_ns_b"].sum()
    out["share_a"] = out["total_ns_a"] / wall_a if wall_a else np.nan
    out["share_b"] = out["total_ns_b"] / wall_b if wall_b else np.nan
    out.attrs["steps"] = (len(a), len(b))
    return out


def steps_side_by_side(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """The steps of two profiles paired by position (1st with 1st...): ``index, step_a, step_b, wall_ns_a,
    wall_ns_b, wall_ns_delta`` (step numbers differ between traces, so they cannot be the key)."""
    n = max(len(a), len(b))
    out = pd.DataFrame({"index": np.arange(n)})
    for side, frame in (("a", a), ("b", b)):
        out[f"step_{side}"] = pd.array(frame["step"].tolist() + [None] * (n - len(frame)), dtype="Int64")
        out[f"wall_ns_{side}"] = pd.array(frame["wall_ns"].tolist() + [None] * (n - len(frame)), dtype="Int64")
    out["wall_ns_delta"] = out["wall_ns_b"] - out["wall_ns_a"]
    return out


# -- runs: config and scalars ---------------------------------------------------------------------------------------


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys: ``{"opt": {"lr": 1}}`` -> ``{"opt.lr": 1}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _text(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> pd.DataFrame:
    """The config keys whose values differ: ``key, status, value_a, value_b`` (values as JSON text, None where
    the side lacks the key; ``status`` is ``changed``, ``only A`` or ``only B``), by key. Equal keys are left out."""
    fa, fb = flatten(a), flatten(b)
    rows = []
    for key in sorted(set(fa) | set(fb)):
        if key in fa and key in fb:
            ta, tb = _text(fa[key]), _text(fb[key])
            if ta != tb:
                rows.append((key, "changed", ta, tb))
        elif key in fa:
            rows.append((key, ONLY_A, _text(fa[key]), None))
        else:
            rows.append((key, ONLY_B, None, _text(fb[key])))
    # object columns: a side without the key reads None, not the NaN a string column would hold
    return pd.DataFrame(rows, columns=["key", "status", "value_a", "value_b"], dtype=object)


def _last_per_x(frame: pd.DataFrame, x: str) -> pd.DataFrame:
    # a step logged twice keeps its last value, as the run page's chart shows it
    return frame.sort_values(["tag", x, "wall_time"], kind="stable").drop_duplicates(["tag", x], keep="last")


def scalar_diff(a: pd.DataFrame, b: pd.DataFrame, *, align: str = "step", t0_a: int = 0, t0_b: int = 0) -> pd.DataFrame:
    """Two runs' scalars on one x axis per tag: ``tag, x, value_a, value_b, delta`` (B - A), by tag and x.

    ``x`` is the logged step (``align="step"``; a step logged twice keeps its last value) or seconds since each
    run's own start (``align="time"``; ``t0_a``/``t0_b`` in ns), at every x either run logged. ``value_*`` are the
    logged values (NaN where that run has no point at x). ``delta`` is defined wherever x lies within both runs'
    ranges: a run that did not log that exact x is interpolated linearly between its own neighbouring points, so
    runs logged at different steps, or downsampled differently, still have a continuous difference.
    """
    if align not in ("step", "time"):
        raise ValueError(f"align must be 'step' or 'time', not {align!r}")
    parts = []
    for tag in sorted(set(a["tag"]) | set(b["tag"])):
        sides = []
        for frame, t0 in ((a, t0_a), (b, t0_b)):
            points = frame[frame["tag"] == tag]
            if align == "step":
                points = _last_per_x(points, "step")
                x = points["step"].to_numpy(dtype="float64")
            else:
                points = points.sort_values("wall_time", kind="stable")
                x = (points["wall_time"].to_numpy() - t0) / 1e9
            sides.append((x, points["value"].to_numpy(dtype="float64")))
        (xa, ya), (xb, yb) = sides
        xs = np.union1d(xa, xb)
        parts.append(pd.DataFrame({"tag": tag, "x": xs, "value_a": _at(xs, xa, ya), "value_b": _at(xs, xb, yb),
                                   "delta": _interp(xs, xb, yb) - _interp(xs, xa, ya)}))  # fmt: skip
    cols = ["tag", "x", "value_a", "value_b", "delta"]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    if align == "step":
        out["x"] = out["x"].astype("int64")
    return out[cols].astype({"value_a": "float64", "value_b": "float64", "delta": "float64"})


def _at(xs: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` where ``x`` has the point ``xs``, NaN elsewhere (``x`` sorted and unique)."""
    out = np.full(len(xs), np.nan)
    pos = np.searchsorted(x, xs)
    hit = (pos < len(x)) & (x[np.minimum(pos, len(x) - 1)] == xs) if len(x) else np.zeros(len(xs), dtype=bool)
    out[hit] = y[pos[hit]]
    return out


def _interp(xs: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        return np.full(len(xs), np.nan)
    out = np.interp(xs, x, y)
    out[(xs < x[0]) | (xs > x[-1])] = np.nan
    return out


def scalar_summary(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per tag: ``tag, status, points_a, points_b, last_a, last_b, last_delta, min_a, min_b`` (last = the value
    at the highest step), by tag."""
    def per_side(frame: pd.DataFrame) -> pd.DataFrame:
        last = _last_per_x(frame, "step").groupby("tag")
        return pd.DataFrame({"points": frame.groupby("tag").size(), "last": last["value"].last(),
                             "min": frame.groupby("tag")["value"].min()})  # fmt: skip

    sa, sb = per_side(a), per_side(b)
    joined = sa.join(sb, how="outer", suffixes=("_a", "_b")).reset_index(names="tag")
    joined["status"] = np.where(joined["points_a"].isna(), ONLY_B, np.where(joined["points_b"].isna(), ONLY_A, BOTH))
    joined["last_delta"] = joined["last_b"] - joined["last_a"]
    for c in ("points_a", "points_b"):
        joined[c] = joined[c].fillna(0).astype("int64")
    cols = ["tag", "status", "points_a", "points_b", "last_a", "last_b", "last_delta", "min_a", "min_b"]
    return joined.sort_values("tag", kind="stable").reset_index(drop=True)[cols]


# -- graphs: structure and values -----------------------------------------------------------------------------------


def node_keys(nodes: pd.DataFrame) -> dict[int, str]:
    """A key per node of a captured graph that names its place in the structure, not its id or its counter name.

    ``module:<path>[#call]``; ``op:<module path>[#call]/<op>#<k>`` (the k-th call of that op directly inside that
    module call); ``grad:<key of its target>``; ``<kind>:<name>`` for inputs, outputs, params and buffers. Node
    names such as ``linear_1`` count ops across the whole graph, so a layer added early would rename every later
    one; these keys stay put, which is what lets two runs' graphs be matched.
    """
    keys: dict[int, str] = {}
    where: dict[int, str] = {}  # module-call node id -> "path[#call]"
    seen: dict[tuple[int, str], int] = {}
    for row in nodes.sort_values("id", kind="stable").itertuples(index=False):
        node, kind = int(row.id), row.kind
        if kind == "module":
            call = 0 if pd.isna(row.call) else int(row.call)
            where[node] = f"{row.module or ''}" + (f"#{call}" if call else "")
            keys[node] = f"module:{where[node]}"
        elif kind == "op":
            parent = -1 if pd.isna(row.parent) else int(row.parent)
            k = seen.get((parent, row.op), 0)
            seen[(parent, row.op)] = k + 1
            keys[node] = f"op:{where.get(parent, row.module or '')}/{row.op}#{k}"
        elif kind == "grad" and not pd.isna(row.target) and int(row.target) in keys:
            keys[node] = f"grad:{keys[int(row.target)]}"
        else:
            keys[node] = f"{kind}:{row.name}"
    return keys


def _shapes(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else json.dumps(value)


def graph_diff(nodes_a: pd.DataFrame, nodes_b: pd.DataFrame) -> pd.DataFrame:
    """The structural diff of two captured graphs, one row per :func:`node_keys` key.

    Columns ``key, kind, status, name_a, name_b, id_a, id_b, module, op, out_shapes_a, out_shapes_b,
    shape_changed``; rows only in A first, then only in B, then the shared ones, each in graph order.
    """
    def side(nodes: pd.DataFrame, s: str) -> pd.DataFrame:
        keys = node_keys(nodes)
        return pd.DataFrame({"key": [keys[int(i)] for i in nodes["id"]], "kind": nodes["kind"].to_numpy(),
                             f"name_{s}": nodes["name"].to_numpy(), f"id_{s}": nodes["id"].to_numpy(),
                             f"module_{s}": nodes["module"].to_numpy(), f"op_{s}": nodes["op"].to_numpy(),
                             f"out_shapes_{s}": nodes["out_shapes"].map(_shapes).to_numpy()})  # fmt: skip

    joined = side(nodes_a, "a").merge(side(nodes_b, "b"), on=["key", "kind"], how="outer", indicator=True, sort=False)
    joined["status"] = joined["_merge"].astype(str).map(_MERGE_STATUS)
    joined["module"] = joined["module_b"].where(joined["module_b"].notna(), joined["module_a"])
    joined["op"] = joined["op_b"].where(joined["op_b"].notna(), joined["op_a"])
    same = joined["out_shapes_a"].fillna("") == joined["out_shapes_b"].fillna("")
    joined["shape_changed"] = (joined["status"] == BOTH) & ~same
    for c in ("id_a", "id_b"):
        joined[c] = joined[c].astype("Int64")
    joined["_order"] = joined["status"].map(STATUS_ORDER)
    joined["_pos"] = joined["id_a"].fillna(joined["id_b"])
    joined = joined.sort_values(["_order", "_pos", "key"], kind="stable").reset_index(drop=True)
    cols = ["key", "kind", "status", "name_a", "name_b", "id_a", "id_b", "module", "op", "out_shapes_a",
            "out_shapes_b", "shape_changed"]  # fmt: skip
    return joined[cols]


def graph_module_diff(nodes_a: pd.DataFrame, nodes_b: pd.DataFrame) -> pd.DataFrame:
    """Modules (by path) only in A, only in B or in both: ``module, status, class_a, class_b, calls_a, calls_b,
    ops_a, ops_b`` (op nodes directly inside the module), by status (only A, only B, both) then path."""
    def side(nodes: pd.DataFrame) -> pd.DataFrame:
        mods = nodes[nodes["kind"] == "module"].assign(module=lambda f: f["module"].fillna(""))
        ops = nodes[nodes["kind"] == "op"].assign(module=lambda f: f["module"].fillna("")).groupby("module").size()
        grouped = mods.groupby("module", sort=False)
        frame = pd.DataFrame({"class": grouped["op"].first(), "calls": grouped.size()})
        frame["ops"] = ops.reindex(frame.index).fillna(0).astype("int64")
        return frame

    joined = side(nodes_a).join(side(nodes_b), how="outer", suffixes=("_a", "_b")).reset_index(names="module")
    joined["status"] = np.where(joined["calls_a"].isna(), ONLY_B, np.where(joined["calls_b"].isna(), ONLY_A, BOTH))
    for c in ("calls_a", "calls_b", "ops_a", "ops_b"):
        joined[c] = joined[c].fillna(0).astype("int64")
    joined["_order"] = joined["status"].map(STATUS_ORDER)
    joined = joined.sort_values(["_order", "module"], kind="stable").reset_index(drop=True)
    return joined[["module", "status", "class_a", "class_b", "calls_a", "calls_b", "ops_a", "ops_b"]]


STAT_FIELDS = ("mean", "std", "norm", "min", "max")


def node_stat_diff(structure: pd.DataFrame, stats_a: pd.DataFrame, stats_b: pd.DataFrame) -> pd.DataFrame:
    """Per node of the shared structure, how its tensor statistics changed (one captured step of each run).

    ``structure`` is :func:`graph_diff`'s table; ``stats_*`` are ``tensor_stats`` rows of one step. Each node is
    read at its first output (a grad node at its gradient). Columns ``key, kind, status, name_a, name_b, id_a,
    id_b, module, role, <stat>_a, <stat>_b, <stat>_delta`` for mean, std, norm, min, max, ``nan_a, nan_b`` and
    ``norm_change`` (norm delta relative to A's norm; NaN where A's norm is 0). Nodes without statistics on
    both sides are left out; rows by the size of ``norm_change``, largest first.
    """
    def side(stats: pd.DataFrame, s: str) -> pd.DataFrame:
        first = stats[stats["output"] == 0].drop_duplicates("node", keep="first")
        cols = {"node": f"id_{s}", "role": f"role_{s}", "nan": f"nan_{s}", **{f: f"{f}_{s}" for f in STAT_FIELDS}}
        return first[list(cols)].rename(columns=cols).astype({f"id_{s}": "Int64"})

    shared = structure[structure["status"] == BOTH]
    joined = shared.merge(side(stats_a, "a"), on="id_a").merge(side(stats_b, "b"), on="id_b")
    joined["role"] = joined["role_b"]
    for f in STAT_FIELDS:
        joined[f"{f}_delta"] = joined[f"{f}_b"] - joined[f"{f}_a"]
    joined["norm_change"] = joined["norm_delta"] / joined["norm_a"].abs().where(joined["norm_a"] != 0)
    joined = joined.assign(_abs=joined["norm_change"].abs()).sort_values(
        ["_abs", "key"], ascending=[False, True], kind="stable", na_position="last"
    )
    stat_cols = [f"{f}_{s}" for f in STAT_FIELDS for s in ("a", "b", "delta")]
    cols = ["key", "kind", "status", "name_a", "name_b", "id_a", "id_b", "module", "role", *stat_cols, "nan_a",
            "nan_b", "norm_change"]  # fmt: skip
    return joined.reset_index(drop=True)[cols]


def profiler_module_names(nodes: pd.DataFrame) -> dict[str, str]:
    """``{profiler module path: graph module path}`` for a captured graph's module calls.

    ``torch.profiler`` (``with_stack=True``) names a module ``<Class>_<k>``, k counting the distinct modules of
    that class in the order they are first called, and nests the names along the call stack
    (``Net_0/Block_1/Linear_2``). Numbering the graph's module calls the same way, in call order, recovers which
    module each profiler path is (``b2.lin``).
    """
    counters: dict[str, int] = {}
    label: dict[str, str] = {}
    prof_path: dict[int, str] = {}
    out: dict[str, str] = {}
    for row in nodes[nodes["kind"] == "module"].sort_values("id", kind="stable").itertuples(index=False):
        path = row.module or ""
        if path not in label:
            k = counters.get(row.op, 0)
            counters[row.op] = k + 1
            label[path] = f"{row.op}_{k}"
        parent = None if pd.isna(row.parent) else prof_path.get(int(row.parent))
        prof_path[int(row.id)] = label[path] if parent is None else f"{parent}/{label[path]}"
        out[prof_path[int(row.id)]] = path
    return out


def on_graph_modules(modules: pd.DataFrame, names: Mapping[str, str], sums: Sequence[str]) -> pd.DataFrame | None:
    """A profile's ``module_table`` re-keyed by the graph's module paths (``names`` from
    :func:`profiler_module_names`), summed where several profiler paths are one module; None when a profiler path
    has no module in the graph (the profile and the graph do not describe the same model)."""
    if modules.empty or not set(modules["module"]) <= set(names):
        return None
    keyed = modules.assign(module=modules["module"].map(names))
    return keyed.groupby("module", sort=True)[list(sums)].sum().reset_index()
