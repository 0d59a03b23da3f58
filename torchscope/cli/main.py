"""The ``torchscope`` command: the group and its one-line errors.

One module per command (:mod:`~torchscope.cli.serve`, :mod:`~torchscope.cli.runs`, :mod:`~torchscope.cli.demo`,
:mod:`~torchscope.cli.import_`, :mod:`~torchscope.cli.export`, :mod:`~torchscope.cli.compare`); the shared ``--db``
option is in :mod:`torchscope.cli.options`. Errors are one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys

import click

from torchscope.cli.compare import compare_command
from torchscope.cli.demo import demo_command
from torchscope.cli.export import export_command
from torchscope.cli.import_ import import_command
from torchscope.cli.runs import runs_command
from torchscope.cli.serve import serve_command
from torchscope.errors import TorchscopeError

EXIT_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="torchscope", prog_name="torchscope")
def cli() -> None:
    """torchscope: the graph, values and kernels of your PyTorch training, in the browser."""


for _command in (serve_command, runs_command, demo_command, import_command, export_command, compare_command):
    cli.add_command(_command)


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
