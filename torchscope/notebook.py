"""``torchscope.show(db)`` and ``run.show()``: the dashboard inside a Jupyter notebook, or its URL outside one.

The dashboard is the one ``torchscope serve`` serves (:func:`torchscope.dashboard.app.create_app` over a read-only
:class:`~torchscope.storage.store.Store`), served by a thread of this process on a free port, so the call returns at
once and the training in the notebook goes on. In a notebook (an IPython kernel) Dash's own Jupyter mode serves it
(``app.run(jupyter_mode=...)``: its server thread, its readiness check and its Jupyter proxy settings) and an
``IFrame`` shows the page: the run's live page for ``run.show()``, the runs page for ``torchscope.show(db)``.
Anywhere else (a script, a terminal IPython) a server thread starts the same way and the URL is printed.

Dash is imported only when ``show`` is called: ``import torchscope`` stays light.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

DEFAULT_HEIGHT = 650
"""Height of the inline dashboard in pixels (Dash's default for its inline mode)."""


class Dashboard:
    """A dashboard served by this process: ``url`` (the page shown), ``base_url``, ``port``; :meth:`stop` ends it.

    The server thread is a daemon: it ends with the kernel or the interpreter.
    """

    def __init__(self, base_url: str, page: str, port: int, stop: Any, inline: bool) -> None:
        self.base_url = base_url
        self.url = base_url + page
        self.port = port
        self.inline = inline
        """Whether it was shown inline in a notebook (else its URL was printed)."""
        self._stop = stop

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __repr__(self) -> str:
        return f"Dashboard(url={self.url!r})"


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (a notebook, JupyterLab, VS Code, Colab), not a terminal IPython."""
    shell_module = sys.modules.get("IPython")
    if shell_module is None:
        return False
    try:
        shell = shell_module.get_ipython()
    except Exception:  # noqa: BLE001
        return False
    return shell is not None and type(shell).__name__ in ("ZMQInteractiveShell", "Shell")  # Shell: Colab's


def show(
    db: str | os.PathLike[str] | None = None,
    *,
    run: int | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    height: int = DEFAULT_HEIGHT,
    width: str = "100%",
) -> Dashboard:
    """Show the dashboard of ``db`` (path or URL; default ``$TORCHSCOPE_DB`` or ``./torchscope.db``) and return.

    In a notebook it appears inline, ``height`` pixels high, on the page of run ``run`` (the runs page when None);
    elsewhere its URL is printed. ``port`` defaults to a free one. Raises :class:`torchscope.StoreError` when the
    store cannot be opened. Returns the :class:`Dashboard`; its :meth:`~Dashboard.stop` stops the server.
    """
    from torchscope.dashboard import urls
    from torchscope.dashboard.app import create_app
    from torchscope.dashboard.server import free_port
    from torchscope.storage.store import Store

    store = Store(db, read_only=True)
    port = port or free_port()
    app = create_app(store)
    page = urls.run(run) if run is not None else urls.runs()
    if in_notebook():
        return _show_inline(app, host, port, page, height, width)
    from werkzeug.serving import make_server

    server = make_server(host, port, app.server, threaded=True)  # bound now: the URL answers once this returns
    threading.Thread(target=server.serve_forever, name="torchscope-dashboard", daemon=True).start()
    dashboard = Dashboard(f"http://{host}:{port}", page, port, server.shutdown, inline=False)
    print(f"torchscope: dashboard of {store.display_url} at {dashboard.url}")
    return dashboard


def _show_inline(app: Any, host: str, port: int, page: str, height: int, width: str) -> Dashboard:
    """Serve with Dash's Jupyter mode and show ``page`` in an IFrame below the cell."""
    from dash._jupyter import _jupyter_config, jupyter_dash
    from IPython.display import IFrame, display

    # "_none": Dash starts its server thread and waits until it answers, and shows nothing; the IFrame below opens
    # on the run's page, where Dash's "inline" would always open the root page
    app.run(jupyter_mode="_none", host=host, port=port, jupyter_height=height, jupyter_width=width)
    server_url = (_jupyter_config.get("server_url") or f"http://{host}:{port}").rstrip("/")
    prefix = str(app.config.get("requests_pathname_prefix") or "/").rstrip("/")
    base_url = server_url + prefix
    display(IFrame(base_url + page, width=width, height=height))

    def stop() -> None:
        server = jupyter_dash._servers.pop((host, port), None)
        if server is not None:
            server.shutdown()

    return Dashboard(base_url, page, port, stop, inline=True)


__all__ = ["Dashboard", "in_notebook", "show"]
