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


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a private PostgreSQL; yields a SQLAlchemy URL of an empty database ``torchscope``."""
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found: install Debian's postgresql (make test does)")
    root = Path(tempfile.mkdtemp(prefix="torchscope-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True, capture_output=True,
    )  # fmt: skip
    server = subprocess.Popen(
        _as_postgres([str(bindir / "postgres"), "-D", str(data), "-k", str(sock), "-c", "listen_addresses=",
                      "-c", "fsync=off", "-c", "full_page_writes=off"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([str(bindir / "pg_isready"), "-h", str(sock), "-q"]).returncode != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {server.stderr.read().decode() if server.stderr else ''}")
            time.sleep(0.1)
        subprocess.run([str(bindir / "createdb"), "-h", str(sock), "-U", "postgres", "torchscope"], check=True)
        yield f"postgresql+psycopg://postgres@/torchscope?host={sock}"
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)
