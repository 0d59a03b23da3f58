"""The record types of a comparison: references to runs and profiles, :class:`Side`, :class:`Comparison`, and the
status values of diff rows. What the dashboard and the CLI take from storage besides :class:`Store`.

References: a plain integer, ``"3"``, ``"run:3"`` or ``"r3"`` is a run; ``"p12"`` or ``"profile:12"`` is a profile.
Tables and their columns are documented in docs/compare.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from torchscope.errors import BadRequestError

_REF = re.compile(r"(?:(?P<kind>run|r|profile|p)[:#]?)?(?P<id>\d+)", re.IGNORECASE)
RUN, PROFILE = "run", "profile"
"""The two kinds of side a comparison has."""
BOTH, ONLY_A, ONLY_B = "both", "only A", "only B"
"""The status of a row of a diff table: present on both sides, or on one only."""
STATUS_ORDER = {ONLY_A: 0, ONLY_B: 1, BOTH: 2}
"""How structural diffs order their rows: what changed first."""


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


def totals(diff: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """One row per additive column: ``column, a, b, delta``; ``delta`` is the sum of the rows' deltas, which
    equals ``b - a`` (the change of the total) because a missing row counts 0."""
    rows = [
        (c, int(diff[f"{c}_a"].sum()), int(diff[f"{c}_b"].sum()), int(diff[f"{c}_delta"].sum())) for c in columns
    ]
    return pd.DataFrame(rows, columns=["column", "a", "b", "delta"])
