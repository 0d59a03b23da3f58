"""The demo's training script: a small CNN learns synthetic pattern images, with everything torchscope captures.

Run by ``torchscope demo`` in a subprocess (``python -m torchscope.cli.demo_train DB SECONDS``), so the dashboard
watches a separate training process exactly as it would watch yours. Also a plain example of the API.
"""

from __future__ import annotations

import math
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

import torchscope

CLASSES = 4
SIZE = 16


class SmallCNN(nn.Module):
    """Conv-BN-ReLU twice, pooled, then a small MLP head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * (SIZE // 2) ** 2, 32), nn.GELU(), nn.Linear(32, CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def synthetic_batch(generator: torch.Generator, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of four kinds of stripes (horizontal, vertical, two diagonals) under noise, and their labels."""
    labels = torch.randint(0, CLASSES, (batch,), generator=generator)
    coords = torch.arange(SIZE, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    patterns = torch.stack([torch.sin(yy), torch.sin(xx), torch.sin(xx + yy), torch.sin(xx - yy)])
    images = patterns[labels] + 6.0 * torch.randn(batch, SIZE, SIZE, generator=generator)
    return images.unsqueeze(1), labels


def validate(model: nn.Module, generator: torch.Generator, run: torchscope.Run, step: int) -> None:
    """Loss and accuracy on a fresh batch, without gradients."""
    model.eval()
    with torch.no_grad():
        images, labels = synthetic_batch(generator, 256)
        logits = model(images)
        run.log(
            {
                "val/loss": F.cross_entropy(logits, labels).item(),
                "val/accuracy": (logits.argmax(1) == labels).float().mean().item(),
            },
            step=step,
        )
    model.train()


def train(db: str | None, seconds: float, name: str = "demo-cnn") -> int:
    """Train for ``seconds`` (wall time), logging into ``db``; returns the run id."""
    torch.manual_seed(0)
    # A model this small gains nothing from more threads, and OpenMP threads stall when a small machine is busy.
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    model = SmallCNN()
    lr = 3e-3
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    config = {"model": "SmallCNN", "lr": lr, "batch_size": 64, "optimizer": "AdamW", "seconds": seconds}
    with torchscope.init(name=name, db=db, config=config) as run:
        # step="log": captured steps are the steps run.log uses (validation forwards are not counted)
        run.watch(model, every=100, tensors="stats", grads=True, step="log")
        start = time.monotonic()
        step = 0

        def train_step() -> None:
            nonlocal step
            images, labels = synthetic_batch(generator)
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduled = lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (time.monotonic() - start) / seconds)))
            for group in optimizer.param_groups:
                group["lr"] = scheduled
            accuracy = (logits.argmax(1) == labels).float().mean()
            run.log({"train/loss": loss.item(), "train/accuracy": accuracy.item(), "train/lr": scheduled}, step=step)
            if step % 50 == 0:
                validate(model, generator, run, step)
            step += 1

        # One profiled window early on (steps 2-4 are recorded), then plain training until time is up.
        with run.profile(wait=1, warmup=1, active=3, record_shapes=True, profile_memory=True, with_stack=True) as prof:
            for _ in range(5):
                train_step()
                prof.step()
        while time.monotonic() - start < seconds:
            train_step()
        return run.id


if __name__ == "__main__":
    train(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None, float(sys.argv[2]) if len(sys.argv) > 2 else 60.0)
