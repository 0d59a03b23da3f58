"""What the commands share: the ``--db`` option, and the database as the positional argument of ``serve`` and ``runs``.

Kept apart from :mod:`torchscope.cli.main`, which imports every command module, so that no command imports it back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--db PATH|URL`` as the ``db`` parameter (None: ``$TORCHSCOPE_DB``, else ``./torchscope.db``)."""
    return click.option(
        "--db",
        "db",
        default=None,
        metavar="PATH|URL",
        help="Database file or SQLAlchemy URL [default: $TORCHSCOPE_DB, else ./torchscope.db].",
    )(fn)


def db_argument(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The optional positional ``[DB]`` as the ``database`` parameter; :func:`pick_db` weighs it against ``--db``."""
    return click.argument("database", required=False, metavar="[DB]")(fn)


def pick_db(positional: str | None, option: str | None) -> str | None:
    """The database given either way; a usage error when both are given and differ."""
    if positional and option and positional != option:
        raise click.UsageError("give the database either as an argument or with --db, not both")
    return positional or option
