"""The ``torchscope`` command: serve | demo | runs | import | export | compare | --version.

Every command takes ``--db PATH|URL`` (default ``$TORCHSCOPE_DB`` or ``./torchscope.db``); ``serve`` and ``runs``
also take it as their positional argument. Errors are one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from torchscope.errors import TorchscopeError

EXIT_ERROR = 2


def _db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db",
        default=None,
        metavar="PATH|URL",
        help="Database file or SQLAlchemy URL [default: $TORCHSCOPE_DB, else ./torchscope.db].",
    )(fn)


def _pick_db(positional: str | None, option: str | None) -> str | None:
    if positional and option and positional != option:
        raise click.UsageError("give the database either as an argument or with --db, not both")
    return positional or option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="torchscope", prog_name="torchscope")
def cli() -> None:
    """torchscope: the graph, values and kernels of your PyTorch training, in the browser."""


@cli.command()
@click.argument("database", required=False, metavar="[DB]")
@_db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes it.")
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Dash debug mode (reloads, dev tools).")
def serve(database: str | None, db: str | None, host: str, port: int, debug: bool) -> None:
    """Serve the dashboard for a database."""
    from torchscope.dashboard.app import create_app
    from torchscope.dashboard.server import serve as serve_app
    from torchscope.storage.store import Store

    store = Store(_pick_db(database, db))
    click.echo(f"torchscope: serving {store.url} at http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    serve_app(create_app(store), host=host, port=port, debug=debug)


@cli.command(name="runs")
@click.argument("database", required=False, metavar="[DB]")
@_db_option
def runs_command(database: str | None, db: str | None) -> None:
    """List the runs of a database as a table."""
    from torchscope.storage.store import Store
    from torchscope.cli.runs import runs_table

    with Store(_pick_db(database, db)) as store:
        click.echo(runs_table(*store.run_summaries()))


@cli.command()
@_db_option
@click.option("--seconds", default=60.0, show_default=True, help="How long the demo trains.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Only train; do not start the dashboard.")
def demo(db: str | None, seconds: float, host: str, port: int, no_serve: bool) -> None:
    """Train a small model on synthetic data with everything captured, and serve the dashboard meanwhile."""
    from torchscope.cli.demo import run_demo

    run_demo(db, seconds=seconds, host=host, port=port, serve=not no_serve)


@cli.command(name="import")
@click.argument("path")
@_db_option
@click.option("--name", default=None, help="Name of the run the import creates [default: the file's name].")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar [default: on a terminal].")
def import_command(path: str, db: str | None, name: str | None, progress: bool | None) -> None:
    """Import a Kineto/Chrome trace (.json, .json.gz, trace directory) or a TensorBoard log directory."""
    from torchscope.io.importing import import_path

    show = sys.stderr.isatty() if progress is None else progress
    result = import_path(db, path, name=name, progress=show)
    click.echo(result.summary())


@cli.command()
@click.argument("run_id", type=int, metavar="RUN")
@_db_option
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(file_okay=False), help="Write TensorBoard events here.")
@click.option("--chrome-trace", "chrome_trace", type=click.Path(dir_okay=False), help="Write a profile as Chrome trace JSON.")
@click.option("--profile", "profile_id", type=int, default=None, help="Which profile of the run (default: its first).")
def export(run_id: int, db: str | None, tensorboard_dir: str | None, chrome_trace: str | None, profile_id: int | None) -> None:
    """Export a run's scalars/histograms to TensorBoard, or one of its profiles as a Chrome trace."""
    from torchscope.io.exporting import export_run

    if not tensorboard_dir and not chrome_trace:
        raise click.UsageError("say what to export: --tensorboard DIR and/or --chrome-trace FILE")
    for line in export_run(db, run_id, tensorboard_dir=tensorboard_dir, chrome_trace=chrome_trace, profile_id=profile_id):
        click.echo(line)


@cli.command()
@click.argument("a")
@click.argument("b")
@_db_option
@click.option("--top", default=15, show_default=True, help="Rows per table.")
def compare(a: str, b: str, db: str | None, top: int) -> None:
    """Compare two runs (or profiles: p12 p13) and print what changed."""
    from torchscope.cli.compare import compare_report
    from torchscope.storage.store import Store

    with Store(db) as store:
        click.echo(compare_report(store, a, b, top=top))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: one clear line on stderr instead of a traceback."""
    try:
        cli.main(args=argv, prog_name="torchscope", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TorchscopeError as exc:
        click.echo(f"torchscope: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
