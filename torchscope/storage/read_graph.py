"""Read API for captured graphs, tensor statistics and anomalies (mixed into ``Store``)."""

from __future__ import annotations

from sqlalchemy import Engine


class GraphReads:
    """``graph``, ``tensor_stats``, ``anomalies``."""

    _engine: Engine
