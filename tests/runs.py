"""Helpers for tests that record live runs and read back what they recorded."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

import torchscope


def flushed_store(run: torchscope.Run) -> torchscope.Store:
    """The store of ``run`` once everything the run has logged or captured so far is written."""
    run.flush()
    return torchscope.open(run.url)


STEPS = 4
ACTIVE = 2  # profiled steps: wait=0, warmup=1, active=2
CAPTURED = [0, 2]  # run.watch(every=2)


class Net(nn.Module):
    """fc1 -> relu -> [extra] -> fc2."""

    def __init__(self, extra: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.extra = nn.Linear(8, 8) if extra else None
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        if self.extra is not None:
            h = self.extra(h)
        return self.fc2(h)


def train_pair_run(db: Path, name: str, extra: bool) -> dict:
    """One of the two compared runs (B has ``extra``): train 4 steps with watch + profile + log; return what the test needs to know independently."""
    torch.manual_seed(0)
    model = Net(extra)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses, fc1_norm = {}, {}
    config = {"layers": 3 if extra else 2, "lr": 0.1, "optim": {"name": "sgd", "momentum": 0.0}}
    if extra:
        config["extra_width"] = 8
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*acc_events.*")
        with torchscope.init(name=name, db=db, config=config) as run:
            run.watch(model, every=2)
            with run.profile(wait=0, warmup=1, active=ACTIVE, with_stack=True) as prof:
                for step in range(STEPS):
                    fc1_norm[step] = float(model.fc1.weight.detach().double().norm())
                    loss = model(torch.randn(5, 4)).pow(2).mean()
                    loss.backward()
                    opt.step()
                    opt.zero_grad()
                    losses[step] = loss.item()
                    run.log({"loss": losses[step]}, step=step)
                    prof.step()
    return {"id": run.id, "losses": losses, "fc1_norm": fc1_norm}
