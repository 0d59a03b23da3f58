"""One rank of a 2-process DistributedDataParallel job on CPU (gloo): trains an unwatched and a watched TwinNet.

``python tests/ddp_twins.py RANK DIR DB``: rendezvous through a file in DIR; rank 0 watches its model into DB. Writes
``DIR/rank<RANK>.json`` with whether both models ended bit-identical and a checksum of each parameter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from twins import batches, train, twins

import torchscope

STEPS = 3


def main(rank: int, folder: Path, db: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=2)
    plain, watched = twins()
    data = batches(STEPS, seed=10 + rank)  # each rank its own shard: the gradients must be averaged
    train(DistributedDataParallel(plain), data)
    run = torchscope.init("ddp", db=db) if rank == 0 else None
    handle = run.watch(watched, every=1) if run else None  # watched before wrapping, as a training script does
    train(DistributedDataParallel(watched), data)
    if run:
        handle.remove()
        run.finish()
    a, b = plain.state_dict(), watched.state_dict()
    identical = list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    params = [float(p.double().sum()) for p in watched.parameters()]
    (folder / f"rank{rank}.json").write_text(json.dumps({"identical": identical, "params": params}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
