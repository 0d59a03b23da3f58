"""Train a small CNN on MNIST-like digits, in plain PyTorch (no torchscope in it): for ``torchscope run``.

The digits are drawn here (a seven-segment glyph per class, shifted and noisy, 28x28), so nothing is downloaded.
Each epoch trains, evaluates under ``torch.no_grad()`` and saves ``model.state_dict()`` to
``SAVE_DIR/epoch<N>.pt``; the script prints ``epoch 1 step 20 loss: 2.2413 lr=0.003`` while training and
``epoch 1 val_loss: 0.201 val_acc: 96.5%`` after each evaluation. With ``--min-accuracy`` it exits with code 3 when
the last validation accuracy is below it (as a CI check would).

    python examples/train_mnist_like.py --epochs 2 --save-dir checkpoints
    torchscope run examples/train_mnist_like.py --epochs 2 --save-dir checkpoints     # the same, recorded
    torchscope run --profile-steps 10:13 --parse-stdout examples/train_mnist_like.py --epochs 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

SEGMENTS = {  # which of the seven segments (top, top-left, top-right, middle, bottom-left, bottom-right, bottom)
    0: "1110111", 1: "0010010", 2: "1011101", 3: "1011011", 4: "0111010",
    5: "1101011", 6: "1101111", 7: "1010010", 8: "1111111", 9: "1111011",
}  # fmt: skip


def glyph(digit: int) -> torch.Tensor:
    """A 20x12 seven-segment drawing of ``digit``."""
    image = torch.zeros(20, 12)
    top, upper_left, upper_right, middle, lower_left, lower_right, bottom = (c == "1" for c in SEGMENTS[digit])
    if top:
        image[0:2, 1:11] = 1
    if middle:
        image[9:11, 1:11] = 1
    if bottom:
        image[18:20, 1:11] = 1
    if upper_left:
        image[1:10, 0:2] = 1
    if upper_right:
        image[1:10, 10:12] = 1
    if lower_left:
        image[10:19, 0:2] = 1
    if lower_right:
        image[10:19, 10:12] = 1
    return image


def make_digits(count: int, seed: int) -> TensorDataset:
    """``count`` 1x28x28 images of random digits, randomly placed, with noise; and their labels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (count,), generator=generator)
    images = torch.zeros(count, 1, 28, 28)
    rows = torch.randint(0, 9, (count,), generator=generator)
    cols = torch.randint(0, 17, (count,), generator=generator)
    glyphs = [glyph(d) for d in range(10)]
    for i in range(count):
        r, c = int(rows[i]), int(cols[i])
        images[i, 0, r : r + 20, c : c + 12] = glyphs[int(labels[i])]
    images += 0.3 * torch.randn(images.shape, generator=generator)
    return TensorDataset(images, labels)


class Net(nn.Module):
    """PyTorch's MNIST example network, narrower: two convolutions, dropout, two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(16 * 12 * 12, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(torch.flatten(x, 1))
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


def evaluate(model: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Mean loss and accuracy (percent) over ``loader``, without gradients."""
    model.eval()
    loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            output = model(images)
            loss += F.nll_loss(output, labels, reduction="sum").item()
            correct += int((output.argmax(1) == labels).sum())
            count += len(labels)
    model.train()
    return loss / count, 100.0 * correct / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-size", type=int, default=640)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--log-every", type=int, default=5, help="print the loss every N steps")
    parser.add_argument("--save-dir", type=Path, default=Path("checkpoints"))
    parser.add_argument("--min-accuracy", type=float, default=None, help="exit 3 when the last val_acc is below")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    train = DataLoader(make_digits(args.train_size, args.seed), batch_size=args.batch_size, shuffle=True)
    val = DataLoader(make_digits(args.train_size // 4, args.seed + 1), batch_size=128)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    args.save_dir.mkdir(parents=True, exist_ok=True)
    step = 0
    val_acc = 0.0
    for epoch in range(1, args.epochs + 1):
        for images, labels in train:
            optimizer.zero_grad()
            loss = F.nll_loss(model(images), labels)
            loss.backward()
            optimizer.step()
            step += 1
            if step % args.log_every == 0:
                print(f"epoch {epoch} step {step} loss: {loss.item():.4f} lr={scheduler.get_last_lr()[0]:.4g}")
        scheduler.step()
        val_loss, val_acc = evaluate(model, val)
        print(f"epoch {epoch} val_loss: {val_loss:.4f} val_acc: {val_acc:.1f}%")
        torch.save(model.state_dict(), args.save_dir / f"epoch{epoch}.pt")
    if args.min_accuracy is not None and val_acc < args.min_accuracy:
        print(f"val_acc {val_acc:.1f}% is below --min-accuracy {args.min_accuracy}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
