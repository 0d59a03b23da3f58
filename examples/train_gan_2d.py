"""Train a small GAN on a ring of eight Gaussians in 2-D, in plain PyTorch (no torchscope in it): two models, two
optimizers, an exponential moving average copy of the generator (``copy.deepcopy``), for ``torchscope run``.

Every ``--log-every`` steps it prints ``step 50 d_loss=1.32 g_loss=0.78 ring_dist=0.41`` (``ring_dist``: how far
samples of the averaged generator lie from the ring, evaluated under ``torch.no_grad()``); at the end it saves both
models and the average in one checkpoint, ``--out`` (default ``gan.pt``).

    python examples/train_gan_2d.py --steps 200
    torchscope run --parse-stdout examples/train_gan_2d.py --steps 200     # watches Generator and Discriminator
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path

import torch
from torch import nn


def real_batch(n: int, generator: torch.Generator) -> torch.Tensor:
    """Points around eight centres on the unit circle."""
    angles = torch.randint(0, 8, (n,), generator=generator).float() * (2 * math.pi / 8)
    centres = torch.stack([angles.cos(), angles.sin()], dim=1)
    return centres + 0.05 * torch.randn(n, 2, generator=generator)


class Generator(nn.Module):
    def __init__(self, noise: int = 8, width: int = 64) -> None:
        super().__init__()
        self.noise = noise
        self.net = nn.Sequential(nn.Linear(noise, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, 2))  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, 1))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--ema", type=float, default=0.99)
    parser.add_argument("--out", type=Path, default=Path("gan.pt"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    data = torch.Generator().manual_seed(args.seed)
    G, D = Generator(), Discriminator()
    G_ema = copy.deepcopy(G).requires_grad_(False)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(args.batch_size, 1), torch.zeros(args.batch_size, 1)
    for step in range(1, args.steps + 1):
        real = real_batch(args.batch_size, data)
        fake = G(torch.randn(args.batch_size, G.noise))
        d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = bce(D(fake), ones)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.lerp_(p, 1 - args.ema)
        if step % args.log_every == 0:
            with torch.no_grad():
                samples = G_ema(torch.randn(512, G.noise))
                ring_dist = (samples.norm(dim=1) - 1).abs().mean().item()
            print(f"step {step} d_loss={d_loss.item():.4f} g_loss={g_loss.item():.4f} ring_dist={ring_dist:.4f}")
    torch.save({"generator": G.state_dict(), "discriminator": D.state_dict(), "ema": G_ema.state_dict()}, args.out)


if __name__ == "__main__":
    main()
