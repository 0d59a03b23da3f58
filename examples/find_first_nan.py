"""Find where a NaN comes from: a transformer block whose attention scores overflow at a known step.

    python examples/find_first_nan.py [--db torchscope.db] [--steps 30]
    torchscope serve torchscope.db      # open /graph/<run>, press "Jump to first anomaly"

torchscope warns as soon as it happens, naming the op, its module path and the line below marked <overflow>.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import torchscope


class Block(nn.Module):
    """Pre-norm self-attention with a causal mask and an MLP; ``scale`` blows up the scores when set."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.heads = heads
        self.scale = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * self.scale
        scores = torch.exp(scores)  # <overflow>: a hand-rolled softmax, fine until the scores grow
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, 0.0)
        attn = scores / scores.sum(-1, keepdim=True)
        x = x + torch.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, t, d)
        return x + self.mlp(self.norm2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab: int = 64, dim: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(Block(dim) for _ in range(layers))
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--blow-up-at", type=int, default=12)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = TinyGPT()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with torchscope.init(name="find-first-nan", db=args.db, config=vars(args)) as run:
        with run.watch(model, every=1):
            for step in range(args.steps):
                if step == args.blow_up_at:
                    model.blocks[1].scale = 1e4  # what a bad init or a missing 1/sqrt(d) does
                tokens = torch.randint(0, 64, (8, 16))
                logits = model(tokens)
                loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 64), tokens[:, 1:].reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.log({"train/loss": loss.item()}, step=step)
        print(f"run {run.id}: see torchscope.open(...).anomalies({run.id}) or /graph/{run.id}")


if __name__ == "__main__":
    main()
