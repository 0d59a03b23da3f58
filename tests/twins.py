"""A small real model and a training loop for "watched vs unwatched twin" tests (tests/capture/test_transparency*).

Importable by name (tests/ is on the path), so that a pickled ``TwinNet`` loads in a subprocess that has only torch
and this folder.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """Linear -> LayerNorm -> GELU."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.norm(self.fc(x)))


class TwinNet(nn.Module):
    """fc1 -> BatchNorm (buffers) -> relu -> Block -> Dropout (uses the RNG) -> head."""

    def __init__(self, d_in: int = 6, d: int = 8, d_out: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d)
        self.bn = nn.BatchNorm1d(d)
        self.block = Block(d)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(d, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.block(torch.relu(self.bn(self.fc1(x))))))


def twins(make: Callable[[], nn.Module] = TwinNet, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """Two models with identical weights and buffers: the first stays plain, the second is the one to watch."""
    torch.manual_seed(seed)
    plain = make()
    return plain, copy.deepcopy(plain)


def batches(n: int, d_in: int = 6, classes: int = 3, size: int = 5, seed: int = 1) -> list[tuple[torch.Tensor, ...]]:
    """``n`` fixed ``(x, y)`` batches."""
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, d_in, generator=gen), torch.randint(0, classes, (size,), generator=gen)) for _ in range(n)
    ]


def train(
    model: nn.Module,
    data: list[tuple[torch.Tensor, ...]],
    optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.SGD,
    accumulate: int = 1,
    seed: int = 2,
    **options: float,
) -> list[float]:
    """Train on ``data`` (one optimizer step every ``accumulate`` batches) from a fixed RNG state; the losses."""
    torch.manual_seed(seed)  # the same dropout masks for both twins
    opt = optimizer(model.parameters(), **(options or {"lr": 0.1}))
    losses = []
    for i, (x, y) in enumerate(data):
        loss = F.cross_entropy(model(x), y) / accumulate
        loss.backward()
        losses.append(loss.item())
        if (i + 1) % accumulate == 0:
            opt.step()
            opt.zero_grad()
    return losses


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    """Identical state_dict keys, and bit-identical values."""
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def hook_counts(model: nn.Module) -> dict[str, int]:
    """Every hook the model, its submodules and its parameters and buffers carry, by place."""
    counts = {}
    for name, module in model.named_modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                     "_state_dict_hooks", "_load_state_dict_pre_hooks"):  # fmt: skip
            counts[f"{name}.{attr}"] = len(getattr(module, attr, None) or ())
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        counts[f"{name}._backward_hooks"] = len(t._backward_hooks or ())
        counts[f"{name}._post_accumulate_grad_hooks"] = len(getattr(t, "_post_accumulate_grad_hooks", None) or ())
    return counts
