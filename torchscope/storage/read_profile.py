"""Read API for profiles, events and their analyses (mixed into ``Store``)."""

from __future__ import annotations

from sqlalchemy import Engine


class ProfileReads:
    """``profiles``, ``events``, ``op_table``, ``kernel_table``, ``module_table``, ``step_breakdown``."""

    _engine: Engine
