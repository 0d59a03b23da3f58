"""``store.compare(a, b)`` (and ``torchscope.compare(store, a, b)``): what changed between two runs or two profiles.

A run stands for its newest profile wherever profiles are compared (the comparison's ``notes`` say which one was
picked). Runs bring their config, scalars and captured graphs; profiles bring steps, breakdown and the op, kernel
and module diffs. References are parsed by :func:`torchscope.storage.compare.records.parse_ref`; the tables and
their columns are documented in docs/compare.md.
"""

from __future__ import annotations

from torchscope.errors import NotFoundError, TorchscopeError
from torchscope.storage.compare.reads import CompareReads
from torchscope.storage.compare.records import PROFILE, RUN, Comparison, Side, parse_ref


def resolve(reads: CompareReads, ref: int | str) -> Side:
    """The :class:`Side` a reference names; ``NotFoundError`` when the store has no such run or profile."""
    kind, ident = parse_ref(ref)
    if kind == PROFILE:
        prof = reads.profiles.profile(ident)
        run = reads.runs.run(int(prof["run_id"]))
        return Side(PROFILE, ident, int(run["id"]), str(run["name"]), ident, str(prof["name"]), prof["source"],
                    prof.get("device_name"))  # fmt: skip
    run = reads.runs.run(ident)
    pid = reads.latest_profile(ident)
    if pid is None:
        return Side(RUN, ident, ident, str(run["name"]))
    prof = reads.profiles.profile(pid)
    return Side(RUN, ident, ident, str(run["name"]), pid, str(prof["name"]), prof["source"], prof.get("device_name"))


def compare(
    reads: CompareReads,
    a: int | str,
    b: int | str,
    *,
    align: str = "step",
    max_points: int | None = 2000,
    group_by_shape: bool = False,
) -> Comparison:
    """Compare ``a`` and ``b`` (runs or profiles, see :func:`parse_ref`); B is the new one, deltas are B - A.

    ``align`` (``step`` or ``time``) lines the scalar curves up; ``max_points`` bounds the points read per tag;
    ``group_by_shape`` splits the op diff by input shapes.
    """
    sa, sb = resolve(reads, a), resolve(reads, b)
    out = Comparison(sa, sb)
    if sa.kind == RUN and sb.kind == RUN:
        out.config = reads.config_diff(sa.run_id, sb.run_id)
        out.scalars = reads.scalar_diff(sa.run_id, sb.run_id, align=align, max_items=max_points)
        out.scalar_summary = reads.scalar_summary(sa.run_id, sb.run_id)
        _compare_graphs(reads, out)
    _compare_profiles(reads, out, group_by_shape)
    if out.graph_nodes is not None and out.ops is not None:
        try:
            out.module_times = reads.graph_module_time_diff(sa.run_id, sb.run_id)
        except TorchscopeError as exc:  # no module events, or a profile of another model: the rest still stands
            out.notes.append(f"no time per graph module: {exc}")
    return out


def _compare_profiles(reads: CompareReads, out: Comparison, group_by_shape: bool) -> None:
    sa, sb = out.a, out.b
    for side in (sa, sb):
        if side.profile_id is None:
            out.notes.append(f"{side.label} has no profile: no profile comparison")
    if sa.profile_id is None or sb.profile_id is None:
        return
    picked = [side for side in (sa, sb) if side.kind == RUN]
    for side in picked:
        count = len(reads.profiles.profiles(side.run_id))
        more = f"; it has {count} profiles, compare another with p<id>" if count > 1 else ""
        out.notes.append(f"{side.label}: comparing its latest profile, p{side.profile_id} ({side.profile_name}){more}")
    if sa.device != sb.device and (sa.device or sb.device):
        out.notes.append(f"different devices: {sa.device or 'unknown'} vs {sb.device or 'unknown'}")
    pa, pb = sa.profile_id, sb.profile_id
    out.steps = reads.step_diff(pa, pb)
    out.breakdown = reads.breakdown_diff(pa, pb)
    out.ops = reads.op_diff(pa, pb, group_by_shape=group_by_shape)
    out.kernels = reads.kernel_diff(pa, pb)
    out.modules = reads.module_diff(pa, pb)


def _compare_graphs(reads: CompareReads, out: Comparison) -> None:
    try:
        out.graph_nodes = reads.graph_diff(out.a.run_id, out.b.run_id)
        out.graph_modules = reads.graph_module_diff(out.a.run_id, out.b.run_id)
        out.node_changes = reads.graph_node_diff(out.a.run_id, out.b.run_id)
    except NotFoundError:
        missing = [s.label for s in (out.a, out.b) if reads.graphs.graph_steps(s.run_id).empty]
        out.graph_nodes = out.graph_modules = out.node_changes = None
        out.notes.append(f"{' and '.join(missing)} captured no graph: no graph comparison")
