"""Reads for many ranks in one view: which profiles form a profile's rank group, and their intervals for
:mod:`torchscope.storage.profile.ranks`. ``Store`` delegates ``rank_group``, ``rank_steps`` and ``rank_summary`` here.

A profile's group (docs/views-profile.md, "Ranks"):

- a profile of a run with a ``job_id``: the profiles of the same name (the same profiler window) of every run of
  that job, one per rank (``profiles.rank``, else the run's ``rank``);
- else the profiles of the same run with distinct ranks: an import of a directory of per-rank traces (the rank from
  the trace's ``distributedInfo``, else from a ``rank-N`` / ``rankN`` / ``rank_N`` in the file's name).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text

from torchscope.errors import NotFoundError
from torchscope.storage.profile import ranks as rk
from torchscope.storage.profile.kinds import KIND

GROUP_COLUMNS = ["profile_id", "rank", "run_id", "name", "start_ns", "duration_ns"]
RANK_IN_NAME = re.compile(r"rank[-_]?(\d+)", re.IGNORECASE)

_PROFILE_SQL = text(
    "SELECT p.id, p.run_id, p.name, p.path, p.rank, r.rank, r.job_id, p.start_ns, p.duration_ns FROM profiles p "
    "LEFT JOIN runs r ON r.id = p.run_id WHERE p.id = :p"
)
_JOB_SQL = text(
    "SELECT p.id, p.run_id, p.name, p.path, p.rank, r.rank, p.start_ns, p.duration_ns FROM profiles p "
    "JOIN runs r ON r.id = p.run_id "
    "WHERE r.job_id = :job AND p.name = :name ORDER BY p.id"
)
_RUN_SQL = text(
    "SELECT p.id, p.run_id, p.name, p.path, p.rank, NULL, p.start_ns, p.duration_ns FROM profiles p "
    "WHERE p.run_id = :run ORDER BY p.id"
)
_STEPS_SQL = text(
    "SELECT n.name, e.start, e.dur, e.lane_id FROM profile_events e JOIN profile_lanes l ON l.id = e.lane_id "
    "JOIN names n ON n.id = e.name_id "
    "WHERE l.profile_id = :p AND l.kind = 'host' AND e.kind = :k AND n.name LIKE 'ProfilerStep#%'"
)
_DEVICE_SQL = text(
    "SELECT e.kind, e.start, e.start + e.dur FROM profile_events e JOIN profile_lanes l ON l.id = e.lane_id "
    "WHERE l.profile_id = :p AND l.kind = 'device' AND e.kind IN :kinds"
).bindparams(bindparam("kinds", expanding=True))
_HOST_COMM_SQL = text(
    "SELECT e.start, e.start + e.dur, n.name FROM profile_events e JOIN profile_lanes l ON l.id = e.lane_id "
    "JOIN names n ON n.id = e.name_id "
    "WHERE l.profile_id = :p AND l.kind = 'host' AND e.kind = :k AND "
    "(n.name LIKE 'gloo:%' OR n.name LIKE 'nccl:%' OR n.name LIKE 'mpi:%' OR n.name LIKE 'ucc:%')"
)
_HOST_COMPUTE_SQL = text(
    "SELECT e.start, e.start + e.dur FROM profile_events e JOIN names n ON n.id = e.name_id "
    "WHERE e.lane_id IN :lanes AND e.kind IN :kinds AND n.name NOT LIKE 'ProfilerStep#%' AND n.name NOT LIKE 'gloo:%' "
    "AND n.name NOT LIKE 'nccl:%' AND n.name NOT LIKE 'mpi:%' AND n.name NOT LIKE 'ucc:%'"
).bindparams(bindparam("lanes", expanding=True), bindparam("kinds", expanding=True))
_COMPUTE_KINDS = [KIND["kernel"], KIND["memcpy"], KIND["memset"]]
_HOST_KINDS = [KIND["cpu_op"], KIND["user_annotation"], KIND["python_function"]]
_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def rank_of(profile_rank: int | None, run_rank: int | None, name: str, path: str | None) -> int | None:
    """A profile's rank: the trace's, else its run's, else a ``rank-N`` in its name or file name."""
    for value in (profile_rank, run_rank):
        if value is not None:
            return int(value)
    match = RANK_IN_NAME.search(name) or RANK_IN_NAME.search(path or "")
    return int(match.group(1)) if match else None


