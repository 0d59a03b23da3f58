"""Per-batch overhead of torchscope on the word-language-model example (LSTM and Transformer), at its default size.

Times ``train_batch`` of examples/word_language_model.py in three variants: no torchscope, ``run.watch(every=10)``,
and ``run.watch(every=10)`` with a ``run.profile(wait=1, warmup=1, active=3, record_shapes=True)`` window in every
block (the example's settings). Each round times one block of ``--block`` batches per variant, in a rotating order,
and ends each instrumented block with ``run.flush()`` so that storing what the block captured is charged to it. The
ratios are taken within a round, the figure is their median over rounds; the same for the CPU time of the whole
process (every thread, the writer's included), which other jobs on a shared machine disturb less than wall
time. Target (issue 13): <= 1.2x per batch with
``every=10``.

    .venv/bin/python benchmarks/bench_examples.py [--rounds 7] [--block 50] [--threads 1] [--models lstm transformer]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import torchscope  # noqa: E402
import word_language_model as wlm  # noqa: E402
from language_models import RNNModel, TransformerModel  # noqa: E402

VARIANTS = ("plain", "watch", "watch+profile")


def make_model(kind: str, ntokens: int) -> nn.Module:
    """The example's default model: emsize 200, nhid 200, 2 layers (2 heads for the Transformer), dropout 0.2."""
    torch.manual_seed(0)
    if kind == "transformer":
        return TransformerModel(ntokens, 200, 2, 200, 2, 0.2)
    return RNNModel(kind.upper(), ntokens, 200, 200, 2, 0.2)


class Trainer:
    """One copy of the model, its optimizer and hidden state, walking through the training data batch by batch."""

    def __init__(self, model: nn.Module, data: torch.Tensor, bptt: int) -> None:
        self.model, self.data, self.bptt = model.train(), data, bptt
        self.optimizer = torch.optim.SGD(model.parameters(), lr=5.0)
        self.criterion = nn.NLLLoss()
        self.hidden = None if isinstance(model, TransformerModel) else model.init_hidden(data.size(1))
        self.i = 0

    def batch(self) -> None:
        if self.i >= self.data.size(0) - 1 - self.bptt:
            self.i = 0
        data, targets = wlm.get_batch(self.data, self.i, self.bptt)
        self.i += self.bptt
        _, self.hidden = wlm.train_batch(self.model, self.optimizer, self.criterion, data, targets, self.hidden, 0.25)


def bench(kind: str, train_data: torch.Tensor, ntokens: int, runs: dict, rounds: int, block: int) -> dict:
    base = make_model(kind, ntokens)
    trainers = {key: Trainer(copy.deepcopy(base), train_data, 35) for key in VARIANTS}
    handles = [runs[key].watch(trainers[key].model, every=10, name=kind) for key in ("watch", "watch+profile")]
    for trainer in trainers.values():  # warm-up, a multiple of 10 so that every block captures block / 10 steps
        for _ in range(10):
            trainer.batch()
    for run in runs.values():
        run.flush()
    per_batch: dict[str, list[float]] = {key: [] for key in VARIANTS}  # wall time
    cpu_per_batch: dict[str, list[float]] = {key: [] for key in VARIANTS}  # CPU time of the process, all threads
    for r in range(rounds):
        for key in VARIANTS[r % 3 :] + VARIANTS[: r % 3]:
            trainer, run = trainers[key], runs.get(key)
            window = run.profile(wait=1, warmup=1, active=3, record_shapes=True) if key == "watch+profile" else None
            start, cpu_start = time.perf_counter(), time.process_time()
            with window or nullcontext():
                for _ in range(block):
                    trainer.batch()
                    if window is not None:
                        window.step()
            if run is not None:
                run.flush()
            per_batch[key].append((time.perf_counter() - start) / block)
            cpu_per_batch[key].append((time.process_time() - cpu_start) / block)
    for handle in handles:
        handle.remove()
    result = {"plain_ms": statistics.median(per_batch["plain"]) * 1e3}
    for key in ("watch", "watch+profile"):
        wall = [v / p for v, p in zip(per_batch[key], per_batch["plain"])]
        cpu = [v / p for v, p in zip(cpu_per_batch[key], cpu_per_batch["plain"])]
        result[key] = (statistics.median(wall), min(wall), max(wall), statistics.median(cpu))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=int, default=50, help="batches per variant and round (a multiple of 10)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--models", nargs="+", default=["lstm", "transformer"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # on a shared VM one thread avoids OpenMP barrier stalls
    corpus = wlm.Corpus(20000, seed=1111)
    train_data = wlm.batchify(corpus.train, 20, torch.device("cpu"))
    ntokens = len(corpus.dictionary)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); batch 20 x bptt 35, {ntokens} words; "
          f"{args.rounds} rounds of {args.block} batches per variant")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        runs = {key: torchscope.init(f"bench-{key}", db=Path(tmp) / "bench.db") for key in ("watch", "watch+profile")}
        for kind in args.models:
            r = bench(kind, train_data, ntokens, runs, args.rounds, args.block)
            print(f"{kind:12s} plain {r['plain_ms']:6.1f} ms/batch")
            for key in ("watch", "watch+profile"):
                wall, low, high, cpu = r[key]
                print(f"{'':12s} {key:14s} wall {wall:5.3f}x (rounds {low:.3f}-{high:.3f}) | process CPU {cpu:5.3f}x")
        for run in runs.values():
            run.finish()


if __name__ == "__main__":
    main()
