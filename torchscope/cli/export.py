"""``torchscope export RUN``: a run's scalars/histograms as TensorBoard events, a profile as a Chrome trace, profiles
as Parquet."""

from __future__ import annotations

import click

from torchscope.cli.options import db_option


@click.command(name="export")
@click.argument("run_id", type=int, metavar="RUN")
@db_option
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(file_okay=False), help="Write TensorBoard events here.")
@click.option(
    "--chrome-trace", "chrome_trace", type=click.Path(),
    help="Write a profile as Chrome trace JSON to this file (gzip when it ends in .gz); a run with several ranks, "
    "or a directory, gets one <worker>.<span>.pt.trace.json.gz per profile (HTA / TensorBoard layout).",
)  # fmt: skip
@click.option(
    "--parquet", "parquet_dir", type=click.Path(file_okay=False),
    help="Write profiles as Parquet tables (events, kernels, operators, steps, profiles) into this directory.",
)  # fmt: skip
@click.option(
    "--replace", is_flag=True, default=False,
    help="With --tensorboard: delete the event files already in DIR first (else such a DIR is refused).",
)  # fmt: skip
@click.option(
    "--profile", "profile_id", type=int, default=None,
    help="Which profile of the run (default: its first, or every rank's; for --parquet, all of them).",
)  # fmt: skip
def export_command(
    run_id: int,
    db: str | None,
    tensorboard_dir: str | None,
    chrome_trace: str | None,
    parquet_dir: str | None,
    profile_id: int | None,
    replace: bool,
) -> None:
    """Export a run's scalars/histograms to TensorBoard, one of its profiles as a Chrome trace, or its profiles as
    Parquet for DuckDB/Spark (docs/parquet.md)."""
    from torchscope.io.exporting import export_run

    if not tensorboard_dir and not chrome_trace and not parquet_dir:
        raise click.UsageError("say what to export: --tensorboard DIR, --chrome-trace FILE and/or --parquet DIR")
    lines = export_run(
        db, run_id, tensorboard_dir=tensorboard_dir, chrome_trace=chrome_trace, profile_id=profile_id,
        parquet_dir=parquet_dir, replace=replace,
    )  # fmt: skip
    for line in lines:
        click.echo(line)
