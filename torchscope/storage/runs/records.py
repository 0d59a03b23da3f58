"""Records of the runs subject, as producers queue them on the writer (``Writer.put``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple


class ScalarLog(NamedTuple):
    """One ``run.log`` call (or one system-metrics sample): ``{tag: value}`` at ``step``.

    Values are numbers, numpy scalars or 0-d tensors; they are converted on the writer thread.
    """

    run_id: int
    step: int
    wall_time: int
    values: dict[str, Any]


class RunUpdate(NamedTuple):
    """New values for some columns of a run's row; a field left None is not changed."""

    run_id: int
    status: str | None = None
    started_at: int | None = None
    ended_at: int | None = None
    heartbeat_at: int | None = None
    error: str | None = None
    dropped: int | None = None
    config: str | None = None  # the run's whole config as JSON (sorted keys), when a framework reports it late

    def values(self) -> dict[str, Any]:
        """The columns this update sets, by name."""
        return {name: value for name, value in zip(self._fields[1:], self[1:]) if value is not None}


scalar_log: Callable[[tuple[int, int, int, dict[str, Any]]], ScalarLog] = functools.partial(tuple.__new__, ScalarLog)
"""``scalar_log((run_id, step, wall_time, values))``: a :class:`ScalarLog` built without a Python-level call, for
``run.log``'s hot path (a third of a microsecond less than ``ScalarLog(...)`` per call)."""
