"""Tables printed by the CLI. Pure functions over the store's DataFrames."""

from __future__ import annotations

import pandas as pd

from torchscope.dashboard.formatting import fmt_duration, fmt_steps, fmt_time, fmt_value


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
