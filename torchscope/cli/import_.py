"""``torchscope import PATH``: a Kineto/Chrome trace or a TensorBoard log directory into the store.

(The trailing underscore only because ``import`` is a keyword.)
"""

from __future__ import annotations

import sys

import click

from torchscope.cli.options import db_option


@click.command(name="import")
@click.argument("path")
@db_option
@click.option("--name", default=None, help="Name of the run the import creates [default: the file's name].")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar [default: on a terminal].")
def import_command(path: str, db: str | None, name: str | None, progress: bool | None) -> None:
    """Import a Kineto/Chrome trace (.json, .json.gz, trace directory) or a TensorBoard log directory."""
    from torchscope.io.importing import import_path
    from torchscope.io.malloc import map_large_blocks

    map_large_blocks()  # this process only imports: its freed columns go back to the system (see the module)
    show = sys.stderr.isatty() if progress is None else progress
    result = import_path(db, path, name=name, progress=show)
    click.echo(result.summary())
