"""``torchscope runs [DB]``: the runs of a database as a table (:func:`runs_table`, pure over the store's frames)."""

from __future__ import annotations

import click
import pandas as pd

from torchscope.cli.options import db_argument, db_option, pick_db
from torchscope.dashboard.formatting import fmt_duration, fmt_steps, fmt_time, fmt_value
from torchscope.storage.store import Store


@click.command(name="runs")
@db_argument
@db_option
def runs_command(database: str | None, db: str | None) -> None:
    """List the runs of a database as a table."""
    with Store(pick_db(database, db)) as store:
        click.echo(runs_table(*store.run_summaries()))


def runs_table(summaries: pd.DataFrame, key_tags: list[str]) -> str:
    """The ``torchscope runs`` table: id, name, status, started, duration, steps and the key scalars."""
    if summaries.empty:
        return "no runs yet: train with torchscope.init(...) or run `torchscope demo`"
    frame = pd.DataFrame(
        {
            "id": summaries["id"],
            "name": summaries["name"],
            "status": summaries["status"],
            "started": summaries["started_at"].map(fmt_time),
            "duration": summaries["duration_ns"].map(fmt_duration),
            "steps": summaries["last_step"].map(fmt_steps),
        }
    )
    for tag in key_tags:
        frame[tag] = summaries[tag].map(fmt_value)
    return frame.to_string(index=False)
