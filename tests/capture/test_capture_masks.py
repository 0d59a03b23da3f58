"""Infinities a model puts there on purpose (attention masks) are not anomalies; a real NaN after them still is."""

from __future__ import annotations

import warnings

import torch

from torchscope.errors import TorchscopeWarning

from models import CausalAttention, line_of
from runs import flushed_store


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
    anomalies = flushed_store(run).anomalies(run.id)
    line = line_of(CausalAttention.forward, "<sqrt>")
    assert anomalies[["step", "phase", "op", "line"]].values.tolist() == [
        [3, "forward", "torch.sqrt", line],
        [3, "backward", "torch.sqrt", line],
    ]
    messages = [str(w.message) for w in caught if issubclass(w.category, TorchscopeWarning)]
    assert len(messages) == 2 and all("step 3" in m and "torch.sqrt" in m for m in messages)
