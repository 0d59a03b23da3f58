"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary directory, served on a unix socket."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bin() -> Path | None:
    """The directory of PostgreSQL's server binaries (Debian layout or on PATH), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PostgresServer:
    """A private PostgreSQL in a temporary directory (``initdb``), on a unix socket; :meth:`stop` and :meth:`start`
    take it down and bring it back on the same data, as a restarted database server."""

    def __init__(self) -> None:
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found: install Debian's postgresql (make test does)")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="torchscope-pg-"))
        self.data, self.sock = self.root / "data", self.root / "sock"
        self.sock.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
        subprocess.run(
            _as_postgres([str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True, capture_output=True,
        )  # fmt: skip
        self.server: subprocess.Popen[bytes] | None = None
        self.url = f"postgresql+psycopg://postgres@/torchscope?host={self.sock}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.server = server = subprocess.Popen(
            _as_postgres([str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.sock),
                          "-c", "listen_addresses=", "-c", "fsync=off", "-c", "full_page_writes=off"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while subprocess.run([str(self.bindir / "pg_isready"), "-h", str(self.sock), "-q"]).returncode != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {server.stderr.read().decode() if server.stderr else ''}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (a fast shutdown: open connections are cut) and wait until it is gone."""
        if self.server is not None:
            # pg_ctl waits until the postmaster is gone (signalling runuser would not reach it)
            subprocess.run(
                _as_postgres([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"]),
                check=True, capture_output=True,
            )  # fmt: skip
            self.server.wait(30)
            self.server = None

    def create_database(self) -> None:
        """Create the empty database ``torchscope`` that :attr:`url` names."""
        subprocess.run([str(self.bindir / "createdb"), "-h", str(self.sock), "-U", "postgres", "torchscope"], check=True)

    def remove(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a private PostgreSQL; yields a SQLAlchemy URL of an empty database ``torchscope``."""
    server = PostgresServer()
    try:
        server.start()
        server.create_database()
        yield server.url
    finally:
        server.remove()
