"""The read API: :class:`Store`, what the dashboard, the CLI and users' notebooks read the database through."""

from __future__ import annotations

import os

from torchscope.storage.engine import open_engine, resolve_url
from torchscope.storage.compare.reads import CompareReads
from torchscope.storage.graph.reads import GraphReads
from torchscope.storage.graph.view_reads import GraphViewReads
from torchscope.storage.profile.reads import ProfileReads
from torchscope.storage.runs.reads import RunReads
from torchscope.storage.tensorboard.reads import TbGraphReads
from torchscope.storage.timeline.reads import TimelineReads


class Store(RunReads, GraphReads, GraphViewReads, ProfileReads, TbGraphReads, TimelineReads, CompareReads):
    """Read access to a torchscope database; every table method returns a pandas DataFrame.

    Open it with :func:`torchscope.open`. The store never writes except to migrate an older schema on open.
    """

    def __init__(self, db: str | os.PathLike[str] | None = None) -> None:
        self.url = resolve_url(db)
        self._engine = open_engine(self.url, create=False)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"


def open_store(db: str | os.PathLike[str] | None = None) -> Store:
    """Open the store at ``db`` (path or SQLAlchemy URL; default ``$TORCHSCOPE_DB`` or ``./torchscope.db``)."""
    return Store(db)
