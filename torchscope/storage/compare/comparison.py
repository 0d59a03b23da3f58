"""``torchscope.compare(store, a, b)``: what changed between two runs or two profiles, as DataFrames.

References: a plain integer, ``"3"``, ``"run:3"`` or ``"r3"`` is a run; ``"p12"`` or ``"profile:12"`` is a profile.
A run stands for its newest profile wherever profiles are compared (the comparison's ``notes`` say which one was
picked). Runs bring their config, scalars and captured graphs; profiles bring steps, breakdown and the op, kernel
and module diffs. The tables and their columns are documented in docs/compare.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from torchscope.errors import BadRequestError, NotFoundError, TorchscopeError
from torchscope.storage.store import Store

_REF = re.compile(r"(?:(?P<kind>run|r|profile|p)[:#]?)?(?P<id>\d+)", re.IGNORECASE)
RUN, PROFILE = "run", "profile"


def parse_ref(ref: int | str) -> tuple[str, int]:
    """``("run", 3)`` for ``3``/``"3"``/``"run:3"``/``"r3"``; ``("profile", 12)`` for ``"p12"``/``"profile:12"``.

    Raises :class:`BadRequestError` for anything else.
    """
    if isinstance(ref, int) and not isinstance(ref, bool):
        return RUN, ref
    match = _REF.fullmatch(str(ref).strip())
    if match is None:
        raise BadRequestError(
            f"{ref!r} is not a run or profile id: give a run as 3 (or run:3) and a profile as p12 (or profile:12)"
        )
    kind = (match["kind"] or "run").lower()
    return (PROFILE if kind in ("p", "profile") else RUN), int(match["id"])


def ref_text(kind: str, ident: int) -> str:
    """The canonical spelling of a reference, as used in URLs: ``3`` for a run, ``p12`` for a profile."""
    return f"p{ident}" if kind == PROFILE else str(ident)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the run, and the profile compared for it (None when it has none)."""

    kind: str
    id: int
    run_id: int
    run_name: str
    profile_id: int | None = None
    profile_name: str | None = None
    source: str | None = None
    device: str | None = None

    @property
    def label(self) -> str:
        """``run 3 (baseline)`` or ``profile 12 (window 1) of run 3 (baseline)``."""
        run = f"run {self.run_id} ({self.run_name})"
        return f"profile {self.id} ({self.profile_name}) of {run}" if self.kind == PROFILE else run

    @property
    def ref(self) -> str:
        """The reference that names this side in a URL or on the command line."""
        return ref_text(self.kind, self.id)


@dataclass
class Comparison:
    """The diff tables of two runs or profiles; a table is None where it does not apply (see ``notes``)."""

    a: Side
    b: Side
    notes: list[str] = field(default_factory=list)
    config: pd.DataFrame | None = None
    scalars: pd.DataFrame | None = None
    scalar_summary: pd.DataFrame | None = None
    steps: pd.DataFrame | None = None
    breakdown: pd.DataFrame | None = None
    ops: pd.DataFrame | None = None
    kernels: pd.DataFrame | None = None
    modules: pd.DataFrame | None = None
    graph_nodes: pd.DataFrame | None = None
    graph_modules: pd.DataFrame | None = None
    node_changes: pd.DataFrame | None = None
    module_times: pd.DataFrame | None = None

    TABLES = ("config", "scalars", "scalar_summary", "steps", "breakdown", "ops", "kernels", "modules",
              "graph_nodes", "graph_modules", "node_changes", "module_times")  # fmt: skip

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table that applies, by name, in the order of :data:`TABLES`."""
        return {name: getattr(self, name) for name in self.TABLES if getattr(self, name) is not None}


def resolve(store: Store, ref: int | str) -> Side:
    """The :class:`Side` a reference names; ``NotFoundError`` when the store has no such run or profile."""
    kind, ident = parse_ref(ref)
    if kind == PROFILE:
        prof = store.profile(ident)
        run = store.run(int(prof["run_id"]))
        return Side(PROFILE, ident, int(run["id"]), str(run["name"]), ident, str(prof["name"]), prof["source"],
                    prof.get("device_name"))  # fmt: skip
    run = store.run(ident)
    pid = store.latest_profile(ident)
    if pid is None:
        return Side(RUN, ident, ident, str(run["name"]))
    prof = store.profile(pid)
    return Side(RUN, ident, ident, str(run["name"]), pid, str(prof["name"]), prof["source"], prof.get("device_name"))


def compare(
    store: Store,
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
    sa, sb = resolve(store, a), resolve(store, b)
    out = Comparison(sa, sb)
    if sa.kind == RUN and sb.kind == RUN:
        out.config = store.config_diff(sa.run_id, sb.run_id)
        out.scalars = store.scalar_diff(sa.run_id, sb.run_id, align=align, max_items=max_points)
        out.scalar_summary = store.scalar_summary(sa.run_id, sb.run_id)
        _compare_graphs(store, out)
    _compare_profiles(store, out, group_by_shape)
    if out.graph_nodes is not None and out.ops is not None:
        try:
            out.module_times = store.graph_module_time_diff(sa.run_id, sb.run_id)
        except TorchscopeError as exc:  # no module events, or a profile of another model: the rest still stands
            out.notes.append(f"no time per graph module: {exc}")
    return out


def _compare_profiles(store: Store, out: Comparison, group_by_shape: bool) -> None:
    sa, sb = out.a, out.b
    for side in (sa, sb):
        if side.profile_id is None:
            out.notes.append(f"{side.label} has no profile: no profile comparison")
    if sa.profile_id is None or sb.profile_id is None:
        return
    picked = [side for side in (sa, sb) if side.kind == RUN]
    for side in picked:
        count = len(store.profiles(side.run_id))
        more = f"; it has {count} profiles, compare another with p<id>" if count > 1 else ""
        out.notes.append(f"{side.label}: comparing its latest profile, p{side.profile_id} ({side.profile_name}){more}")
    if sa.device != sb.device and (sa.device or sb.device):
        out.notes.append(f"different devices: {sa.device or 'unknown'} vs {sb.device or 'unknown'}")
    pa, pb = sa.profile_id, sb.profile_id
    out.steps = store.step_diff(pa, pb)
    out.breakdown = store.breakdown_diff(pa, pb)
    out.ops = store.op_diff(pa, pb, group_by_shape=group_by_shape)
    out.kernels = store.kernel_diff(pa, pb)
    out.modules = store.module_diff(pa, pb)


def _compare_graphs(store: Store, out: Comparison) -> None:
    try:
        out.graph_nodes = store.graph_diff(out.a.run_id, out.b.run_id)
        out.graph_modules = store.graph_module_diff(out.a.run_id, out.b.run_id)
        out.node_changes = store.graph_node_diff(out.a.run_id, out.b.run_id)
    except NotFoundError:
        missing = [s.label for s in (out.a, out.b) if store.graph_steps(s.run_id).empty]
        out.graph_nodes = out.graph_modules = out.node_changes = None
        out.notes.append(f"{' and '.join(missing)} captured no graph: no graph comparison")
