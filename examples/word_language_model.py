"""Train a word-level language model (LSTM, GRU or Transformer) with torchscope watching and profiling it.

PyTorch's word_language_model example, on a corpus generated here (no download): the training loop, the
evaluation under ``torch.no_grad()``, a whole-model checkpoint (``torch.save(model, path)``) after every epoch, and
at the end the best checkpoint reloaded and evaluated on the test split.

    python examples/word_language_model.py [--model lstm|gru|transformer] [--epochs 3] [--db torchscope.db]
                                           [--threads 1]   # on a shared 2-core VM: 2 threads ran 20x slower
    torchscope serve torchscope.db      # /run/<id> for the curves, /graph/<id>, /profile/<id>

Logged: ``train/loss`` and ``train/lr`` every batch (step: batches trained so far), ``valid/loss`` and
``valid/ppl`` after every epoch, ``test/loss`` and ``test/ppl`` once at the end (all at the step of the last batch).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

import torchscope

# the models live in their own module (examples/language_models.py), as in PyTorch's example: torch.save(model)
# pickles a class by its module path, so the checkpoints load in any program that can import that module
from language_models import RNNModel, TransformerModel

# -- data ----------------------------------------------------------------------------------------------------------

SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the children", "a small bird", "the teacher", "we"]
VERBS = ["sees", "likes", "finds", "follows", "watches", "feeds", "remembers", "helps", "calls", "meets"]
OBJECTS = ["the ball", "a red apple", "the big house", "some bread", "the river", "a letter", "the train", "them"]
PLACES = ["in the garden", "at the station", "near the river", "on the hill", "after dinner", "before noon", ""]


def generate_text(sentences: int, seed: int) -> list[str]:
    """Sentences of a small grammar: learnable structure, a vocabulary of 48 words."""
    rng = random.Random(seed)
    lines = []
    for _ in range(sentences):
        clause = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}".strip()
        if rng.random() < 0.3:
            clause += f" and {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        lines.append(clause + " .")
    return lines


class Dictionary:
    def __init__(self) -> None:
        self.word2idx: dict[str, int] = {}
        self.idx2word: list[str] = []

    def add_word(self, word: str) -> int:
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self) -> int:
        return len(self.idx2word)


class Corpus:
    """Train/valid/test splits (80/10/10 %) of the generated text as one long tensor of word ids each."""

    def __init__(self, sentences: int, seed: int = 0) -> None:
        self.dictionary = Dictionary()
        for word in " ".join(SUBJECTS + VERBS + OBJECTS + PLACES + ["and", ".", "<eos>"]).split():
            self.dictionary.add_word(word)
        lines = generate_text(sentences, seed)
        cut1, cut2 = int(0.8 * len(lines)), int(0.9 * len(lines))
        self.train = self.tokenize(lines[:cut1])
        self.valid = self.tokenize(lines[cut1:cut2])
        self.test = self.tokenize(lines[cut2:])

    def tokenize(self, lines: list[str]) -> torch.Tensor:
        ids = [self.dictionary.word2idx[word] for line in lines for word in line.split() + ["<eos>"]]
        return torch.tensor(ids, dtype=torch.int64)


def batchify(data: torch.Tensor, bsz: int, device: torch.device) -> torch.Tensor:
    """(words,) -> (words // bsz, bsz): each column a contiguous stretch of the text."""
    nbatch = data.size(0) // bsz
    return data[: nbatch * bsz].view(bsz, -1).t().contiguous().to(device)


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs at rows i..i+bptt and, as targets, the same shifted by one word."""
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len].reshape(-1)


def repackage_hidden(h):
    """Detach the hidden state from the previous batch's graph (truncated backpropagation through time)."""
    return h.detach() if isinstance(h, torch.Tensor) else tuple(repackage_hidden(v) for v in h)


# -- training ------------------------------------------------------------------------------------------------------


def train_batch(model, optimizer, criterion, data, targets, hidden, clip: float):
    """One optimisation step; returns the loss and the hidden state to carry into the next batch."""
    optimizer.zero_grad()
    if isinstance(model, TransformerModel):
        output = model(data).view(-1, model.ntoken)
    else:
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
    loss = criterion(output, targets)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss, hidden


def evaluate(model, criterion, source: torch.Tensor, bptt: int, batch_size: int) -> float:
    """Mean loss per word over ``source``, in eval mode and without gradients."""
    model.eval()
    total, words = 0.0, 0
    hidden = None if isinstance(model, TransformerModel) else model.init_hidden(batch_size)
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, bptt):
            data, targets = get_batch(source, i, bptt)
            if hidden is None:
                output = model(data).view(-1, model.ntoken)
            else:
                output, hidden = model(data, hidden)
            total += len(data) * criterion(output, targets).item()
            words += len(data)
    return total / words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="torchscope store (path or URL); default ./torchscope.db")
    parser.add_argument("--model", default="lstm", type=str.lower, choices=["lstm", "gru", "transformer"])
    parser.add_argument("--sentences", type=int, default=20000, help="size of the generated corpus")
    parser.add_argument("--emsize", type=int, default=200, help="word embedding size")
    parser.add_argument("--nhid", type=int, default=200, help="hidden units per layer (feed-forward for transformer)")
    parser.add_argument("--nlayers", type=int, default=2)
    parser.add_argument("--nhead", type=int, default=2, help="attention heads (transformer)")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=5.0, help="initial learning rate (SGD), divided by 4 on a plateau")
    parser.add_argument("--clip", type=float, default=0.25, help="gradient clipping")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--bptt", type=int, default=35, help="sequence length")
    parser.add_argument("--max-batches", type=int, default=0, help="stop each epoch after this many batches (0: all)")
    parser.add_argument("--watch-every", type=int, default=10, help="capture graph and statistics every N forwards")
    parser.add_argument("--save", default="checkpoints/wlm", help="folder for last.pt (every epoch) and best.pt")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default; 1 on a busy VM)")
    parser.add_argument("--log-interval", type=int, default=50, help="print every N batches")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    corpus = Corpus(args.sentences, seed=args.seed)
    eval_batch_size = 10
    train_data = batchify(corpus.train, args.batch_size, device)
    val_data = batchify(corpus.valid, eval_batch_size, device)
    test_data = batchify(corpus.test, eval_batch_size, device)

    ntokens = len(corpus.dictionary)
    if args.model == "transformer":
        model = TransformerModel(ntokens, args.emsize, args.nhead, args.nhid, args.nlayers, args.dropout)
    else:
        model = RNNModel(args.model.upper(), ntokens, args.emsize, args.nhid, args.nlayers, args.dropout)
    model = model.to(device)
    criterion = nn.NLLLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    save_dir = Path(args.save)
    save_dir.mkdir(parents=True, exist_ok=True)

    config = {**vars(args), "ntokens": ntokens, "device": str(device)}
    with torchscope.init(name=f"wlm-{args.model}", db=args.db, config=config) as run:
        run.watch(model, every=args.watch_every)
        step, best_val_loss = 0, math.inf
        for epoch in range(1, args.epochs + 1):
            model.train()
            hidden = None if args.model == "transformer" else model.init_hidden(args.batch_size)
            started = time.perf_counter()
            # profile a window of the first epoch: 1 batch skipped, 1 warm-up, 3 recorded
            profiling = run.profile(wait=1, warmup=1, active=3, record_shapes=True) if epoch == 1 else nullcontext()
            with profiling as prof:
                for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
                    if args.max_batches and batch == args.max_batches:
                        break
                    data, targets = get_batch(train_data, i, args.bptt)
                    loss, hidden = train_batch(model, optimizer, criterion, data, targets, hidden, args.clip)
                    run.log({"train/loss": loss.item(), "train/lr": optimizer.param_groups[0]["lr"]}, step=step)
                    step += 1
                    if prof is not None:
                        prof.step()
                    if batch % args.log_interval == 0 and batch > 0:
                        ms = (time.perf_counter() - started) * 1000 / (batch + 1)
                        print(f"| epoch {epoch:3d} | batch {batch:5d} | {ms:6.1f} ms/batch | loss {loss.item():5.2f}")

            val_loss = evaluate(model, criterion, val_data, args.bptt, eval_batch_size)
            run.log({"valid/loss": val_loss, "valid/ppl": math.exp(val_loss)}, step=step - 1)
            print(f"| end of epoch {epoch:3d} | {time.perf_counter() - started:5.1f} s | valid loss {val_loss:5.2f}")
            torch.save(model, save_dir / "last.pt")
            if val_loss < best_val_loss:
                best_val_loss = val_loss
                torch.save(model, save_dir / "best.pt")
            else:  # no improvement: anneal the learning rate
                for group in optimizer.param_groups:
                    group["lr"] /= 4.0

        best = torch.load(save_dir / "best.pt", weights_only=False)  # the whole model, as saved
        test_loss = evaluate(best, criterion, test_data, args.bptt, eval_batch_size)
        run.log({"test/loss": test_loss, "test/ppl": math.exp(test_loss)}, step=step - 1)
        print(f"| end of training | test loss {test_loss:5.2f} | test ppl {math.exp(test_loss):8.2f}")
        print(f"run {run.id}: torchscope serve {run.url}")


if __name__ == "__main__":
    main()
