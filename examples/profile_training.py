"""Profile a few training steps of a small CNN and read the analyses back, as a notebook would.

    python examples/profile_training.py [--db torchscope.db]
    torchscope serve torchscope.db      # open /profile/<id> and /timeline/<id>
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import torchscope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with torchscope.init(name="profile-cnn", db=args.db, config={"device": device}) as run:
        with run.profile(wait=1, warmup=1, active=3, record_shapes=True, profile_memory=True, with_stack=True) as prof:
            for step in range(5):
                x = torch.randn(32, 3, 32, 32, device=device)
                y = torch.randint(0, 10, (32,), device=device)
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.log({"train/loss": loss.item()}, step=step)
                prof.step()
    store = torchscope.open(args.db)
    profile_id = int(store.profiles(run.id)["id"].iloc[-1])
    print(store.step_breakdown(profile_id).to_string(index=False))
    print(store.op_table(profile_id).head(8).to_string(index=False))


if __name__ == "__main__":
    main()
