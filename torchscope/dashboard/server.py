"""Serving a dashboard: waitress (a production WSGI server, one process of threads) normally, gunicorn (several
worker processes, each with its own app and database connections) for ``workers > 1``, Dash's reloading dev
server with ``debug``; and a served dashboard in a subprocess for tests, benchmarks and screenshots."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dash

from torchscope.errors import BadRequestError

THREADS = 8
"""Request threads per process: waitress's threads, or each gunicorn worker's."""


def serve(
    app: dash.Dash, *, host: str = "127.0.0.1", port: int = 8050, debug: bool = False, threads: int = THREADS
) -> None:
    """Serve ``app`` in this process until interrupted. Binds ``host`` (127.0.0.1 by default)."""
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    import waitress

    waitress.serve(app.server, host=host, port=port, threads=threads, ident="torchscope")


def serve_workers(
    make_app: Callable[[], dash.Dash],
    *,
    workers: int,
    host: str = "127.0.0.1",
    port: int = 8050,
    threads: int = THREADS,
) -> None:
    """Serve under gunicorn with ``workers`` processes of ``threads`` threads until interrupted.

    ``make_app`` runs in each worker after it forks, so no database connection crosses a fork.
    """
    if workers < 1:
        raise BadRequestError(f"--workers must be at least 1, not {workers}")
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError as exc:  # gunicorn is a Linux/macOS dependency
        raise BadRequestError(f"--workers {workers} needs gunicorn ({exc}); serve with --workers 1 instead") from exc

    bind = f"[{host.strip('[]')}]:{port}" if ":" in host.strip("[]") else f"{host}:{port}"
    options = {
        "bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
        "timeout": 120, "graceful_timeout": 5, "loglevel": "warning", "errorlog": "-", "accesslog": None,
        "proc_name": "torchscope",
    }  # fmt: skip

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return make_app().server

    _Gunicorn().run()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_subprocess(
    db: str | os.PathLike[str],
    *,
    port: int | None = None,
    timeout_s: float = 60.0,
    auth_token: str | None = None,
    workers: int = 1,
) -> Iterator[str]:
    """Run ``torchscope serve DB`` (the console script next to this interpreter) until the block ends.

    Yields the base URL once the server answers. ``auth_token`` goes to the server as ``$TORCHSCOPE_AUTH_TOKEN``
    (and with the readiness check as a bearer token); ``workers`` is ``--workers``. For tests, benchmarks and the
    screenshot script.
    """
    port = port or free_port()
    exe = shutil.which("torchscope", path=os.path.dirname(sys.executable)) or "torchscope"
    env = dict(os.environ)
    env.pop("TORCHSCOPE_AUTH_TOKEN", None)
    if auth_token is not None:
        env["TORCHSCOPE_AUTH_TOKEN"] = auth_token
    argv = [exe, "serve", os.fspath(db), "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    ready = urllib.request.Request(url + "/", headers={"Authorization": f"Bearer {auth_token}"} if auth_token else {})
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"torchscope serve exited with {proc.returncode}: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(ready, timeout=2):
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
