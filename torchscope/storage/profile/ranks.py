"""Many ranks in one view: step time, computation, communication, their overlap and idle time per rank and step, and
the stragglers. Pure numpy/pandas over intervals (the SQL that feeds it is in ``rank_reads``); docs/views-profile.md,
"Ranks", documents every definition here.

Per rank and ``ProfilerStep#N`` (the step's window ``[start, end)`` on that rank's clock):

- ``compute_ns``: the union of computation inside the step. On a trace with device activity, the device's kernels,
  memory copies and sets that are not collectives (HTA's "computation"); on a CPU-only trace, the host events of the
  thread that runs the steps, other than the steps themselves and communication annotations.
- ``comm_ns``: the union of communication inside the step: collective kernels on the device; on a CPU-only trace the
  collective annotations (``gloo:``, ``nccl:``, ``mpi:``, ``ucc:``) on any host thread.
- ``overlap_ns``: communication time during which computation also ran (the intersection);
  ``overlap_pct`` = overlap / communication, HTA's "comm/comp overlap".
- ``idle_ns``: step time covered by neither.

A rank straggles at step N when its step time exceeds the median of the ranks' step times at N by more than
:data:`STRAGGLER_THRESHOLD`, or its computation exceeds the median computation by as much. The second test matters
because a synchronous job evens step times out: the ranks that wait for a slow one spend the wait in communication,
so their steps last as long as the slow rank's, while the slow rank's computation stands out.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from torchscope.storage.profile.calc import union_length_by_window

STRAGGLER_THRESHOLD = 0.10
"""A step is straggling when it is more than this fraction above the ranks' median (10%)."""

COMM_ANNOTATIONS = ("gloo:", "nccl:", "mpi:", "ucc:")
"""Name prefixes of the host annotations ``torch.distributed`` records around a collective."""

STEP_COLUMNS = [
    "rank", "profile_id", "step", "start_ns", "step_ns", "compute_ns", "comm_ns", "overlap_ns", "idle_ns",
    "straggler", "reason",
]  # fmt: skip
SUMMARY_COLUMNS = [
    "rank", "profile_id", "steps", "step_ns", "compute_ns", "comm_ns", "overlap_ns", "overlap_pct", "idle_ns",
    "idle_pct", "stragglers",
]  # fmt: skip


class RankIntervals(NamedTuple):
    """What the analysis needs of one rank's profile; times in ns on that profile's clock (any common origin)."""

    rank: int
    profile_id: int
    origin_ns: int  # the absolute time of 0 on this clock (profiles.start_ns)
    steps: pd.DataFrame  # step, start, end
    compute: tuple[np.ndarray, np.ndarray]  # starts, ends
    comm: tuple[np.ndarray, np.ndarray]


def step_rows(ranks: list[RankIntervals]) -> list[dict[str, object]]:
    """One row per rank and step: ``STEP_COLUMNS`` but the straggler columns."""
    rows: list[dict[str, object]] = []
    for r in ranks:
        los, his = r.steps["start"].to_numpy(np.int64), r.steps["end"].to_numpy(np.int64)
        computes = union_length_by_window(*r.compute, los, his).tolist()
        comms = union_length_by_window(*r.comm, los, his).tolist()
        busies = union_length_by_window(np.concatenate((r.compute[0], r.comm[0])),
                                        np.concatenate((r.compute[1], r.comm[1])), los, his).tolist()  # fmt: skip
        for step, lo, hi, compute, comm, busy in zip(r.steps["step"].tolist(), los.tolist(), his.tolist(), computes,
                                                      comms, busies):  # fmt: skip
            rows.append({
                "rank": r.rank, "profile_id": r.profile_id, "step": int(step), "start_ns": r.origin_ns + lo,
                "step_ns": hi - lo, "compute_ns": compute, "comm_ns": comm, "overlap_ns": compute + comm - busy,
                "idle_ns": hi - lo - busy,
            })  # fmt: skip
    return rows


