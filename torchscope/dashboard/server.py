"""Serving a dashboard: waitress (a production WSGI server) normally, Dash's reloading dev server with ``debug``."""

from __future__ import annotations

import dash


def serve(app: dash.Dash, *, host: str = "127.0.0.1", port: int = 8050, debug: bool = False, threads: int = 8) -> None:
    """Serve ``app`` until interrupted. Binds ``host`` (127.0.0.1 by default: the dashboard has no login)."""
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    import waitress

    waitress.serve(app.server, host=host, port=port, threads=threads, ident="torchscope")
