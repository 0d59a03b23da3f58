"""Train a classifier with DistributedDataParallel on CPU processes (gloo), each rank recorded by torchscope.

The script spawns ``--world-size`` processes itself (rendezvous on 127.0.0.1, a free port). Every rank opens its
own run in the one shared store, named ``<name>-rank<r>``; torchscope records its rank and world size (from the
process group) and the job id (``$TORCHSCOPE_JOB_ID``, which the script sets for its ranks unless it is set
already). Each rank watches its model and profiles a window of the first epoch. Rank 0 saves
``model.module.state_dict()`` after every epoch.

    python examples/ddp_train.py [--world-size 2] [--epochs 3] [--db torchscope.db]
    torchscope serve torchscope.db      # the job is one row of the runs page; a rank's profile shows every rank

Logged per rank: ``train/loss`` every batch (step: batches trained so far), ``val/loss`` and ``val/accuracy``
(all ranks together) after every epoch at the step of its last batch.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

import torchscope


class Classifier(nn.Module):
    """A residual MLP: input projection, ``depth`` blocks of LayerNorm -> Linear -> GELU -> Linear, a head."""

    def __init__(self, features: int = 32, width: int = 256, depth: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.proj = nn.Linear(features, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
            for _ in range(depth)
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


def make_datasets(samples: int, features: int, classes: int, seed: int) -> tuple[TensorDataset, TensorDataset]:
    """Points around one random centre per class, and a quarter as many to validate; every rank builds the same
    data from the same seed."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, features, generator=generator)
    labels = torch.randint(0, classes, (samples + samples // 4,), generator=generator)
    points = centres[labels] + torch.randn(len(labels), features, generator=generator)
    return TensorDataset(points[:samples], labels[:samples]), TensorDataset(points[samples:], labels[samples:])


def evaluate(model: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Loss and accuracy over the validation set, summed across all ranks (every rank gets the same result)."""
    model.eval()
    totals = torch.zeros(3)  # loss sum, correct, count
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            totals += torch.tensor([F.cross_entropy(logits, y, reduction="sum").item(),
                                    (logits.argmax(1) == y).sum().item(), len(y)])  # fmt: skip
    dist.all_reduce(totals)
    return (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()


def worker(rank: int, world_size: int, port: int, args: argparse.Namespace) -> None:
    """One rank: join the process group, train, evaluate, and (rank 0) checkpoint."""
    torch.set_num_threads(args.threads)  # the ranks share the machine's cores
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    train_set, val_set = make_datasets(args.samples, args.features, args.classes, seed=args.seed)
    train_sampler = DistributedSampler(train_set, world_size, rank, shuffle=True, seed=args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, sampler=train_sampler, drop_last=True)
    val_sampler = DistributedSampler(val_set, world_size, rank, shuffle=False)
    val_loader = DataLoader(val_set, batch_size=256, sampler=val_sampler)

    config = {**vars(args), "rank": rank, "world_size": world_size, "backend": "gloo"}
    with torchscope.init(name=f"{args.name}-rank{rank}", db=args.db, config=config) as run:
        model = Classifier(args.features, args.width, args.depth, args.classes)
        run.watch(model, every=args.watch_every)  # watch the module itself; DDP wraps it unchanged
        ddp_model = DistributedDataParallel(model)
        optimizer = torch.optim.AdamW(ddp_model.parameters(), lr=args.lr)
        step = 0
        for epoch in range(args.epochs):
            train_sampler.set_epoch(epoch)  # a different shuffle each epoch, the same on every rank
            ddp_model.train()
            profiling = run.profile(wait=1, warmup=1, active=3) if epoch == 0 else nullcontext()
            with profiling as prof:
                for x, y in train_loader:
                    loss = F.cross_entropy(ddp_model(x), y)
                    optimizer.zero_grad()
                    loss.backward()  # DDP all-reduces the gradients here
                    optimizer.step()
                    run.log({"train/loss": loss.item()}, step=step)
                    step += 1
                    if prof is not None:
                        prof.step()
            val_loss, val_accuracy = evaluate(ddp_model, val_loader)
            run.log({"val/loss": val_loss, "val/accuracy": val_accuracy}, step=step - 1)
            if rank == 0:
                torch.save(ddp_model.module.state_dict(), args.save)
                print(f"epoch {epoch}: val loss {val_loss:.3f}, accuracy {val_accuracy:.3f}, saved {args.save}")
            dist.barrier()  # nobody reads the checkpoint before it is written
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="torchscope store shared by the ranks; default ./torchscope.db")
    parser.add_argument("--name", default="ddp", help="runs are named <name>-rank<r>")
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=16384, help="training points (a quarter as many to validate)")
    parser.add_argument("--batch-size", type=int, default=64, help="per rank")
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--watch-every", type=int, default=10, help="capture graph and statistics every N forwards")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--save", default="checkpoints/ddp.pt", help="rank 0's state_dict, after every epoch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    Path(args.save).parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHSCOPE_JOB_ID", f"{args.name}-{time.strftime('%Y%m%d-%H%M%S')}")  # the ranks inherit it
    mp.spawn(worker, args=(args.world_size, free_port(), args), nprocs=args.world_size, join=True)


if __name__ == "__main__":
    main()
