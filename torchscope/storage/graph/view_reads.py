"""Reads the graph view needs besides ``GraphReads``: compact per-step statistics and profiled op events by name.

``Store`` delegates to these. ``step_stats`` is what colouring thousands of nodes needs (no histogram or sample blobs);
``op_events`` finds the profiled calls of an op (and what they launched) for the inspector's timeline links.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, bindparam, select, text

from torchscope.errors import BadRequestError
from torchscope.storage.bulk import name_hash
from torchscope.storage.profile.kinds import KIND
from torchscope.storage.schema import names
from torchscope.storage.graph.schema import tensor_stats

STEP_STATS_COLUMNS = ["node", "output", "role", "numel", "min", "max", "mean", "std", "norm", "nan", "posinf",
                      "neginf", "zeros"]  # fmt: skip
OP_EVENT_COLUMNS = ["id", "name", "start", "dur", "info"]
_OP_EVENTS_SQL = (
    "SELECT e.id, n.name, e.start, e.dur, i.name FROM profile_events e JOIN names n ON n.id = e.name_id "
    "JOIN profile_lanes l ON l.id = e.lane_id LEFT JOIN names i ON i.id = e.info_id "
    "WHERE l.profile_id = :p AND e.kind = :k AND n.name IN :names ORDER BY e.start LIMIT :lim"
)


class GraphViewReads:
    """``step_stats`` and ``op_events``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def step_stats(self, run_id: int, step: int, model: str | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.step_stats`, which documents the columns."""
        s = tensor_stats.c
        query = (
            select(*(s[c] for c in STEP_STATS_COLUMNS))
            .where(s.run_id == int(run_id), s.step == int(step))
            .order_by(s.node, s.output)
        )
        if model is not None:
            watched = select(names.c.id).where(names.c.hash == name_hash(model)).scalar_subquery()
            query = query.where(s.model_id == watched)
        with self._engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=STEP_STATS_COLUMNS)
        ints = ["node", "output", "numel", "nan", "posinf", "neginf", "zeros"]
        return frame.astype({c: "int64" for c in ints} | {c: "float64" for c in ("min", "max", "mean", "std", "norm")})

    def op_events(self, profile_id: int, names: list[str], max_items: int = 50) -> pd.DataFrame:
        """Backs :meth:`Store.op_events`, which documents the columns."""
        if max_items < 0:
            raise BadRequestError("max_items must be a non-negative number of events")
        if not names:
            return pd.DataFrame(columns=OP_EVENT_COLUMNS)
        query = text(_OP_EVENTS_SQL).bindparams(bindparam("names", expanding=True))
        params = {"p": int(profile_id), "k": KIND["cpu_op"], "names": list(names), "lim": int(max_items)}
        with self._engine.connect() as conn:
            return pd.DataFrame(conn.execute(query, params).all(), columns=OP_EVENT_COLUMNS)