def mark_stragglers(steps: pd.DataFrame, threshold: float = STRAGGLER_THRESHOLD) -> pd.DataFrame:
    """Add ``straggler`` and ``reason`` (``step``, ``compute``, ``step+compute`` or ``""``) by the rule of the module
    docstring; a step that only one rank has is never straggling."""
    out = steps.copy()
    if out.empty:
        out["straggler"], out["reason"] = pd.Series(dtype=bool), pd.Series(dtype=object)
        return out
    by_step = out.groupby("step")
    ranks = by_step["rank"].transform("count")
    slow_step = out["step_ns"] > by_step["step_ns"].transform("median") * (1 + threshold)
    slow_compute = out["compute_ns"] > by_step["compute_ns"].transform("median") * (1 + threshold)
    slow_step &= ranks > 1
    slow_compute &= ranks > 1
    out["straggler"] = slow_step | slow_compute
    out["reason"] = [
        "+".join(w for w, on in (("step", a), ("compute", b)) if on) for a, b in zip(slow_step, slow_compute)
    ]
    return out


def step_table(ranks: list[RankIntervals]) -> pd.DataFrame:
    """Per rank per step, ordered by step then rank: ``STEP_COLUMNS`` but the straggler columns."""
    frame = pd.DataFrame(step_rows(ranks), columns=STEP_COLUMNS[:-2])
    frame = frame.astype({c: "int64" for c in STEP_COLUMNS[:-2]})
    return frame.sort_values(["step", "rank"], kind="stable").reset_index(drop=True)


def rank_steps(ranks: list[RankIntervals], threshold: float = STRAGGLER_THRESHOLD) -> pd.DataFrame:
    """Per rank per step (``STEP_COLUMNS``), ordered by step then rank."""
    return mark_stragglers(step_table(ranks), threshold)


def rank_summary(steps: pd.DataFrame) -> pd.DataFrame:
    """Per rank (``SUMMARY_COLUMNS``): ``step_ns`` is the mean step time; compute, comm, overlap and idle are sums
    over the steps; ``overlap_pct`` = overlap / comm and ``idle_pct`` = idle / total step time, in percent (NaN
    when the denominator is 0); ``stragglers`` counts the rank's straggling steps."""
    if steps.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = steps.groupby(["rank", "profile_id"], sort=True)
    out = grouped.agg(
        steps=("step", "count"), step_total=("step_ns", "sum"), compute_ns=("compute_ns", "sum"),
        comm_ns=("comm_ns", "sum"), overlap_ns=("overlap_ns", "sum"), idle_ns=("idle_ns", "sum"),
        stragglers=("straggler", "sum"),
    ).reset_index()  # fmt: skip
    out["step_ns"] = out["step_total"] // out["steps"]
    out["overlap_pct"] = 100.0 * out["overlap_ns"] / out["comm_ns"].where(out["comm_ns"] > 0)
    out["idle_pct"] = 100.0 * out["idle_ns"] / out["step_total"].where(out["step_total"] > 0)
    return out[SUMMARY_COLUMNS].astype({"stragglers": "int64"})


def step_offsets(steps: pd.DataFrame, anchor: int | None = None) -> tuple[int | None, dict[int, int]]:
    """How far to shift each rank's clock so that step ``anchor`` starts when it starts on the lowest rank.

    ``anchor`` defaults to the first step every rank has. Returns ``(anchor, {profile_id: offset_ns})``: add the
    offset to a rank's absolute times. Without a common step every offset is 0 (the ranks' own clocks).
    """
    if steps.empty:
        return None, {}
    profiles = steps.drop_duplicates("profile_id")[["rank", "profile_id"]].sort_values("rank")
    per_step = steps.groupby("step")["profile_id"].nunique()
    common = per_step[per_step == len(profiles)].index
    if anchor is None or anchor not in set(common):
        anchor = int(common.min()) if len(common) else None
    if anchor is None:
        return None, {int(p): 0 for p in profiles["profile_id"]}
    starts = steps[steps["step"] == anchor].set_index("profile_id")["start_ns"]
    reference = int(starts[int(profiles["profile_id"].iloc[0])])
    return anchor, {int(p): reference - int(starts[p]) for p in profiles["profile_id"]}
