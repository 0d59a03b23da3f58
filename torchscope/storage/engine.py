"""Opening a store: resolve a path or URL, create the SQLAlchemy engine, check and migrate the schema."""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, make_url, select, text
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from torchscope.errors import SchemaVersionError, StoreError
from torchscope.storage import migrations
from torchscope.storage.schema import SCHEMA_VERSION, meta
from torchscope.storage.tables import metadata

DEFAULT_DB = "torchscope.db"
BUSY_TIMEOUT_MS = 30_000
SCHEMA_LOCK = 0x746F7263  # "torc": the PostgreSQL advisory lock key held while a store's schema is created/migrated


def resolve_url(db: str | os.PathLike[str] | None = None) -> str:
    """Turn a path, a SQLAlchemy URL or ``None`` into a SQLAlchemy URL.

    ``None`` means ``$TORCHSCOPE_DB`` or ``./torchscope.db``. Anything with ``://`` is taken as a URL.
    """
    if db is None:
        db = os.environ.get("TORCHSCOPE_DB") or DEFAULT_DB
    text = os.fspath(db)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def display_url(url: str) -> str:
    """``url`` as it may be shown (in the dashboard, in logs): a password in it becomes ``***``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return Path(path) if path and path != ":memory:" else None


def _configure_sqlite(engine: Engine, *, immediate: bool, read_only: bool = False) -> None:
    """WAL, a busy timeout and, for the writer, ``BEGIN IMMEDIATE`` so two writers queue instead of failing.

    A read-only connection sets no journal mode (that is a write); it reads a WAL database that a training process
    writes as any reader does, creating the ``-shm``/``-wal`` files beside it when they are not there.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not read_only:
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _wal(cur: sqlite3.Cursor) -> None:
    """Switch the database to WAL. On a new file that another process is creating at the same moment (the ranks of
    a job starting together), SQLite answers "database is locked" at once instead of waiting out the busy timeout:
    retry until the timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)  # the other process holds the lock for one short transaction
            pause = min(pause * 2, 0.1)


def _read_only_sqlite_url(path: Path) -> URL:
    """``file:PATH?mode=ro`` as a SQLAlchemy URL: SQLite itself refuses every write on such a connection."""
    return URL.create("sqlite", database="file:" + urllib.parse.quote(str(path)), query={"mode": "ro", "uri": "true"})


def make_engine(url: str, *, writer: bool = False, read_only: bool = False) -> Engine:
    """A SQLAlchemy engine for ``url``; ``writer=True`` takes write locks up front on SQLite.

    ``read_only=True`` makes the database refuse writes on every connection: SQLite opens the file with
    ``mode=ro``, PostgreSQL starts each session with ``default_transaction_read_only``. The dashboard reads this way.
    """
    if writer and read_only:
        raise StoreError("a store engine cannot be both the writer and read-only")
    try:
        if url.startswith("sqlite"):
            path = sqlite_path(url)
            # A pooled connection: the writer reuses one connection instead of connecting for every batch.
            engine = create_engine(_read_only_sqlite_url(path) if read_only and path is not None else url)
            _configure_sqlite(engine, immediate=writer, read_only=read_only)
        elif url.startswith("postgresql"):
            # a server that went away must not hold the writer (and finish()) for the OS's TCP timeout
            connect_args: dict[str, object] = {"connect_timeout": 5}
            if read_only:
                connect_args["options"] = "-c default_transaction_read_only=on"
            engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use database URL {url!r}: {exc}") from exc
    return engine


def open_engine(
    db: str | os.PathLike[str] | None, *, create: bool, writer: bool = False, read_only: bool = False
) -> Engine:
    """Open (and with ``create=True`` create) a torchscope store and bring its schema up to date.

    ``read_only=True`` returns an engine whose connections the database refuses to write through (see
    :func:`make_engine`); an older schema is migrated first, over a short-lived connection that may write.

    Raises :class:`StoreError` with an actionable message for a missing file, a file that is not a torchscope
    database, or an unreachable server; :class:`SchemaVersionError` for a store written by a newer torchscope.
    """
    url = resolve_url(db)
    path = sqlite_path(url)
    if path is not None:
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a torchscope database file")
        if not path.exists():
            if not create:
                raise StoreError(
                    f"no torchscope database at {path}: train with torchscope.init(db=...) "
                    "or run `torchscope demo` first, or pass --db"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
    if read_only:
        if create:
            raise StoreError("a read-only store cannot create the database")
        open_engine(url, create=False).dispose()  # migrates an older schema; writes nothing to a current one
    engine = make_engine(url, writer=writer, read_only=read_only)
    try:
        ensure_schema(engine, create=create, where=str(path or url))
    except (OperationalError, DatabaseError) as exc:
        engine.dispose()
        detail = str(exc.orig) if getattr(exc, "orig", None) is not None else str(exc)
        if "file is not a database" in detail:
            raise StoreError(f"{path} is not a SQLite database (and so not a torchscope store)") from exc
        raise StoreError(f"cannot open database {path or url}: {detail.splitlines()[0]}") from exc
    except Exception:
        engine.dispose()
        raise
    return engine


def ensure_schema(engine: Engine, *, create: bool, where: str) -> None:
    """Create the tables of an empty database, migrate an older one, refuse a newer or foreign one.

    Safe when several processes open one new store at once (the ranks of a job): SQLite's writer transaction and, on
    PostgreSQL, a transaction-scoped advisory lock let one create or migrate while the others wait and then find it
    done.
    """
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        has_meta = engine.dialect.has_table(conn, "meta")
        if not has_meta:
            existing = engine.dialect.get_table_names(conn)
            if existing:
                raise StoreError(
                    f"{where} is a database but not a torchscope store (it has tables {', '.join(sorted(existing)[:5])}"
                    f"{'...' if len(existing) > 5 else ''}); give another --db"
                )
            if not create:
                raise StoreError(f"{where} is empty, not a torchscope store; give another --db")
            metadata.create_all(conn)
            conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{where} was written by a newer torchscope (schema {version}, this one reads up to "
                f"{SCHEMA_VERSION}): upgrade torchscope (pip install -U torchscope)"
            )
        if version < SCHEMA_VERSION:
            migrations.migrate(conn, version)
            conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
        else:
            # Tables that only add to the schema need no version bump: create any that are missing.
            metadata.create_all(conn, checkfirst=True)
