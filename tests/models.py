"""Tiny real models for capture tests ("fixtures are code"); lines of marked ops are looked up, not hard-coded."""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn


def line_of(obj: object, marker: str) -> int:
    """The source line of ``obj`` that contains ``marker`` (a comment such as ``# <log>``)."""
    lines, start = inspect.getsourcelines(obj)  # type: ignore[arg-type]
    for offset, text in enumerate(lines):
        if marker in text:
            return start + offset
    raise LookupError(marker)


class TinyMLP(nn.Module):
    """x -> fc1 -> relu -> fc2: ops F.linear, F.relu... exactly as counted in the tests."""

    def __init__(self, d_in: int = 4, d_hidden: int = 8, d_out: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))  # <relu>
        return self.fc2(h) + 1.0  # <add>


class LogBlock(nn.Module):
    """A submodule whose torch.log turns a negative input into NaN when ``poison`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.poison = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x).abs() + 1.0
        if self.poison:
            y = y - 10.0  # now negative everywhere
        z = torch.log(y)  # <log>
        return z * 2


class NanNet(nn.Module):
    """encoder.block.act is a LogBlock deep inside two containers."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.block = nn.Module()
        self.encoder.block.act = LogBlock()
        self.head = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.block.act(x)).sum()


class SqrtAtZero(nn.Module):
    """Finite forward, NaN gradient: d sqrt(u)/du at u = 0 is infinite and times 0 gives NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        u = h - h  # zeros
        r = torch.sqrt(u)  # <sqrt>
        return (r + h).sum()


class DictIO(nn.Module):
    """Takes a dict, a list and a non-tensor argument; returns a dict holding a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, batch: dict[str, torch.Tensor], extra: list[torch.Tensor], scale: float = 1.0) -> dict:
        a = self.fc(batch["a"]) * scale
        b = torch.cat([batch["b"], extra[0]], dim=0)
        return {"out": (a, b), "n": 3}


class SharedTwice(nn.Module):
    """The same Linear called twice (shared weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(torch.tanh(self.shared(x)))


class InPlace(nn.Module):
    """In-place ops on tensors autograd does not save: add_, index assignment, +=, then relu_ last."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        h.add_(1.0)  # <add_>
        h[:, 0] = -5.0  # <setitem>
        h += 1.0
        h.relu_()  # <relu_>
        return h * 2


class Square(torch.autograd.Function):
    """x**2 with a hand-written backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class CustomFn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return Square.apply(self.fc(x)).sum()


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.attn(x, x, x)
        return self.norm(out + x)


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, (h, c) = self.lstm(x)
        return self.head(out[:, -1])


class ConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.conv(x)))
        return self.fc(h.mean(dim=(2, 3)))


class Branchy(nn.Module):
    """Data-dependent control flow: a different graph when the input's sum is negative."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if x.sum() > 0:
            return torch.relu(h)
        return torch.sigmoid(h) * 2


class TinyTransformer(nn.Module):
    """A small pre-norm transformer encoder for language modelling (the benchmark's model)."""

    def __init__(self, vocab: int = 256, d: int = 128, heads: int = 4, layers: int = 2, seq: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(seq, d))
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos[: tokens.shape[1]]
        return self.head(self.encoder(h))


class SmallCNN(nn.Module):
    """A small CIFAR-style CNN (the benchmark's other model)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class CausalAttention(torch.nn.Module):
    """Self-attention with a causal mask made by ``masked_fill(..., -inf)``: an Inf that is meant to be there."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.poison = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ k.transpose(-2, -1)
        causal = torch.ones(x.shape[-2], x.shape[-2], dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        if self.poison:
            out = torch.sqrt(out - 10.0)  # <sqrt>
        return out.sum()


def record_nan_run(db: object, steps: int = 10, poison_at: int = 7) -> int:
    """A run "nan" of NanNet with every step captured; at ``poison_at`` ``torch.log`` runs on negative values deep
    inside (``encoder.block.act``). Returns the run id."""
    import torchscope

    torch.manual_seed(0)
    with torchscope.init(name="nan", db=db) as run:
        model = NanNet()
        run.watch(model, every=1)
        for step in range(steps):
            model.encoder.block.act.poison = step == poison_at
            model(torch.randn(8, 4)).backward()
    return run.id
