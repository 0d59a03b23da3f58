"""Handlers that turn queued records into rows, one per record type.

A handler is ``handler(conn, interner, records)``: it gets every record of its type (a NamedTuple or frozen
dataclass of a subject's ``records.py``) from one writer batch and inserts them inside the batch's transaction.
Modules register handlers with :func:`handler`; :func:`load_handlers` imports them all (by name, so that this
module, which the writes import, imports none of them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from torchscope.storage.bulk import Interner

Handler = Callable[[Connection, Interner, list[Any]], None]
HANDLERS: dict[type, Handler] = {}
MODULES = (
    "torchscope.storage.runs.scalar_writes",
    "torchscope.storage.runs.writes",
    "torchscope.storage.graph.writes",
    "torchscope.storage.profile.live_writes",
)


def handler(record_type: type) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of records of ``record_type``."""

    def register(fn: Handler) -> Handler:
        HANDLERS[record_type] = fn
        return fn

    return register


def load_handlers() -> None:
    """Import every handler module so that :data:`HANDLERS` is complete."""
    for name in MODULES:
        importlib.import_module(name)
