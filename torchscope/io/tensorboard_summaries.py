"""TensorBoard summaries of what a run holds besides scalars and histograms, for ``torchscope export --tensorboard``:
its hyperparameters (the hparams plugin's experiment, session start and end, as ``add_hparams`` writes them, so the
run appears in TensorBoard's HParams dashboard), imported text and imported images."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.text import summary_v2 as text_summary

STATUS = {"finished": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE, "running": api_pb2.STATUS_RUNNING,
          "interrupted": api_pb2.STATUS_UNKNOWN}  # fmt: skip
"""A run's status as a session's (TensorBoard has no "interrupted")."""


def hparams_values(rows: pd.DataFrame) -> dict[str, bool | float | str]:
    """The hparams of one run (``Store.hparams()`` rows of ``kind == "hparam"``) as the plugin holds them: bools,
    numbers and text (a None is left out: the plugin has no value for it)."""
    out: dict[str, bool | float | str] = {}
    for key, value in zip(rows["key"], rows["value"]):
        if value is None or isinstance(value, float) and np.isnan(value):
            continue
        out[str(key)] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out


def hparams_summaries(
    hparams: dict[str, Any], metrics: list[str], run: dict[str, Any]
) -> list[summary_pb2.Summary]:
    """The experiment (``hparams`` and the ``metrics`` tags), the session's start (its values) and, for an ended
    run, its end: what TensorBoard's HParams dashboard reads from one run."""
    start_s = int(run["started_at"]) / 1e9
    experiment = hparams_summary.hparams_config_pb(
        [hparams_summary.HParam(name) for name in sorted(hparams)],
        [hparams_summary.Metric(tag) for tag in metrics],
        time_created_secs=start_s,
    )
    start = hparams_summary.hparams_pb(hparams, trial_id=str(run["name"]), start_time_secs=start_s)
    out = [experiment, start]
    if run["status"] != "running" and run.get("ended_at") is not None:
        end = plugin_data_pb2.SessionEndInfo(status=STATUS.get(run["status"], api_pb2.STATUS_UNKNOWN),
                                             end_time_secs=int(run["ended_at"]) / 1e9)  # fmt: skip
        meta = hparams_metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=end))
        out.append(summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag=hparams_metadata.SESSION_END_INFO_TAG, metadata=meta, tensor=hparams_metadata.NULL_TENSOR,
        )]))  # fmt: skip
    return out


def text_value(tag: str, markdown: str) -> summary_pb2.Summary.Value:
    """One text of the text plugin as ``add_text`` writes it (a one-string vector), under the tag as imported."""
    return text_summary.text_pb(tag, np.array([markdown], dtype=object)).value[0]


def image_value(tag: str, width: int, height: int, data: bytes) -> summary_pb2.Summary.Value:
    """One encoded image as the classic ``image`` value (what ``add_image`` writes)."""
    return summary_pb2.Summary.Value(
        tag=tag, image=summary_pb2.Summary.Image(width=int(width), height=int(height), encoded_image_string=data)
    )
