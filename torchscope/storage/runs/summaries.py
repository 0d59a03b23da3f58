"""Pure post-processing of run rows for overviews (runs page, ``torchscope runs``). Imports nothing of torchscope."""

from __future__ import annotations

import pandas as pd

SYSTEM_PREFIX = "sys/"
PREFERRED = ("loss", "acc", "lr")


def key_tags(last: pd.DataFrame, limit: int = 3) -> list[str]:
    """The tags worth a column in an overview: losses first, then accuracies and learning rates, then the most used.

    ``last`` has columns ``run_id, tag`` (as :meth:`Store.last_scalars` returns). System metrics are left out.
    """
    if last.empty:
        return []
    tags = last.loc[~last["tag"].str.startswith(SYSTEM_PREFIX), "tag"]
    runs_per_tag = tags.value_counts()

    def rank(tag: str) -> tuple[int, int, str]:
        word = tag.rsplit("/", 1)[-1].lower()
        preferred = next((i for i, p in enumerate(PREFERRED) if p in word), len(PREFERRED))
        return (preferred, -int(runs_per_tag[tag]), tag)

    return sorted(runs_per_tag.index, key=rank)[:limit]


def run_summaries(runs: pd.DataFrame, last: pd.DataFrame, limit: int = 3) -> tuple[pd.DataFrame, list[str]]:
    """``runs`` plus one column per key tag holding each run's latest value; returns the frame and the key tags."""
    tags = key_tags(last, limit)
    frame = runs.copy()
    for tag in tags:
        values = dict(zip(last.loc[last["tag"] == tag, "run_id"], last.loc[last["tag"] == tag, "value"]))
        # object dtype keeps "never logged" (None) apart from a logged NaN
        frame[tag] = pd.Series([values.get(i) for i in frame["id"]], index=frame.index, dtype=object)
    return frame, tags
