"""Tiny real models for torch.compile tests: deliberate graph breaks, a shape that recompiles, a whole Transformer.

Lines of the breaks are looked up with :func:`models.line_of`, never hard-coded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import torchscope


class Chatty(nn.Module):
    """A block that prints: a graph break inside a submodule."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("chatty block")  # <print>
        return self.lin(x).relu()


class BreakNet(nn.Module):
    """Two deliberate graph breaks: a ``print`` in ``block`` and a branch on ``.item()`` in the root."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Chatty()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(x)
        if x.sum().item() > 0:  # <item>
            x = x * 2
        return self.head(x)


class ShapeNet(nn.Module):
    """Nothing that breaks; compiled with ``dynamic=False`` a new batch size fails a size guard."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(x))


class TinyTransformer(nn.Module):
    """One encoder layer and a head: compiles whole, without a break."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).mean(1)


def record_break_run(db: Path, steps: int = 3, backend: str = "inductor", profile: bool = False) -> int:
    """A run of :class:`BreakNet` compiled (by default with Inductor), watched every 2nd step; returns the run id.

    ``profile``: Inductor's C++ kernels get profiler events (``cpp.enable_kernel_profile``) and one more step, a
    compiled one, is profiled."""
    torch._dynamo.reset()  # what other tests compiled is not this run's business (a cached frame recompiles)
    torch.manual_seed(0)
    model = BreakNet()
    with torch._inductor.config.patch({"cpp.enable_kernel_profile": profile}):
        with torchscope.init("compiled", db=db, system_metrics=False) as run:
            handle = run.watch(model, every=2)
            compiled = torch.compile(model, backend=backend)
            for _ in range(steps):
                compiled(torch.rand(3, 4) + 0.5).sum().backward()
            if profile:
                with run.profile(wait=0, warmup=0, active=1) as session:
                    compiled(torch.rand(3, 4) + 0.5).sum().backward()  # step 3: compiled
                    session.step()
            handle.remove()
    return run.id
