"""Serving a dashboard: waitress (a production WSGI server) normally, Dash's reloading dev server with ``debug``;
and a served dashboard in a subprocess for tests, benchmarks and screenshots."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import dash


def serve(app: dash.Dash, *, host: str = "127.0.0.1", port: int = 8050, debug: bool = False, threads: int = 8) -> None:
    """Serve ``app`` until interrupted. Binds ``host`` (127.0.0.1 by default: the dashboard has no login)."""
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    import waitress

    waitress.serve(app.server, host=host, port=port, threads=threads, ident="torchscope")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_subprocess(db: str | os.PathLike[str], *, port: int | None = None, timeout_s: float = 60.0) -> Iterator[str]:
    """Run ``torchscope serve DB`` (the console script next to this interpreter) until the block ends.

    Yields the base URL once the server answers. For tests, benchmarks and the screenshot script.
    """
    port = port or free_port()
    exe = shutil.which("torchscope", path=os.path.dirname(sys.executable)) or "torchscope"
    proc = subprocess.Popen([exe, "serve", os.fspath(db), "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"torchscope serve exited with {proc.returncode}: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(url + "/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"torchscope serve did not answer on {url} within {timeout_s:.0f} s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
