"""The read API: :class:`Store`, what the dashboard, the CLI and users' notebooks read the database through.

``Store`` is a facade: each subject of the store (runs, graphs, profiles, timeline, imported TensorBoard data,
comparisons) has its reads in ``storage/<subject>/reads.py``, a small class over the engine that owns its caches,
and every method here delegates to one of them. The methods come in three groups: the notebook API of
``torchscope.open`` (DESIGN.md), further reads for notebooks, and reads that a dashboard view needs (their docstrings
say "View read"). The individual diff tables of a comparison are on :attr:`Store.diffs`; :meth:`Store.compare`
gathers them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from torchscope.storage.compare import comparison
from torchscope.storage.compare.reads import CompareReads
from torchscope.storage.compare.records import Comparison
from torchscope.storage.engine import display_url, open_engine, resolve_url
from torchscope.storage.compile.reads import CompileReads
from torchscope.storage.graph.reads import GraphReads
from torchscope.storage.graph.view_reads import GraphViewReads
from torchscope.storage.profile import rank_timeline
from torchscope.storage.profile.rank_reads import RankReads
from torchscope.storage.profile.ranks import STRAGGLER_THRESHOLD
from torchscope.storage.profile import chunks
from torchscope.storage.profile.reads import ProfileReads
from torchscope.storage.runs.reads import RunReads
from torchscope.storage.tensorboard.hparams import hparams_rows
from torchscope.storage.tensorboard.reads import TbDataReads, TbGraphReads
from torchscope.storage.timeline.reads import TimelineReads


class Store:
    """Read access to a torchscope database; every table method returns a pandas DataFrame.

    Open it with :func:`torchscope.open`. The store never writes except to migrate an older schema on open. Ids are
    plain integers, times integer nanoseconds. ``read_only=True`` (what the dashboard opens) has the database itself
    refuse writes: SQLite opens the file with ``mode=ro``, PostgreSQL runs read-only transactions.
    """

    def __init__(self, db: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> None:
        self.url = resolve_url(db)
        self.display_url = display_url(self.url)
        """:attr:`url` with any password in it as ``***``: what the dashboard and the CLI show."""
        self.read_only = read_only
        self._engine = open_engine(self.url, create=False, read_only=read_only)
        self._runs = RunReads(self._engine)
        self._graphs = GraphReads(self._engine)
        self._graph_view = GraphViewReads(self._engine)
        self._compile = CompileReads(self._engine)
        self._profiles = ProfileReads(self._engine)
        self._tensorboard = TbGraphReads(self._engine)
        self._tb_data = TbDataReads(self._engine)
        self._ranks = RankReads(self._engine)
        self._timeline = TimelineReads(self._engine, self._profiles)
        self.diffs = CompareReads(self._engine, self._runs, self._graphs, self._profiles)
        """The diff tables of two runs or profiles one at a time (``store.diffs.op_diff(pa, pb)``; docs/compare.md)."""

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- the notebook API (DESIGN.md) --------------------------------------------------------------------------------

    def runs(self) -> pd.DataFrame:
        """One row per run, newest first.

        Columns: ``id, name, status, started_at, ended_at, heartbeat_at, duration_ns, last_step, scalar_count,
        config`` (a dict) ``, source, hostname, pid, dropped, dropped_scalars, dropped_steps, dropped_profiles,
        error``: ``dropped`` counts what the training process could not store, ``dropped_<kind>`` by kind
        (docs/store.md, "When writing fails"). ``status`` is one of running, finished,
        failed, interrupted; a run whose process died without finishing reads as interrupted, with ``ended_at``
        set to its last heartbeat.
        """
        return self._runs.runs()

    def scalars(
        self,
        run_id: int,
        tags: Sequence[str] | None = None,
        *,
        start_step: int | None = None,
        max_items: int | None = None,
    ) -> pd.DataFrame:
        """Logged scalars of a run: columns ``run_id, step, tag, value, wall_time`` sorted by tag and step.

        ``tags`` selects tags; ``start_step`` returns only steps after it (for incremental updates);
        ``max_items`` bounds the points per tag by downsampling that keeps the first, last, minimum, maximum and
        every NaN/Inf point of each bucket. NaN reads back as NaN, ±Inf as ±Inf.
        """
        return self._runs.scalars(run_id, tags, start_step=start_step, max_items=max_items)

    def graph(
        self, run_id: int, step: int | None = None, *, version: int | None = None, model: str | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(nodes, edges)`` of the graph that ``step`` ran (default: the last captured step), or of ``version``.

        ``nodes``: ``id, kind, name, op, module, parent, call, file, line, order, depth, target, in_shapes,
        out_shapes, out_dtypes, version_id``; ``edges``: ``src, src_output, dst, dst_arg, kind, shape, dtype,
        version_id`` (meanings in docs/capture.md).

        With several watched models, ``model`` picks one (default: the first one captured at that step). Raises
        :class:`NotFoundError` when the run has no such captured step or version.
        """
        return self._graphs.graph(run_id, step, version=version, model=model)

    def tensor_stats(
        self,
        run_id: int,
        node: int | str | None = None,
        *,
        step: int | None = None,
        role: str | None = None,
        model: str | None = None,
    ) -> pd.DataFrame:
        """Statistics of captured tensors, one row per tensor per captured step, by step then ``seq``: ``step,
        version_id, node, name, kind, op, module, target, output, role, seq, shape, dtype, device, numel, min, max,
        mean, std, norm, nan, posinf, neginf, zeros, hist_lo, hist_hi, hist_n, hist, sample, model``.

        ``node`` selects a node by id (``int``) or by name (``"fc.weight"``, ``"linear_0"``, ``"grad:fc.weight"``);
        ``step`` one captured step; ``role`` ``"value"`` or ``"grad"``; ``model`` one watched model. ``hist``
        (32 counts) and ``sample`` are numpy arrays.
        """
        return self._graphs.tensor_stats(run_id, node, step=step, role=role, model=model)

    def anomalies(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """First NaN/Inf origins of a run (or of one watched ``model``), by step: ``step, version_id, phase, node,
        name, op, module, file, line, tensor, nan, posinf, neginf, inputs, wall_time, model`` (docs/capture.md)."""
        return self._graphs.anomalies(run_id, model)

    def profiles(self, run_id: int | None = None) -> pd.DataFrame:
        """One row per profile (of ``run_id``, or of every run), by id: ``id, run_id, name, source, path, rank,
        start_ns, duration_ns, step_first, step_last, step_count, event_count, kernel_count, device_name,
        created_at``."""
        return self._profiles.profiles(run_id)

    def events(
        self,
        profile_id: int,
        start: int | None = None,
        end: int | None = None,
        max_items: int | None = None,
        lanes: list[int] | None = None,
    ) -> pd.DataFrame:
        """Events overlapping ``[start, end)`` (ns since the profile's ``start_ns``), per lane, by lane and start.

        ``max_items`` bounds the events returned *per lane*: the longest events are kept, whole duration classes
        at a time (all events of a class ``2**(L-1) <= dur < 2**L`` or none), so a zoomed-out view gets the
        events that are visible at its scale. ``frame.attrs["truncated"]`` lists the lanes that were cut.
        Columns: ``id, lane_id, kind`` (as text) ``, name, start, dur, parent, corr, link, ext_id, info`` (an op's
        inputs as JSON, ``[dims, types]`` then strides and concrete values where the trace has them: see
        :func:`torchscope.storage.profile.records.input_args`; an 'other' event's category).
        """
        return self._profiles.events(profile_id, start, end, max_items, lanes)

    def iter_events(self, profile_id: int, chunk_rows: int = 100_000) -> Iterator[pd.DataFrame]:
        """Every event of a profile by id, ``chunk_rows`` at most per frame, so a profile of any size is read in
        bounded memory (the Parquet export uses it). Columns as :meth:`events`; NotFoundError for an unknown profile."""
        return chunks.iter_events(self._engine, profile_id, chunk_rows)

    def op_table(self, profile_id: int, group_by_shape: bool = False) -> pd.DataFrame:
        """Per operator (and input shapes): ``name, [input_shapes,] calls, host_total_ns, host_self_ns,
        device_total_ns, device_self_ns, host_mean_ns, device_mean_ns``, by host total time."""
        return self._profiles.op_table(profile_id, group_by_shape)

    def kernel_table(self, profile_id: int) -> pd.DataFrame:
        """Per kernel name: ``name, calls, total_ns, mean_ns, min_ns, max_ns, share, tensor_cores,
        mean_occupancy, mean_registers, mean_blocks_per_sm``, by total time."""
        return self._profiles.kernel_table(profile_id)

    def module_table(self, profile_id: int) -> pd.DataFrame:
        """Per module path (``Sequential_0/Linear_1``, from ``with_stack=True`` traces): ``module, calls,
        host_total_ns, host_self_ns, device_total_ns, device_self_ns``; empty without module events."""
        return self._profiles.module_table(profile_id)

    def step_breakdown(self, profile_id: int) -> pd.DataFrame:
        """Per ``ProfilerStep#N`` (or one step -1 for a trace without steps), where its wall time went.

        Columns ``step, start, end, wall_ns, kernel_ns, communication_ns, memcpy_ns, memset_ns, runtime_ns,
        dataloader_ns, cpu_ns, idle_ns``; each instant is counted once in the first category active then (that
        order), so the ``*_ns`` columns after ``wall_ns`` add up to ``wall_ns``.
        """
        return self._profiles.step_breakdown(profile_id)

    def rank_group(self, profile_id: int) -> pd.DataFrame:
        """The profiles of ``profile_id``'s distributed job, one per rank, by rank: ``profile_id, rank, run_id,
        name``. The same window of every run of the job (``runs.job_id``), or the per-rank traces of one imported
        directory; a profile outside a job is a group of one (docs/views-profile.md, "Ranks")."""
        return self._ranks.rank_group(profile_id)

    def rank_steps(self, profile_id: int, threshold: float = STRAGGLER_THRESHOLD) -> pd.DataFrame:
        """Per rank and ``ProfilerStep#N`` of ``profile_id``'s group, by step then rank: ``rank, profile_id, step,
        start_ns`` (absolute, the rank's clock) ``, step_ns, compute_ns, comm_ns, overlap_ns, idle_ns, straggler,
        reason``. A rank straggles at a step when its step time or its computation exceeds the ranks' median by more
        than ``threshold`` (default 10%); ``reason`` says which (``step``, ``compute``, ``step+compute``)."""
        return self._ranks.rank_steps(profile_id, threshold)

    def rank_summary(self, profile_id: int, threshold: float = STRAGGLER_THRESHOLD) -> pd.DataFrame:
        """Per rank of ``profile_id``'s group: ``rank, profile_id, steps, step_ns`` (mean) ``, compute_ns, comm_ns,
        overlap_ns`` (sums over the steps) ``, overlap_pct`` (overlap / comm) ``, idle_ns, idle_pct, stragglers``
        (straggling steps, see :meth:`rank_steps`)."""
        return self._ranks.rank_summary(profile_id, threshold)

    def rank_offsets(self, profile_id: int, step: int | None = None) -> tuple[int | None, dict[int, int]]:
        """View read. ``(anchor step, {profile_id: ns})``: what to add to each rank's times so that ``ProfilerStep#
        step`` (default: the first step every rank has) starts when it starts on the lowest rank."""
        return self._ranks.rank_offsets(profile_id, step)

    def timeline_ranks(
        self,
        profile_id: int,
        start: int,
        end: int,
        *,
        step: int | None = None,
        px: int = 1200,
        max_items: int = 3000,
        max_blocks: int = 2000,
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """View read (timeline, ranks side by side): ``(lanes, events, blocks)`` of every rank of ``profile_id``'s
        group over ``[start, end)`` (ns since ``profile_id``'s start), one block of lanes per rank (``group`` is
        ``rank R · ...``), each rank shifted so that ``ProfilerStep#step`` starts with the lowest rank's (see
        :meth:`rank_offsets`). Columns as :meth:`timeline_lanes` and :meth:`timeline_window`, plus ``profile_id``;
        ``events.attrs``: ``in_window`` and ``step`` (the anchor)."""
        group = self.rank_group(profile_id)
        group = group[group["rank"].notna()]
        anchor, offsets = self.rank_offsets(profile_id, step)
        shift = rank_timeline.shifts(group, offsets, profile_id)
        lanes, events, blocks = rank_timeline.ranks_window(
            self.timeline_lanes, self.timeline_window, group, shift, int(start), int(end), px=px,
            max_items=max_items, max_blocks=max_blocks,
        )  # fmt: skip
        events.attrs["step"] = anchor
        return lanes, events, blocks

    def compare(
        self,
        a: int | str,
        b: int | str,
        *,
        align: str = "step",
        max_points: int | None = 2000,
        group_by_shape: bool = False,
    ) -> Comparison:
        """Compare ``a`` and ``b``: runs (``3``, ``"run:3"``) or profiles (``"p12"``); B is the new one, deltas are
        B - A. A run stands for its latest profile where profiles are compared. ``align`` (``step`` or ``time``)
        lines the scalar curves up; ``max_points`` bounds the points read per tag; ``group_by_shape`` splits the op
        diff by input shapes. The tables of the :class:`Comparison` and their columns: docs/compare.md."""
        return comparison.compare(
            self.diffs, a, b, align=align, max_points=max_points, group_by_shape=group_by_shape
        )

    # -- more reads ----------------------------------------------------------------------------------------------------

    def run(self, run_id: int) -> dict[str, Any]:
        """The row of :meth:`runs` for ``run_id`` as a dict; :class:`NotFoundError` if there is none."""
        return self._runs.run(run_id)

    def tags(self, run_id: int) -> list[str]:
        """The scalar tags of a run, sorted."""
        return self._runs.tags(run_id)

    def graph_steps(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Captured steps of a run, by step: columns ``step, version_id, wall_time, n_tensors, model``.

        ``model`` is the watch's name (``run.watch(..., name=)``, by default the model's class); a run that watched
        several models has one row per model and step; ``model=`` keeps one of them.
        """
        return self._graphs.graph_steps(run_id, model)

    def graph_versions(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Distinct graph structures of a run (or of the steps of one watched ``model``):
        ``id, hash, n_nodes, n_ops, n_edges, first_step, n_steps``."""
        return self._graphs.graph_versions(run_id, model)

    def graph_breaks(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Graph breaks of the watched models' ``torch.compile`` runs, one row per break of a compiled frame:
        ``step, compile_id, reason`` (one line), ``detail`` (Dynamo's whole message), ``filename, lineno`` (the
        user's line Dynamo stopped at), ``module`` (path of the watched module whose forward holds it, '' the root),
        ``module_class, wall_time, model``. See docs/capture.md."""
        return self._compile.graph_breaks(run_id, model)

    def compile_events(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Frames Dynamo compiled during the run: ``step, kind`` (compile | recompile) ``, compile_id, frame``
        (function name) ``, filename, lineno, module, reason`` (recompile: the guard that failed) ``, duration_ns``
        (the frame's compile time) ``, graph_ops`` (ops in its FX graph) ``, wall_time, model``."""
        return self._compile.compile_events(run_id, model)

    def fx_graph(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """Nodes of the FX graphs Dynamo captured, one row per node: ``graph_id, compile_id, step, graph_module``
        (the module whose frame it is) ``, id, name, op`` (FX opcode) ``, target`` (function or method name)
        ``, module`` (the watched module it was traced in, from ``nn_module_stack``) ``, filename, lineno, inputs``
        (ids of nodes of the same graph) ``, model``."""
        return self._compile.fx_graph(run_id, model)

    def compiled_kernels(self, run_id: int, model: str | None = None) -> pd.DataFrame:
        """The calls of Inductor's generated code for each compiled frame's forward, in order: ``compile_id, seq,
        kernel`` (``cpp_fused_relu_0``, ``addmm``) ``, kind`` (cpp | triton | extern) ``, profiler_name`` (what a
        profile shows: ``aten::addmm`` for extern calls) ``, module`` (the common module of its FX nodes)
        ``, source_nodes`` (FX node names) ``, aten`` (the ATen ops it covers, when Inductor says) ``, model``."""
        return self._compile.compiled_kernels(run_id, model)

    def compiled_module_table(self, profile_id: int) -> pd.DataFrame:
        """Host time per module of the compiled code in a profile (forward): ``module, calls, host_total_ns``
        (with its submodules) ``, host_self_ns, kernel_ns`` (kernels attributed to it) ``, other_ns`` (the rest of
        its compiled regions). Empty when the profile has no compiled region. See docs/capture.md."""
        return self._compile.compiled_module_table(profile_id)

    def tensor_value(
        self, run_id: int, step: int, node: int | str, output: int = 0, role: str = "value", model: str | None = None
    ) -> np.ndarray:
        """A whole tensor stored by ``tensors="full"`` capture, as a numpy array (bfloat16 comes back as float32)."""
        return self._graphs.tensor_value(run_id, step, node, output, role, model)

    def profile(self, profile_id: int) -> dict[str, object]:
        """The :meth:`profiles` row of ``profile_id`` plus ``devices`` and ``info`` (JSON text); NotFoundError."""
        return self._profiles.profile(profile_id)

    def lanes(self, profile_id: int) -> pd.DataFrame:
        """The lanes (host threads, device streams) of a profile: ``id, profile_id, pid, tid, kind, device, stream,
        label, sort, event_count, max_level``."""
        return self._profiles.lanes(profile_id)

    def runtime_split(self, profile_id: int) -> pd.DataFrame:
        """Per step (as :meth:`step_breakdown`), the wall time in CUDA/HIP runtime and driver calls by what they do:
        ``step, wall_ns, launch_ns`` (queueing work: kernel launches, async copies and sets, each under 1 ms),
        ``sync_ns`` (waiting for the device), ``setup_ns`` (everything else: context and stream creation,
        allocations, and launches of 1 ms or more, which load a kernel's module on first use)."""
        return self._profiles.runtime_split(profile_id)

    def device_utilization(self, profile_id: int) -> pd.DataFrame:
        """Per step and device: ``step, device, wall_ns, busy_ns, kernel_ns, idle_ns, utilization`` (kernel/wall)."""
        return self._profiles.device_utilization(profile_id)

    def kernel_ops(self, profile_id: int) -> pd.DataFrame:
        """Every device event with the op that launched it: ``id, kind, name, start, dur, launch_id, op_id, op,
        module`` (``op_id`` -1 and ``op``/``module`` None when unknown)."""
        return self._profiles.kernel_ops(profile_id)

    def memory_timeline(self, profile_id: int) -> pd.DataFrame:
        """Allocator events by time: ``ts, device_type, device, bytes, addr, allocated, reserved`` (allocated and
        reserved as the profiler reported them after each event; ``bytes`` < 0 is a free), ``lane_id``, ``args``
        (the event's other args as a JSON object, e.g. ``Ev Idx``; None when none)."""
        return self._profiles.memory_timeline(profile_id)

    def memory_peak(self, profile_id: int) -> pd.DataFrame:
        """Per device: ``device_type, device, peak_allocated, peak_at, peak_reserved, events``."""
        return self._profiles.memory_peak(profile_id)

    def memory_curve(self, profile_id: int) -> pd.DataFrame:
        """Allocated memory over time per device, at most 2,000 points a device (each time bucket's maximum, at its
        own time: a peak is never lost): ``device_type, device, ts, allocated``; stored with the profile."""
        return self._profiles.memory_curve(profile_id)

    def event_details(self, profile_id: int) -> pd.DataFrame:
        """What device events carry: ``event_id, grid, block`` ("x,y,z") ``, registers, shared_memory,
        blocks_per_sm, warps_per_sm, occupancy`` (percent) ``, bytes`` (memcpy/memset), by event id."""
        return self._profiles.event_details(profile_id)

    def event_args(self, profile_id: int) -> pd.DataFrame:
        """The args of events beyond the columns of :meth:`events` and :meth:`event_details`, as the trace wrote
        them: ``event_id, args`` (a JSON object, e.g. ``{"Ev Idx": 3, "Sequence number": 12}``), only for events
        that have any, by event id."""
        return self._profiles.event_args(profile_id)

    def flows(self, profile_id: int) -> pd.DataFrame:
        """Flow arrows between events other than runtime -> kernel (see ``events.link``): ``kind, flow_id, src,
        dst`` (event ids). Kineto's ``fwdbwd`` flows go from a forward op to the backward op autograd ran for it."""
        return self._profiles.flows(profile_id)

    def imported_graph(self, run_id: int, tag: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The graphs imported from TensorBoard logs into ``run_id`` as ``(nodes, edges)``.

        ``nodes``: ``graph_id, tag, kind`` (graph_def | op_graph | keras) ``, name, op, scope`` (name-scope path)
        ``, inputs`` (list of node names) ``, device, attrs`` (dict). ``edges``: ``graph_id, source, target`` for
        every input that is a node of the same graph. ``tag`` selects one graph by its tag.
        """
        return self._tensorboard.imported_graph(run_id, tag)

    def histograms(self, run_id: int, tags: list[str] | None = None) -> pd.DataFrame:
        """Imported histograms: ``run_id, tag, step, wall_time, min, max, num, sum, sum_squares, buckets``
        (``buckets`` a list of ``[left, right, count]``), by tag and step."""
        return self._tensorboard.histograms(run_id, tags)

    def texts(self, run_id: int, tags: list[str] | None = None) -> pd.DataFrame:
        """Imported text (``add_text``, ``tf.summary.text``): ``tag, step, wall_time, text`` (markdown; a table of
        strings as a markdown table), by tag and step."""
        return self._tb_data.texts(run_id, tags)

    def images(self, run_id: int, tags: list[str] | None = None) -> pd.DataFrame:
        """Imported images (``add_image``, ``tf.summary.image``) without their bytes: ``id, tag, step, wall_time,
        sample`` (the image's place among those logged at once) ``, width, height, mime``, by tag, step, sample."""
        return self._tb_data.images(run_id, tags)

    def image(self, image_id: int) -> tuple[str, bytes]:
        """``(mime, encoded bytes)`` of one imported image (an ``id`` of :meth:`images`); NotFoundError."""
        return self._tb_data.image(image_id)

    def hparam_metrics(self, run_ids: list[int] | None = None) -> pd.DataFrame:
        """The metrics that imported hparams sessions name (``add_hparams``' ``metric_dict``), each one's last value:
        ``run_id, tag, step, wall_time, value``, by run and tag."""
        return self._tb_data.hparam_metrics(run_ids)

    def hparams(self) -> pd.DataFrame:
        """The hyperparameters and metrics of every run that has hparams (a config, or imported ``add_hparams``):
        ``run_id, kind`` (``hparam`` | ``metric``) ``, key, value``. Hparams are the config flattened to ``a.b``
        keys; metrics the imported hparam metrics and the latest value of each scalar tag (``sys/`` aside)."""
        return hparams_rows(self.runs(), self.last_scalars(), self.hparam_metrics())

    def imported_graphs(self, run_id: int) -> pd.DataFrame:
        """The graphs imported from TensorBoard logs into ``run_id``, without their nodes: ``id, tag, kind, step,
        nodes`` (how many), by id."""
        return self._tb_data.imported_graphs(run_id)

    def histogram_tags(self, run_id: int) -> list[str]:
        """View read (run page): the tags of a run's imported histograms, by name, without reading their buckets."""
        return self._tensorboard.histogram_tags(run_id)

    def latest_profile(self, run_id: int) -> int | None:
        """The id of the newest profile of ``run_id``, or None when the run has none."""
        return self.diffs.latest_profile(run_id)

    def graph_diff(
        self, run_a: int, run_b: int, *, step_a: int | None = None, step_b: int | None = None
    ) -> pd.DataFrame:
        """Structural diff of the graphs two runs captured (default: each run's last captured step); one row per
        node key, ``only A`` / ``only B`` / ``both``. Raises ``NotFoundError`` when a run captured no graph."""
        return self.diffs.graph_diff(run_a, run_b, step_a=step_a, step_b=step_b)

    def graph_node_diff(
        self, run_a: int, run_b: int, *, step_a: int | None = None, step_b: int | None = None
    ) -> pd.DataFrame:
        """Per shared node, the change of its activation (or gradient) statistics between one captured step of
        each run (default: the last). ``norm_change`` is what the graph view colours by; see docs/compare.md."""
        return self.diffs.graph_node_diff(run_a, run_b, step_a=step_a, step_b=step_b)

    # -- reads for the dashboard's views -----------------------------------------------------------------------------

    def scalars_after(
        self,
        run_id: int,
        cursors: Mapping[str, tuple[int, int]],
        *,
        max_items: int | None = None,
    ) -> pd.DataFrame:
        """View read (live run page): the points the page does not have yet: same columns and order as :meth:`scalars`.

        ``cursors`` maps a tag to the ``(step, wall_time)`` of the last point the view holds; only points after it
        (a later step, or the same step logged later, as system metrics are) come back. Tags missing from ``cursors``
        come back whole. ``max_items`` bounds the points per tag as in :meth:`scalars`. A poll with nothing new costs
        one lookup in ``scalar_latest``, not a scan of ``scalars``. A point logged later at a step *before* the
        cursor (going back in steps) is not returned.
        """
        return self._runs.scalars_after(run_id, cursors, max_items=max_items)

    def scalars_downsampled(self, run_id: int, max_items: int) -> pd.DataFrame:
        """View read (live run page): every tag of a run downsampled for display, as :meth:`scalars` with
        ``max_items`` (up to twice as many points per tag), from a cache this store keeps up to date: the first call
        reads the run, later calls only what was logged since (see :mod:`torchscope.storage.runs.scalar_cache`).
        Points logged later at a step before a tag's last one are not picked up."""
        return self._runs.scalars_downsampled(run_id, max_items)

    def run_artifacts(self, run_id: int, *, limit: int = 50) -> pd.DataFrame:
        """View read (live run page): what a run produced besides scalars: columns ``kind, id, name, step, created_at``,
        by kind then id.

        ``kind`` is ``graph`` (a distinct captured graph structure, ``step`` its first step), ``anomaly`` (the first
        NaN/Inf origin of a captured step, ``name`` is ``phase: tensor``) or ``profile``. At most ``limit`` of each
        kind, the earliest; cheap enough for a live page to poll every second."""
        return self._runs.run_artifacts(run_id, limit=limit)

    def last_scalars(self, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """View read (runs list): the latest value of every tag of the given runs: columns ``run_id, tag, step,
        value, wall_time, count``."""
        return self._runs.last_scalars(run_ids)

    def run_summaries(self, limit: int = 3) -> tuple[pd.DataFrame, list[str]]:
        """View read (runs list): :meth:`runs` with the latest value of the ``limit`` key scalars (losses first) as
        extra columns.

        Returns the frame and the names of the key-scalar columns.
        """
        return self._runs.run_summaries(limit)

    def step_stats(self, run_id: int, step: int, model: str | None = None) -> pd.DataFrame:
        """View read (graph colouring): every tensor statistic of one captured step without blobs, by node:
        ``node, output, role, numel, min, max, mean, std, norm, nan, posinf, neginf, zeros``.

        ``node`` is the graph node (for ``role == "grad"`` the grad node, whose ``target`` is the value's node).
        ``model`` keeps one watched model (node ids are per graph, so a run watching several models needs it).
        An uncaptured step gives an empty frame.
        """
        return self._graph_view.step_stats(run_id, step, model)

    def op_events(self, profile_id: int, names: list[str], max_items: int = 50) -> pd.DataFrame:
        """View read (graph inspector): host op events (``cpu_op``) of ``profile_id`` named one of ``names``, by
        start, at most ``max_items``.

        Columns ``id, name, start, dur, info``: ``start``/``dur`` in ns since the profile's start, ``info`` the inputs
        the profiler recorded as JSON (as in :meth:`events`; None without ``record_shapes``).
        """
        return self._graph_view.op_events(profile_id, names, max_items)

    def profiler_module_paths(self, run_id: int, *, version: int | None = None) -> dict[str, str]:
        """View read (graph view): ``{profiler module path: graph module path}`` (``Net_0/Block_1/Linear_2`` ->
        ``b2.lin``) for the module calls of a run's captured graph (its last captured step, or graph ``version``)."""
        return self.diffs.profiler_module_paths(run_id, version=version)

    def graph_module_table(self, run_id: int, profile_id: int, *, version: int | None = None) -> pd.DataFrame | None:
        """View read (graph view): the :meth:`module_table` of ``profile_id`` keyed by the module paths of
        ``run_id``'s captured graph (see :meth:`profiler_module_paths`), summed where several profiler paths are one
        module: ``module, calls, host_total_ns, host_self_ns, device_total_ns, device_self_ns``, by module. None when
        the profile has no module events or a module the graph does not have (they do not describe the same model)."""
        return self.diffs.graph_module_table(run_id, profile_id, version=version)

    def timeline_prefetch(self, profile_id: int) -> None:
        """View read (profile page): load a profile's timeline index on a background thread (the profile page calls
        this, so the timeline opens at once); errors are left for the timeline's own read to report."""
        return self._timeline.timeline_prefetch(profile_id)

    def timeline_lanes(self, profile_id: int) -> pd.DataFrame:
        """View read (timeline): the lanes in display order, one row block each: ``id, position, row0, rows, group,
        label, kind, device, stream, event_count`` (``row0`` is the lane's first row, ``rows`` its nesting depth
        + 1, ``group`` the process / device it belongs to)."""
        return self._timeline.timeline_lanes(profile_id)

    def timeline_window(
        self,
        profile_id: int,
        start: int | None = None,
        end: int | None = None,
        *,
        px: int = 1200,
        max_items: int = 3000,
        max_blocks: int = 2000,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """View read (timeline): what to draw of ``[start, end)`` (ns since the profile start) at ``px`` pixels:
        ``(events, blocks)``.

        ``events`` (``id, row, lane_id, kind, name, start, dur, depth``) are the events at least a pixel wide, the
        longest ``max_items`` when there are more; ``blocks`` (``row, start, end, count, busy``) merge the rest per
        row into density blocks (``count`` events covering ``busy`` of the block's width). ``events.attrs`` holds
        ``in_window`` and ``ns_per_px``."""
        return self._timeline.timeline_window(profile_id, start, end, px=px, max_items=max_items, max_blocks=max_blocks)

    def timeline_search(
        self, profile_id: int, query: str, start: int | None = None, end: int | None = None, max_items: int = 2000
    ) -> pd.DataFrame:
        """View read (timeline search): events whose name contains ``query`` (case-insensitive) overlapping the
        window, at most ``max_items``: the longest duration classes first (``2**(L-1) <= dur < 2**L``), then the
        earliest; ordered by id. ``attrs["total"]`` counts the matches in the whole profile.
        Columns as the ``events`` of :meth:`timeline_window`."""
        return self._timeline.timeline_search(profile_id, query, start, end, max_items)

    def timeline_event(self, profile_id: int, event_id: int) -> dict[str, Any]:
        """View read (timeline): one event with everything the details panel shows: its row, lane, arguments, device
        details, the enclosing call stack, the runtime call that launched it (a device event) or the device events it
        launched (a runtime call), the ops at the other end of its flow arrows (``flows_out``/``flows_in``: a forward
        op and the backward op autograd ran for it), each related event with its row and times so links can be drawn."""
        return self._timeline.timeline_event(profile_id, event_id)

    def timeline_minimap(self, profile_id: int, bins: int = 400) -> pd.DataFrame:
        """View read (timeline): events per lane (rows, display order, indexed by lane id) and time bin (columns) of
        the whole profile; ``attrs["bin_ns"]`` is a bin's width."""
        return self._timeline.timeline_minimap(profile_id, bins)

    def name_spans(self, profile_id: int) -> pd.DataFrame:
        """View read (profile links): per event name: ``name, calls, first_start, last_end`` (ns since the profile
        start), for links that open the timeline on every occurrence of an op, kernel or module."""
        return self._profiles.summaries.get(profile_id, "name_spans", lambda: self._timeline.name_spans(profile_id))

    def memory_by_op(self, profile_id: int) -> pd.DataFrame:
        """View read (profile memory tab): allocator events attributed to the innermost op running on their thread:
        ``op, allocations, allocated_bytes, frees, freed_bytes, held_bytes``, by bytes allocated (``(no op)`` outside
        any op). ``held_bytes``: what the op allocated and nothing freed later within the profile (matched by device
        and address; the stored summary is named ``memory_held_by_op``)."""
        return self._profiles.summaries.get(profile_id, "memory_held_by_op", lambda: self._timeline.memory_by_op(profile_id))

    def op_modules(self, profile_id: int) -> pd.DataFrame:
        """View read (profile links): per operator name, the module path (``Sequential_0/Linear_0``, from
        ``with_stack=True`` module events) in which it spent most host time: ``name, module, host_ns``; empty without
        module events."""
        return self._profiles.summaries.get(profile_id, "op_modules", lambda: self._timeline.op_modules(profile_id))


def open_store(db: str | os.PathLike[str] | None = None) -> Store:
    """Open the store at ``db`` (path or SQLAlchemy URL; default ``$TORCHSCOPE_DB`` or ``./torchscope.db``)."""
    return Store(db)


def compare(
    store: Store,
    a: int | str,
    b: int | str,
    *,
    align: str = "step",
    max_points: int | None = 2000,
    group_by_shape: bool = False,
) -> Comparison:
    """``torchscope.compare(store, a, b)``: the same as :meth:`Store.compare`."""
    return store.compare(a, b, align=align, max_points=max_points, group_by_shape=group_by_shape)
