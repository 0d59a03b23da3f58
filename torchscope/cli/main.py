"""The ``torchscope`` command: the group, its default command and its one-line errors.

One module per command (:mod:`~torchscope.cli.serve`, :mod:`~torchscope.cli.run`, :mod:`~torchscope.cli.runs`,
:mod:`~torchscope.cli.demo`, :mod:`~torchscope.cli.import_`, :mod:`~torchscope.cli.export`,
:mod:`~torchscope.cli.compare`); the shared ``--db`` option is in :mod:`torchscope.cli.options`. ``serve`` is the
default: ``torchscope`` alone, or ``torchscope DB``, serves the dashboard. Errors are one line on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from torchscope.cli.compare import compare_command
from torchscope.cli.demo import demo_command
from torchscope.cli.export import export_command
from torchscope.cli.import_ import import_command
from torchscope.cli.run import run_command
from torchscope.cli.runs import runs_command
from torchscope.cli.serve import serve_command
from torchscope.errors import TorchscopeError

EXIT_ERROR = 2


class DefaultGroup(click.Group):
    """A group that runs ``default`` when no command is named (datasette's ``serve``-by-default).

    Whatever does not start with a command name or one of the group's own options (``--version``, ``--help``) goes to
    the default command: ``torchscope``, ``torchscope my.db``, ``torchscope --port 9000``. A bare word that is neither
    a command nor a path or URL (``torchscope expotr``) stays "No such command", so a typo is not served as a database.
    """

    def __init__(self, *args: Any, default: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Put the default command's name in front of ``args`` where they name no command (see the class)."""
        if self._goes_to_default(ctx, args):
            args = [self.default, *args]
        return super().parse_args(ctx, args)

    def _goes_to_default(self, ctx: click.Context, args: list[str]) -> bool:
        if not args:
            return True
        first = args[0]
        if first in self.commands:
            return False
        if first.startswith("-"):
            own = {name for param in self.get_params(ctx) for name in (*param.opts, *param.secondary_opts)}
            return first.split("=", 1)[0] not in own
        return os.path.exists(first) or any(mark in first for mark in "./:\\")


@click.group(
    cls=DefaultGroup,
    default="serve",
    subcommand_metavar="[COMMAND] [ARGS]...",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="torchscope", prog_name="torchscope")
def cli() -> None:
    """torchscope: the graph, values and kernels of your PyTorch training, in the browser.

    Without a command it serves the dashboard: `torchscope [DB]` is `torchscope serve [DB]`.
    """


for _command in (
    serve_command, run_command, runs_command, demo_command, import_command, export_command, compare_command,
):  # fmt: skip
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
