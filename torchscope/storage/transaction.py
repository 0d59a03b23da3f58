"""One write transaction for ``torchscope import``: everything or nothing, database errors as ``StoreError``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from torchscope.errors import StoreError
from torchscope.storage.engine import open_engine


@contextmanager
def import_transaction(db: str | os.PathLike[str] | None, what: str) -> Iterator[Connection]:
    """A connection in one transaction on the store ``db`` (created if missing), committed when the block ends.

    Any exception rolls everything back; a database error becomes a :class:`StoreError` naming ``what``.
    """
    engine = open_engine(db, create=True, writer=True)
    try:
        with engine.begin() as conn:
            yield conn
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(f"import of {what} was rolled back, the database refused a write: {detail}") from exc
    finally:
        engine.dispose()
