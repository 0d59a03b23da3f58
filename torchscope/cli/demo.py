"""``torchscope demo``: train a small model in a subprocess and serve the dashboard while it trains."""

from __future__ import annotations

import subprocess
import sys

import click

from torchscope.cli.options import db_option
from torchscope.storage.engine import open_engine, resolve_url


@click.command(name="demo")
@db_option
@click.option("--seconds", default=60.0, show_default=True, help="How long the demo trains.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Any address but loopback needs --auth-token (as for serve).")
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--auth-token", envvar="TORCHSCOPE_AUTH_TOKEN", show_envvar=True, default=None, metavar="TOKEN",
              help="Every request must carry TOKEN (see torchscope serve --help).")
@click.option("--no-serve", is_flag=True, help="Only train; do not start the dashboard.")
def demo_command(db: str | None, seconds: float, host: str, port: int, auth_token: str | None, no_serve: bool) -> None:
    """Train a small model on synthetic data with everything captured, and serve the dashboard meanwhile."""
    run_demo(db, seconds=seconds, host=host, port=port, serve=not no_serve, auth_token=auth_token)


def run_demo(
    db: str | None,
    *,
    seconds: float = 60.0,
    host: str = "127.0.0.1",
    port: int = 8050,
    serve: bool = True,
    auth_token: str | None = None,
) -> int:
    """Start the demo training (``torchscope.cli.demo_train``) and, unless ``serve`` is False, serve the dashboard.

    Returns the training process's exit code when not serving; serving runs until Ctrl-C.
    """
    if serve:
        from torchscope.dashboard.auth import check_exposure

        check_exposure(host, auth_token)
    url = resolve_url(db)
    open_engine(url, create=True).dispose()  # the dashboard can open the store before training writes to it
    training = subprocess.Popen([sys.executable, "-m", "torchscope.cli.demo_train", url, str(seconds)])
    if not serve:
        return training.wait()
    from torchscope.dashboard.app import create_app
    from torchscope.dashboard.server import serve as serve_app
    from torchscope.storage.store import Store

    print(f"torchscope demo: training for {seconds:.0f}s into {url}", file=sys.stderr)
    print(f"torchscope demo: open http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    try:
        serve_app(create_app(Store(url, read_only=True), auth_token=auth_token), host=host, port=port)
    finally:
        if training.poll() is None:
            training.terminate()
            training.wait()
    return 0
