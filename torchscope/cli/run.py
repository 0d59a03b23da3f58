"""``torchscope run SCRIPT [ARGS]...``: record an unmodified training script, as ``python -m cProfile`` runs one.

The script runs in this process as ``__main__`` (``runpy``), with ``sys.argv`` set to ``[SCRIPT, *ARGS]`` and the
script's folder first on ``sys.path`` (``-m MODULE``: the current folder, as ``python -m``). One run is opened in the
store before it starts and finished when it ends; :class:`~torchscope.capture.autowatch.AutoWatch` watches the
modules it trains, counts its optimizer steps and profiles ``--profile-steps``; with ``--parse-stdout`` the numbers it
prints become scalars (:mod:`torchscope.capture.stdout_scalars`). The script's exit code is this command's: 0, the
code of ``sys.exit(n)``, or 1 after an uncaught exception, whose traceback is printed as Python prints it.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from torchscope.cli.options import db_option
from torchscope.errors import TorchscopeError

_RUNPY_FILE = runpy.__file__
# torch is imported when a script runs, not when the command line is read (``torchscope runs`` never loads it)


def _say(text: str) -> None:
    print(f"torchscope: {text}", file=sys.stderr, flush=True)


@click.command(
    name="run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@db_option
@click.option("--name", default=None, help="Name of the run [default: the script's name].")
@click.option("--watch", "watch_names", multiple=True, metavar="CLASS",
              help="Watch every module of this class (repeatable) instead of the modules the optimizers train.")
@click.option("--every", default=50, show_default=True, type=click.IntRange(min=1),
              help="Capture the graph and tensor statistics every N-th optimizer step.")
@click.option("--tensors", default="stats", show_default=True, type=click.Choice(("none", "stats", "full")),
              help="What to capture of each tensor on a captured step.")
@click.option("--no-grads", is_flag=True, help="Do not capture gradients.")
@click.option("--profile-steps", default=None, metavar="FIRST:END",
              help="Profile optimizer steps FIRST..END-1 with torch.profiler, e.g. 10:13.")
@click.option("--parse-stdout", is_flag=True,
              help="Store 'key value', 'key: value' and 'key=value' numbers the script prints as scalars.")
@click.option("--system-metrics", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Sample CPU, memory and GPU use every this many seconds (0: never).")
@click.option("-m", "as_module", is_flag=True, help="SCRIPT is a module to run as `python -m` runs it.")
@click.argument("script", metavar="SCRIPT")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[ARGS]...")
def run_command(
    db: str | None,
    name: str | None,
    watch_names: tuple[str, ...],
    every: int,
    tensors: str,
    no_grads: bool,
    profile_steps: str | None,
    parse_stdout: bool,
    system_metrics: float,
    as_module: bool,
    script: str,
    args: tuple[str, ...],
) -> None:
    """Run a training script unchanged and record it: `torchscope run train.py --epochs 3`.

    Watches the modules its optimizers train (or --watch CLASS), records system metrics, counts optimizer steps
    (logging each optimizer's learning rate as optimizer/lr), and exits with the script's exit code. Options of
    torchscope go before SCRIPT; everything after it is the script's.
    """
    from torchscope.capture.autowatch import parse_window

    window = None
    if profile_steps is not None:
        try:
            window = parse_window(profile_steps)
        except ValueError as exc:
            raise click.BadParameter(str(exc).replace("invalid literal for int() with base 10", "not a number"),
                                     param_hint="--profile-steps") from None  # fmt: skip
    if not as_module and not os.path.isfile(script):
        raise TorchscopeError(f"no script at {script}: give the path of a Python file (or -m MODULE)")
    code = run_script(
        script, list(args), db=db, name=name, as_module=as_module, watch_names=watch_names, every=every,
        tensors=tensors, grads=not no_grads, window=window, parse_stdout=parse_stdout, system_metrics=system_metrics,
    )  # fmt: skip
    sys.exit(code)


def run_script(
    script: str,
    args: list[str],
    *,
    db: str | None = None,
    name: str | None = None,
    as_module: bool = False,
    watch_names: tuple[str, ...] = (),
    every: int = 50,
    tensors: str = "stats",
    grads: bool = True,
    window: tuple[int, int] | None = None,
    parse_stdout: bool = False,
    system_metrics: float = 5.0,
) -> int:
    """Run ``script`` (a path, or a module name with ``as_module``) with ``args`` under one recorded run; returns
    the exit code the script would have had under ``python``."""
    import torchscope
    from torchscope.capture.autowatch import AutoWatch
    from torchscope.dashboard import urls
    from torchscope.storage.engine import display_url, sqlite_path

    target = script if as_module else os.path.abspath(script)
    run_name = name or (script.rsplit(".", 1)[-1] if as_module else Path(script).stem)
    config = {"command": "torchscope run", "script": script, "args": args}
    run = torchscope.init(name=run_name, db=db, config=config, system_metrics=system_metrics or False)
    where = str(sqlite_path(run.url) or display_url(run.url))
    _say(f"recording run {run.id} ({run_name}) into {where}")
    auto = AutoWatch(run, names=watch_names, every=every, tensors=tensors, grads=grads, profile=window, say=_say)
    tee = None
    status, error, code = "finished", None, 0
    saved_argv, saved_path0, saved_stdout = list(sys.argv), sys.path[0] if sys.path else None, sys.stdout
    try:
        try:
            auto.start()
        except Exception as exc:  # noqa: BLE001 - the script runs anyway, unwatched
            _say(f"could not install the hooks, the script runs unwatched: {type(exc).__name__}: {exc}")
        if parse_stdout:
            tee = _tee_stdout(run, auto)
        sys.argv = [target if not as_module else script, *args]
        if as_module:
            sys.path[0:1] = [os.getcwd()]
            runpy.run_module(script, run_name="__main__", alter_sys=True)
        else:
            sys.path[0:1] = [os.path.dirname(target)]
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        code = _exit_code(exc)
        if code:
            status, error = "failed", f"exit code {code}"
    except KeyboardInterrupt:
        _print_traceback(*sys.exc_info())
        status, code = "interrupted", 130
    except BaseException as exc:  # noqa: BLE001 - the script's own error: printed as Python prints it
        _print_traceback(type(exc), exc, exc.__traceback__)
        status, error, code = "failed", f"{type(exc).__name__}: {exc}", 1
    finally:
        if tee is not None:
            tee[0].close_line()
            tee[1].flush()
            if sys.stdout is tee[0]:
                sys.stdout = saved_stdout
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
        auto.close()
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - a closed stdout is the script's business
            pass
        run.finish(status, error=error)
    watched = ", ".join(w.name for w in auto.watches) or "nothing"
    _say(f"run {run.id} {status}: {auto.steps} optimizer steps, watched {watched}")
    _say(f"see it: torchscope serve {_quote(where)}  ->  http://127.0.0.1:8050{urls.run(run.id)}")
    return code


def _tee_stdout(run: Any, auto: Any) -> Any:
    """Put a :class:`TeeStream` in front of ``sys.stdout`` whose lines become scalars at the last optimizer step
    (held until the first one ends, when the script has an optimizer)."""
    from torchscope.capture.stdout_scalars import LineScalars, TeeStream

    def step() -> int | None:
        if auto.steps == 0 and auto.optimizer_count:
            return None
        return max(auto.steps - 1, 0)

    lines = LineScalars(lambda values, at: run.log(values, step=at), step)
    tee = TeeStream(sys.stdout, lines)
    sys.stdout = tee
    return tee, lines


def _exit_code(exc: SystemExit) -> int:
    """What ``python`` exits with for ``sys.exit(exc.code)``: None is 0, an int is itself, anything else is printed
    to stderr and is 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _print_traceback(exc_type: Any, exc: BaseException, tb: Any) -> None:
    """The traceback from the script's first frame on (this module's and runpy's frames left out)."""
    while tb is not None and tb.tb_frame.f_code.co_filename in (__file__, _RUNPY_FILE, "<frozen runpy>"):
        tb = tb.tb_next
    if exc is not None:
        exc.__traceback__ = tb  # Python's excepthook prints the exception's own traceback
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        pass
    try:
        sys.excepthook(exc_type, exc, tb)
    except Exception:  # noqa: BLE001 - a broken excepthook of the script: print it the plain way
        traceback.print_exception(exc_type, exc, tb)


def _quote(text: str) -> str:
    return f"'{text}'" if any(c.isspace() for c in text) else text
