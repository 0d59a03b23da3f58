"""Infinities a model puts there on purpose (attention masks) are not anomalies; a real NaN after them still is."""

from __future__ import annotations

import warnings

import pytest
import torch

import torchscope
from torchscope.storage.writer import TorchscopeWarning

from models import CausalAttention, line_of


@pytest.fixture
def run(db_path):  # type: ignore[no-untyped-def]
    with torchscope.init(name="masks", db=db_path, system_metrics=False) as active:
        yield active


def test_masked_fill_with_minus_inf_is_not_an_anomaly_but_a_later_nan_is(run) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = CausalAttention()
    x = torch.randn(2, 5, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with run.watch(model, every=1):
            for step in range(4):
                model.poison = step == 3
                model(x).backward()
                model.zero_grad()
    run.flush()
    anomalies = torchscope.open(run.url).anomalies(run.id)
    line = line_of(CausalAttention.forward, "<sqrt>")
    assert anomalies[["step", "phase", "op", "line"]].values.tolist() == [
        [3, "forward", "torch.sqrt", line],
        [3, "backward", "torch.sqrt", line],
    ]
    messages = [str(w.message) for w in caught if issubclass(w.category, TorchscopeWarning)]
    assert len(messages) == 2 and all("step 3" in m and "torch.sqrt" in m for m in messages)
