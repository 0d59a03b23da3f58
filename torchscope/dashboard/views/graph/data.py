"""What the graph page reads, through the ``Store`` read API only, with small caches for what cannot change.

A stored graph version never changes, nor do the statistics of a captured step once written, so models built from
them are kept (a few, least recently used first out); the list of captured steps is read fresh each time, as a
live run keeps adding steps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from torchscope.dashboard.views.graph.compare import node_colours
from torchscope.dashboard.views.graph.model import GraphModel, captured_model, imported_model
from torchscope.dashboard.views.graph.timing import op_times
from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.store import Store

T = TypeVar("T")


class _Lru(OrderedDict):  # type: ignore[type-arg]
    """A small least-recently-used cache; the server answers callbacks on several threads, hence the lock (held
    for the bookkeeping only: two threads may both build a missing value, and the second one wins)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def get_or(self, key: Any, make: Callable[[], T]) -> T:
        """The value kept for ``key``, else ``make()`` kept (the least recently used entry past ``size`` goes)."""
        with self.lock:
            if key in self:
                self.move_to_end(key)
                return self[key]  # type: ignore[no-any-return]
        value = make()
        with self.lock:
            self[key] = value
            while len(self) > self.size:
                self.popitem(last=False)
        return value


class GraphData:
    """Models, statistics, version differences, anomalies and profile times of one store's runs."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._models: _Lru = _Lru(16)
        self._stats: _Lru = _Lru(32)
        self._only: _Lru = _Lru(16)
        self._times: _Lru = _Lru(16)
        self._imported: _Lru = _Lru(4)
        self._compare: _Lru = _Lru(4)
        self._profiler_paths: _Lru = _Lru(8)

    # -- which graph ---------------------------------------------------------------------------------------------
    def source(self, run_id: int) -> str | None:
        """``"captured"`` when the run has captured steps, ``"imported"`` when it has TensorBoard graphs, else None."""
        if not self.store.graph_steps(run_id).empty:
            return "captured"
        if not self._imported_frames(run_id)[0].empty:
            return "imported"
        return None

    def steps(self, run_id: int) -> pd.DataFrame:
        """Captured steps (``step, version_id, ...``), by step."""
        return self.store.graph_steps(run_id)

    def locate(self, run_id: int, step: int, model: str | None = None) -> tuple[int, str | None]:
        """``(version, model)`` of the graph ``step`` ran (of the watched ``model``, default the first captured at
        that step); NotFoundError for a step that was not captured."""
        steps = self.steps(run_id)
        hit = steps[steps["step"] == int(step)]
        if model is not None and "model" in hit:
            hit = hit[hit["model"] == model]
        if hit.empty:
            shown = ", ".join(map(str, steps["step"].drop_duplicates().tolist()[:10]))
            whose = f" of model {model!r}" if model is not None else ""
            raise NotFoundError(f"step {step} of run {run_id}{whose} was not captured (captured: {shown or 'none'})")
        row = hit.iloc[0]
        return int(row["version_id"]), (str(row["model"]) if "model" in hit else None)

    def version_of(self, run_id: int, step: int, model: str | None = None) -> int:
        """The graph version ``step`` ran (see :meth:`locate`)."""
        return self.locate(run_id, step, model)[0]

    def imported_graphs(self, run_id: int) -> list[tuple[int, str]]:
        """``(graph_id, label)`` of every TensorBoard graph imported into the run."""
        nodes = self._imported_frames(run_id)[0]
        if nodes.empty:
            return []
        firsts = nodes.drop_duplicates("graph_id")
        rows = zip(firsts["graph_id"], firsts["kind"], firsts["tag"])
        return [(int(g), f"{kind} {tag}".strip()) for g, kind, tag in rows]

    # -- models --------------------------------------------------------------------------------------------------
    def captured(self, run_id: int, version: int) -> GraphModel:
        """The model of one captured graph version."""
        return self._models.get_or(
            ("c", run_id, version), lambda: captured_model(*self.store.graph(run_id, version=version))
        )

    def imported(self, run_id: int, graph_id: int) -> GraphModel:
        """The model of one imported graph; NotFoundError for a graph id the run does not have."""

        def make() -> GraphModel:
            nodes, edges = self._imported_frames(run_id)
            if not (nodes["graph_id"] == graph_id).any():
                raise NotFoundError(f"run {run_id} has no imported graph {graph_id}")
            return imported_model(nodes[nodes["graph_id"] == graph_id], edges[edges["graph_id"] == graph_id])

        return self._models.get_or(("i", run_id, graph_id), make)

    def _imported_frames(self, run_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self._imported.get_or(run_id, lambda: self.store.imported_graph(run_id))

    # -- per step ------------------------------------------------------------------------------------------------
    def step_stats(self, run_id: int, step: int, model: str | None = None) -> pd.DataFrame:
        """Compact statistics of a captured step of one watched model (``store.step_stats``)."""
        frame = self._stats.get_or((run_id, step, model), lambda: self.store.step_stats(run_id, step, model))
        if frame.empty:  # perhaps not written yet (a live run): ask again next time
            with self._stats.lock:
                self._stats.pop((run_id, step, model), None)
        return frame

    def only_here(self, run_id: int, version: int, model: str | None = None) -> set[int]:
        """Nodes of ``version`` that no other version (of the same watched model) has (same kind and name)."""

        def make() -> set[int]:
            versions = self.store.graph_versions(run_id, model)["id"].tolist()
            if len(versions) < 2:
                return set()
            mine = self.captured(run_id, version)
            others: set[tuple[str, str]] = set()
            for other in versions:
                if other != version:
                    others |= {(n.kind, n.name) for n in self.captured(run_id, other).nodes.values()}
            return {n.id for n in mine.nodes.values() if (n.kind, n.name) not in others and not n.group}

        return self._only.get_or((run_id, version, model), make)

    def first_anomaly(self, run_id: int) -> dict[str, Any] | None:
        """The first NaN/Inf origin of the run (earliest step; forward before backward), as a dict, or None."""
        frame = self.store.anomalies(run_id)
        if frame.empty:
            return None
        frame = frame.assign(_phase=frame["phase"].map({"forward": 0, "backward": 1}))
        row = frame.sort_values(["step", "_phase"], kind="stable").iloc[0]
        return {k: row[k] for k in frame.columns if not k.startswith("_")}

    def anomaly_nodes(self, run_id: int, step: int, model: str | None = None) -> list[int]:
        """Origin nodes of the NaN/Inf anomalies recorded at ``step`` (in the watched ``model``'s graph)."""
        frame = self.store.anomalies(run_id, model)
        return [int(n) for n in frame.loc[frame["step"] == int(step), "node"]]

    def find(self, state: dict[str, Any], text: str) -> int | None:
        """A node of the shown graph by id, name or module path (:meth:`GraphModel.find`), or by the module path
        the profiler uses (``SmallCNN_0/Sequential_0/Conv2d_0``, what the profile tables link with)."""
        model = self.imported(state["run"], state["key"]) if state["source"] != "captured" else None
        if model is not None:
            return model.find(text)
        model = self.captured(state["run"], state["version"])
        hit = model.find(text)
        if hit is None:
            run_id, version = state["run"], state["version"]
            paths = self._profiler_paths.get_or(
                (run_id, version), lambda: self.store.profiler_module_paths(run_id, version=version)
            )
            path = paths.get(text.strip())
            hit = model.by_module.get(path) if path is not None else None
        return hit

    # -- compare ---------------------------------------------------------------------------------------------------
    def compare(self, run_id: int, other: int, step: int) -> tuple[dict[int, dict[str, object]], list[str]]:
        """``(node colours by id, names only in the other run)`` for ``?compare=<other>``: this run's graph at
        ``step`` against the other run's last captured step (``store.graph_diff`` and ``graph_node_diff``)."""

        def make() -> tuple[dict[int, dict[str, object]], list[str]]:
            structure = self.store.graph_diff(other, run_id, step_b=step)
            changes = self.store.graph_node_diff(other, run_id, step_b=step)
            only_other = structure.loc[(structure["status"] == "only A") & (structure["kind"] != "grad"), "name_a"]
            return node_colours(structure, changes), [str(n) for n in only_other]

        return self._compare.get_or((run_id, other, step), make)

    # -- profile ---------------------------------------------------------------------------------------------------
    def times(self, run_id: int, version: int) -> tuple[int | None, dict[int, dict[str, object]]]:
        """``(profile_id, per-op-node times)`` from the run's latest profile; ``(None, {})`` when it has none."""
        profiles = self.store.profiles(run_id)
        if profiles.empty:
            return None, {}
        profile_id = int(profiles["id"].iloc[-1])

        def make() -> tuple[int | None, dict[int, dict[str, object]]]:
            model = self.captured(run_id, version)
            table = self.store.op_table(profile_id, group_by_shape=True)
            joined = op_times(model, table)
            # module calls: the profiler's own module time (with_stack=True profiles), when its module paths fit
            sums = ["calls", "host_total_ns", "device_total_ns"]
            modules = self.store.graph_module_table(run_id, profile_id, version=version)
            if modules is None:  # compiled code has no module events: its kernels, attributed to modules
                compiled = self.store.compiled_module_table(profile_id)
                modules = compiled.assign(device_total_ns=0) if not compiled.empty else None
            if modules is not None:
                rows = modules[["module", *sums]].itertuples(index=False)
                per_path = {m: (h / max(c, 1), d / max(c, 1), int(c)) for m, c, h, d in rows}
                for node in model.nodes.values():
                    if node.group and node.module in per_path:
                        host, device, calls = per_path[node.module]
                        joined[node.id] = {"aten": None, "host_ns": host, "device_ns": device, "calls": calls,
                                           "by_shape": False, "module": True}  # fmt: skip
            return profile_id, joined

        return self._times.get_or((run_id, version, profile_id), make)


def parse_int(value: str | None, what: str) -> int | None:
    """A query parameter as an int (None when absent); BadRequestError when it is not one."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequestError(f"{what} must be an integer, not {value!r}") from exc