def rank_group(conn: Connection, profile_id: int) -> pd.DataFrame:
    """``GROUP_COLUMNS`` (``start_ns``: the profile's absolute start) of the ranks in ``profile_id``'s group, by rank; just the profile itself (rank maybe None)
    when it has no group. A rank seen twice keeps its first profile."""
    row = conn.execute(_PROFILE_SQL, {"p": int(profile_id)}).first()
    if row is None:
        raise NotFoundError(f"there is no profile {profile_id} in this database (see store.profiles())")
    pid, run_id, name, path, p_rank, r_rank, job, start, duration = row
    if job is not None:
        members = conn.execute(_JOB_SQL, {"job": job, "name": name}).all()
    else:
        members = conn.execute(_RUN_SQL, {"run": run_id}).all()
    seen: dict[int, tuple[int, int, int, str, int, int]] = {}
    for m_id, m_run, m_name, m_path, m_prank, m_rrank, m_start, m_duration in members:
        rank = rank_of(m_prank, m_rrank, m_name, m_path)
        if rank is not None and rank not in seen:
            seen[rank] = (int(m_id), rank, int(m_run), m_name, int(m_start), int(m_duration))
    if int(pid) not in {v[0] for v in seen.values()}:
        own = rank_of(p_rank, r_rank, name, path)
        return pd.DataFrame([(int(pid), own, int(run_id), name, int(start), int(duration))], columns=GROUP_COLUMNS)
    return pd.DataFrame(sorted(seen.values(), key=lambda v: v[1]), columns=GROUP_COLUMNS)


def _intervals(conn: Connection, profile_id: int, rank: int, origin_ns: int) -> rk.RankIntervals:
    steps = conn.execute(_STEPS_SQL, {"p": profile_id, "k": KIND["user_annotation"]}).all()
    frame = pd.DataFrame(
        [(int(n.split("#", 1)[1]), s, s + d, lane) for n, s, d, lane in steps if n.split("#", 1)[1].isdigit()],
        columns=["step", "start", "end", "lane"],
    ).sort_values("start", kind="stable")
    device = np.array(conn.execute(_DEVICE_SQL, {"p": profile_id, "kinds": [*_COMPUTE_KINDS, KIND["collective"]]}).all(),
                      dtype=np.int64).reshape(-1, 3)  # fmt: skip
    if len(device):
        collective = device[:, 0] == KIND["collective"]
        comm = (device[collective, 1], device[collective, 2])
        compute = (device[~collective, 1], device[~collective, 2])
    else:
        host = conn.execute(_HOST_COMM_SQL, {"p": profile_id, "k": KIND["user_annotation"]}).all()
        comm = (np.array([h[0] for h in host], np.int64), np.array([h[1] for h in host], np.int64))
        lanes = sorted({int(lane) for lane in frame["lane"]})
        rows = conn.execute(_HOST_COMPUTE_SQL, {"lanes": lanes, "kinds": _HOST_KINDS}).all() if lanes else []
        table = np.array(rows, dtype=np.int64).reshape(-1, 2)
        compute = (table[:, 0], table[:, 1]) if len(table) else _EMPTY
    return rk.RankIntervals(rank, profile_id, origin_ns, frame[["step", "start", "end"]], compute, comm)


class RankReads:
    """``rank_group``, ``rank_steps`` and ``rank_summary``; keeps the step tables of the last few groups (stored
    profiles never change, so a group's table is computed once)."""

    CACHED = 8

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: OrderedDict[tuple[object, ...], pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def rank_group(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.rank_group`."""
        with self._engine.connect() as conn:
            return rank_group(conn, profile_id)

    def _steps(self, profile_id: int) -> pd.DataFrame:
        with self._engine.connect() as conn:
            group = rank_group(conn, profile_id)
            members = [(int(p), r) for p, r in zip(group["profile_id"], group["rank"]) if r is not None and r == r]
            origins = {int(p): int(s) for p, s in zip(group["profile_id"], group["start_ns"])}
            key = (str(self._engine.url), tuple(members))
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
            parts = [_intervals(conn, p, int(r), origins[p]) for p, r in members]
        steps = rk.step_table(parts)  # stragglers are marked per call, for the threshold asked
        with self._lock:
            self._cache[key] = steps
            while len(self._cache) > self.CACHED:
                self._cache.popitem(last=False)
        return steps

    def rank_steps(self, profile_id: int, threshold: float = rk.STRAGGLER_THRESHOLD) -> pd.DataFrame:
        """Backs :meth:`Store.rank_steps`."""
        return rk.mark_stragglers(self._steps(profile_id), threshold)

    def rank_summary(self, profile_id: int, threshold: float = rk.STRAGGLER_THRESHOLD) -> pd.DataFrame:
        """Backs :meth:`Store.rank_summary`."""
        return rk.rank_summary(self.rank_steps(profile_id, threshold))

    def rank_offsets(self, profile_id: int, anchor: int | None = None) -> tuple[int | None, dict[int, int]]:
        """Backs :meth:`Store.rank_offsets`."""
        return rk.step_offsets(self._steps(profile_id), anchor)
