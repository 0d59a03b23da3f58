"""The hyperparameters and metrics of every run, as TensorBoard's HParams dashboard lists its sessions.

A run's hparams are its config (``torchscope.init(config=...)``, or the ``add_hparams`` values an import read),
nested dicts flattened to ``a.b`` keys; its metrics are the hparam metrics an import read (``tb_hparam_metrics``)
and the latest value of each of its scalar tags (system metrics aside). Pure: built from frames the reads return.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd

HPARAMS_COLUMNS = ["run_id", "kind", "key", "value"]
NOT_HPARAMS = ("imported_from",)
"""Config keys torchscope itself writes (where an imported run came from): not hyperparameters."""
SYSTEM_PREFIX = "sys/"


def flatten(config: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(key, value)`` of a config, nested dicts as ``outer.inner`` keys; a list or other value as JSON text."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, f"{name}.")
        elif value is None or isinstance(value, (bool, int, float, str)):
            yield name, value
        else:
            yield name, json.dumps(value, default=str)


def hparams_rows(runs: pd.DataFrame, last: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """``run_id, kind`` (``hparam`` | ``metric``) ``, key, value`` for every run with at least one hparam: ``runs``
    is ``Store.runs()``, ``last`` ``Store.last_scalars()``, ``metrics`` ``Store.hparam_metrics()``. By run, then
    hparams before metrics, then key. An imported hparam metric wins over a scalar of the same tag."""
    rows: list[tuple[int, str, str, Any]] = []
    with_hparams: set[int] = set()
    for run_id, config in zip(runs["id"], runs["config"]):
        items = [(k, v) for k, v in flatten(config or {}) if k not in NOT_HPARAMS]
        if items:
            with_hparams.add(int(run_id))
            rows.extend((int(run_id), "hparam", k, v) for k, v in items)
    found: dict[tuple[int, str], float] = {}
    for run_id, tag, value in zip(last["run_id"], last["tag"], last["value"]):
        if int(run_id) in with_hparams and not str(tag).startswith(SYSTEM_PREFIX):
            found[(int(run_id), str(tag))] = float(value)
    for run_id, tag, value in zip(metrics["run_id"], metrics["tag"], metrics["value"]):
        if int(run_id) in with_hparams:
            found[(int(run_id), str(tag))] = float(value)
    rows.extend((run_id, "metric", tag, value) for (run_id, tag), value in found.items())
    frame = pd.DataFrame(rows, columns=HPARAMS_COLUMNS)
    order = frame.assign(k=frame["kind"].map({"hparam": 0, "metric": 1})).sort_values(["run_id", "k", "key"]).index
    return frame.loc[order].reset_index(drop=True)
