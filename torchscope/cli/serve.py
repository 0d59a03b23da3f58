"""``torchscope serve [DB]``: the dashboard for a database. The default command: ``torchscope [DB]`` runs it."""

from __future__ import annotations

import click

from torchscope.cli.options import db_argument, db_option, pick_db


@click.command(name="serve")
@db_argument
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Any address but loopback (127.0.0.1, ::1, localhost) needs --auth-token.")
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--auth-token", envvar="TORCHSCOPE_AUTH_TOKEN", show_envvar=True, default=None, metavar="TOKEN",
              help="Every request must carry TOKEN: open http://HOST:PORT/?token=TOKEN once (a cookie keeps it), or "
                   "send 'Authorization: Bearer TOKEN'.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Server processes. 1: waitress, one process of 8 threads. N > 1: gunicorn with N processes of 8 "
                   "threads each, for many readers at once (Linux, macOS).")
@click.option("--debug", is_flag=True, help="Dash debug mode (reloads, dev tools; Flask's development server).")
def serve_command(
    database: str | None, db: str | None, host: str, port: int, auth_token: str | None, workers: int, debug: bool
) -> None:
    """Serve the dashboard for a database (the default command). It reads the database read-only."""
    # imported here: building a dashboard loads Dash, which the other commands never need
    from torchscope.dashboard.app import create_app
    from torchscope.dashboard.auth import check_exposure
    from torchscope.dashboard.server import serve as serve_app
    from torchscope.dashboard.server import serve_workers
    from torchscope.storage.store import Store

    check_exposure(host, auth_token)
    if debug and workers > 1:
        raise click.UsageError("--debug runs Flask's single development server: leave out --workers")
    store = Store(pick_db(database, db), read_only=True)  # opened here too, so a bad --db fails before serving
    where = f"http://{host}:{port}/" + ("?token=TOKEN" if auth_token else "")
    how = f" with {workers} worker processes" if workers > 1 else ""
    click.echo(f"torchscope: serving {store.display_url} at {where}{how} (Ctrl-C to stop)", err=True)
    if workers == 1:
        serve_app(create_app(store, auth_token=auth_token), host=host, port=port, debug=debug)
        return
    url = store.url
    store.close()  # each worker opens its own after the fork
    serve_workers(lambda: create_app(Store(url, read_only=True), auth_token=auth_token), workers=workers, host=host,
                  port=port)  # fmt: skip
