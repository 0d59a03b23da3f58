"""``torchscope serve [DB]``: the dashboard for a database. The default command: ``torchscope [DB]`` runs it."""

from __future__ import annotations

import click

from torchscope.cli.options import db_argument, db_option, pick_db


@click.command(name="serve")
@db_argument
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes it.")
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Dash debug mode (reloads, dev tools).")
def serve_command(database: str | None, db: str | None, host: str, port: int, debug: bool) -> None:
    """Serve the dashboard for a database (the default command)."""
    # imported here: building a dashboard loads Dash, which the other commands never need
    from torchscope.dashboard.app import create_app
    from torchscope.dashboard.server import serve as serve_app
    from torchscope.storage.store import Store

    store = Store(pick_db(database, db))
    click.echo(f"torchscope: serving {store.url} at http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    serve_app(create_app(store), host=host, port=port, debug=debug)
