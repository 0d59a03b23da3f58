"""Reads for comparisons (``Store`` delegates to these): two runs or two profiles in, diff tables out.

Each method reads the two sides through the other subjects' reads (``op_table``, ``kernel_table``, ``graph``...,
which aggregate in SQL) and joins them with :mod:`torchscope.storage.compare.diff`. Columns are listed in
docs/compare.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Engine, func, select

from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.compare import diff
from torchscope.storage.graph.reads import GraphReads
from torchscope.storage.profile.reads import ProfileReads
from torchscope.storage.profile.schema import profiles
from torchscope.storage.runs.reads import RunReads

OP_SUMS = ["calls", "host_total_ns", "host_self_ns", "device_total_ns", "device_self_ns"]
OP_MEANS = {"host_mean_ns": "host_total_ns", "device_mean_ns": "device_total_ns"}
KERNEL_SUMS = ["calls", "total_ns"]
MODULE_SUMS = OP_SUMS


def _time_column(a: pd.DataFrame, b: pd.DataFrame) -> str:
    # On a GPU the device time is what a change costs; on CPU-only profiles there is only host time.
    device = int(a["device_self_ns"].sum()) + int(b["device_self_ns"].sum()) if len(a) + len(b) else 0
    return "device_self_ns" if device > 0 else "host_self_ns"


class CompareReads:
    """``latest_profile``, ``op_diff``, ``kernel_diff``, ``module_diff``, ``breakdown_diff``, ``step_diff``,
    ``config_diff``, ``scalar_diff``, ``scalar_summary``, ``graph_diff``, ``graph_module_diff``,
    ``graph_node_diff``, ``graph_module_time_diff``, ``profiler_module_paths``, ``graph_module_table``, over the
    reads of the subjects they compare (``runs``, ``graphs``, ``profiles``)."""

    def __init__(self, engine: Engine, runs: RunReads, graphs: GraphReads, profiles: ProfileReads) -> None:
        self._engine = engine
        self.runs = runs
        self.graphs = graphs
        self.profiles = profiles

    def latest_profile(self, run_id: int) -> int | None:
        """Backs :meth:`Store.latest_profile`, which documents the columns."""
        with self._engine.connect() as conn:
            found = conn.execute(select(func.max(profiles.c.id)).where(profiles.c.run_id == int(run_id))).scalar()
        return None if found is None else int(found)

    # -- profiles ----------------------------------------------------------------------------------------------------

    def op_diff(
        self, profile_a: int, profile_b: int, *, group_by_shape: bool = False, sort_by: str | None = None
    ) -> pd.DataFrame:
        """Operators of two profiles joined by name (and input shapes): calls, host/device total and self time,
        means, each ``_a``, ``_b``, ``_delta``; sorted by the absolute change of ``sort_by`` (default device self
        time when either profile has device time, else host self time)."""
        a, b = self.profiles.op_table(profile_a, group_by_shape), self.profiles.op_table(profile_b, group_by_shape)
        keys = ["name", "input_shapes"] if group_by_shape else ["name"]
        return diff.table_diff(a, b, keys, OP_SUMS, OP_MEANS, sort_by or _time_column(a, b))

    def kernel_diff(self, profile_a: int, profile_b: int) -> pd.DataFrame:
        """GPU kernels of two profiles joined by name: ``calls``, ``total_ns``, ``mean_ns`` (``_a``, ``_b``,
        ``_delta``), sorted by the absolute change of total time."""
        a, b = self.profiles.kernel_table(profile_a), self.profiles.kernel_table(profile_b)
        return diff.table_diff(a, b, ["name"], KERNEL_SUMS, {"mean_ns": "total_ns"}, "total_ns")

    def module_diff(self, profile_a: int, profile_b: int, *, sort_by: str | None = None) -> pd.DataFrame:
        """Modules (profiler paths such as ``Sequential_0/Linear_1``; needs ``with_stack=True`` traces) joined by
        path, with the columns and order of :meth:`op_diff`."""
        a, b = self.profiles.module_table(profile_a), self.profiles.module_table(profile_b)
        return diff.table_diff(a, b, ["module"], MODULE_SUMS, OP_MEANS, sort_by or _time_column(a, b))

    def breakdown_diff(self, profile_a: int, profile_b: int) -> pd.DataFrame:
        """Mean step time and where it went, side by side (see :func:`torchscope.storage.compare.diff.breakdown_diff`)."""
        return diff.breakdown_diff(self.profiles.step_breakdown(profile_a), self.profiles.step_breakdown(profile_b))

    def step_diff(self, profile_a: int, profile_b: int) -> pd.DataFrame:
        """Step wall times of two profiles paired by position: ``index, step_a, step_b, wall_ns_a, wall_ns_b,
        wall_ns_delta``."""
        return diff.steps_side_by_side(self.profiles.step_breakdown(profile_a), self.profiles.step_breakdown(profile_b))

    # -- runs --------------------------------------------------------------------------------------------------------

    def config_diff(self, run_a: int, run_b: int) -> pd.DataFrame:
        """Config keys (nested keys dotted) that differ between two runs: ``key, status, value_a, value_b``."""
        return diff.config_diff(self.runs.run(run_a)["config"] or {}, self.runs.run(run_b)["config"] or {})

    def scalar_diff(
        self,
        run_a: int,
        run_b: int,
        tags: Sequence[str] | None = None,
        *,
        align: str = "step",
        max_items: int | None = None,
    ) -> pd.DataFrame:
        """Two runs' scalars per tag on one x axis (``step``, or ``time``: seconds since each run started):
        ``tag, x, value_a, value_b, delta``. ``max_items`` bounds the points read per tag and run."""
        if align not in ("step", "time"):
            raise BadRequestError(f"align must be 'step' or 'time', not {align!r}")
        ra, rb = self.runs.run(run_a), self.runs.run(run_b)
        sa = self.runs.scalars(ra["id"], tags, max_items=max_items)
        sb = self.runs.scalars(rb["id"], tags, max_items=max_items)
        return diff.scalar_diff(sa, sb, align=align, t0_a=int(ra["started_at"]), t0_b=int(rb["started_at"]))

    def scalar_summary(self, run_a: int, run_b: int) -> pd.DataFrame:
        """Per tag of either run: points, last and minimum value on each side (see docs/compare.md)."""
        return diff.scalar_summary(self.runs.scalars(int(run_a)), self.runs.scalars(int(run_b)))

    # -- graphs ------------------------------------------------------------------------------------------------------

    def graph_diff(
        self, run_a: int, run_b: int, *, step_a: int | None = None, step_b: int | None = None
    ) -> pd.DataFrame:
        """Backs :meth:`Store.graph_diff`, which documents the columns."""
        return diff.graph_diff(self.graphs.graph(run_a, step_a)[0], self.graphs.graph(run_b, step_b)[0])

    def graph_module_diff(
        self, run_a: int, run_b: int, *, step_a: int | None = None, step_b: int | None = None
    ) -> pd.DataFrame:
        """Modules (by path) of the two runs' captured graphs: only in A, only in B, in both."""
        return diff.graph_module_diff(self.graphs.graph(run_a, step_a)[0], self.graphs.graph(run_b, step_b)[0])

    def graph_node_diff(
        self, run_a: int, run_b: int, *, step_a: int | None = None, step_b: int | None = None
    ) -> pd.DataFrame:
        """Backs :meth:`Store.graph_node_diff`, which documents the columns."""
        step_a = self._captured_step(run_a, step_a)
        step_b = self._captured_step(run_b, step_b)
        structure = self.graph_diff(run_a, run_b, step_a=step_a, step_b=step_b)
        stats_a = self.graphs.tensor_stats(run_a, step=step_a)
        stats_b = self.graphs.tensor_stats(run_b, step=step_b)
        return diff.node_stat_diff(structure, stats_a, stats_b)

    def graph_module_time_diff(
        self, run_a: int, run_b: int, *, profile_a: int | None = None, profile_b: int | None = None
    ) -> pd.DataFrame:
        """The change of time per module on the captured graphs' module paths (``b2.lin``, not the profiler's
        ``Net_0/Block_1/Linear_2``), from each run's latest profile (or ``profile_a``/``profile_b``): the columns
        and order of :meth:`module_diff`. Raises ``NotFoundError`` when a run has no graph or no profile and
        ``BadRequestError`` when a profile's module names do not fit its run's graph (or it has no module events:
        profile with ``with_stack=True``)."""
        tables = []
        for run_id, pid in ((run_a, profile_a), (run_b, profile_b)):
            pid = self.latest_profile(run_id) if pid is None else int(pid)
            if pid is None:
                raise NotFoundError(f"run {run_id} has no profile: time per module needs run.profile(with_stack=True)")
            keyed = self.graph_module_table(run_id, pid)
            if keyed is None:
                raise BadRequestError(
                    f"the module names of profile {pid} do not fit run {run_id}'s captured graph "
                    "(profile with run.profile(with_stack=True) while the model is watched)"
                )
            tables.append(keyed)
        return diff.table_diff(tables[0], tables[1], ["module"], MODULE_SUMS, OP_MEANS, _time_column(*tables))

    def profiler_module_paths(self, run_id: int, *, version: int | None = None) -> dict[str, str]:
        """Backs :meth:`Store.profiler_module_paths`, which documents the columns."""
        return diff.profiler_module_names(self.graphs.graph(run_id, version=version)[0])

    def graph_module_table(
        self, run_id: int, profile_id: int, *, version: int | None = None
    ) -> pd.DataFrame | None:
        """Backs :meth:`Store.graph_module_table`, which documents the columns."""
        names = self.profiler_module_paths(run_id, version=version)
        return diff.on_graph_modules(self.profiles.module_table(profile_id), names, MODULE_SUMS)

    def _captured_step(self, run_id: int, step: int | None) -> int | None:
        if step is not None:
            return int(step)
        steps = self.graphs.graph_steps(run_id)
        return None if steps.empty else int(steps["step"].iloc[-1])
