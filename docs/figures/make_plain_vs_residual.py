"""Chapter 8's experiment: a deep plain CNN vs the same network with residual connections.

    python docs/figures/make_plain_vs_residual.py      # the run chapter 8 shows: 26 layers, 5000 images, 2 epochs
    python docs/figures/make_plain_vs_residual.py --blocks 20 --train-size 20000 --epochs 5   # a bigger one

Both networks are identical except for the identity shortcut in each block:

    stem:   conv3x3(1 -> W, stride 2) - BN - ReLU                 28x28 -> 14x14
    blocks: B times [conv3x3 - BN - ReLU - conv3x3 - BN (+ x) - ReLU]   (W channels, 14x14)
    head:   global average pool - Linear(W -> 10)

so both have 2B + 2 weight layers and exactly the same parameters.  They train on
Fashion-MNIST (Debian's package, offline) on the CPU with the same seed, data order,
SGD with momentum and learning rate.  The script records the training loss per step,
the test accuracy per epoch, and the gradient norm of every conv layer's weight at
initialization (on one batch), writes ``plain_vs_residual.json`` and
``plain_vs_residual.png`` next to itself (or in ``--out``), and prints a summary.
Nothing in the docs is copied from anywhere else: chapter 8 quotes this script's output.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import minitorch_nndl as mt
from minitorch_nndl import nn, optim
from minitorch_nndl.data import FashionMNIST
from minitorch_nndl.ops.loss import cross_entropy

HERE = Path(__file__).resolve().parent


class Block(nn.Module):
    """conv-BN-ReLU-conv-BN, plus the input when ``residual``, then ReLU."""

    def __init__(self, width: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + x  # the whole difference between the two networks
        return self.relu(out)


class Net(nn.Module):
    def __init__(self, blocks: int, width: int, residual: bool) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.blocks = nn.Sequential(*[Block(width, residual) for _ in range(blocks)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width, 10)

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return self.fc(self.flatten(self.pool(self.blocks(self.stem(x)))))


def load(split: str, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    data = FashionMNIST(split=split)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(data.labels))[:size]
    x = data.images[pick].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    x = (x - FashionMNIST.MEAN[0]) / FashionMNIST.STD[0]
    return x.astype(np.float32), data.labels[pick]


def conv_grad_norms(model: Net, x: np.ndarray, y: np.ndarray) -> list[float]:
    """||dL/dW|| of every conv layer, from input to output, on one batch at initialization."""
    model.train()
    model.zero_grad()
    cross_entropy(model(mt.tensor(x)), mt.tensor(y)).backward()
    norms = [float(np.linalg.norm(m.weight.grad)) for m in model.modules() if isinstance(m, nn.Conv2d)]
    model.zero_grad()
    return norms


def accuracy(model: Net, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    model.eval()  # BN uses its running statistics: the count does not depend on the batch
    correct = 0
    with mt.no_grad():
        for i in range(0, len(y), batch):
            logits = model(mt.tensor(x[i : i + batch]))
            correct += int((logits.numpy().argmax(axis=1) == y[i : i + batch]).sum())  # axis 1: the classes
    model.train()
    return correct / len(y)  # one division over all samples, not a mean of per-batch accuracies


def train(args: argparse.Namespace, residual: bool, data: tuple) -> dict:
    x_train, y_train, x_test, y_test = data
    mt.manual_seed(args.seed)
    model = Net(args.blocks, args.width, residual)
    grads = conv_grad_norms(model, x_train[: args.batch_size], y_train[: args.batch_size])
    opt = optim.SGD(optim.split_weight_decay(model, 5e-4), lr=args.lr, momentum=0.9, nesterov=True)
    steps_per_epoch = len(y_train) // args.batch_size
    sched = optim.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch)
    rng = np.random.default_rng(args.seed)  # the same data order for both networks
    losses, test_acc = [], []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(y_train))
        for step in range(steps_per_epoch):
            idx = order[step * args.batch_size : (step + 1) * args.batch_size]
            loss = cross_entropy(model(mt.tensor(x_train[idx])), mt.tensor(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        test_acc.append(accuracy(model, x_test, y_test))
        print(
            f"  {'residual' if residual else 'plain':8s} epoch {epoch + 1}: train loss (last 20 steps) "
            f"{np.mean(losses[-20:]):.3f}, test accuracy {test_acc[-1]:.4f}, {time.perf_counter() - start:.0f} s",
            flush=True,
        )
    return {
        "losses": losses,
        "test_accuracy": test_acc,
        "conv_grad_norms_at_init": grads,
        "seconds": time.perf_counter() - start,
        "parameters": model.num_parameters(),
    }


def plot(results: dict, args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = {"plain": "#d62728", "residual": "#1f77b4"}
    for name, r in results.items():
        losses = np.asarray(r["losses"])
        k = max(1, min(20, len(losses) // 10))
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        a.plot(
            np.arange(len(smooth)) + k - 1,
            smooth,
            color=colors[name],
            label=f"{name} (test acc {r['test_accuracy'][-1]:.3f})",
        )
        norms = r["conv_grad_norms_at_init"]
        b.semilogy(range(1, len(norms) + 1), norms, "o-", ms=3, color=colors[name], label=name)
    depth = 2 * args.blocks + 2
    a.set_title(f"training loss, {depth} layers, Fashion-MNIST ({args.train_size} images)", fontsize=9)
    a.set_xlabel("step")
    a.set_ylabel(f"cross-entropy (moving average of {k})")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    b.set_title("gradient norm of each conv layer's weight at initialization", fontsize=9)
    b.set_xlabel("conv layer (1 = first, next to the input)")
    b.set_ylabel("||dL/dW||")
    b.legend(fontsize=8)
    b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=12, help="blocks of two convs (depth = 2*blocks + 2)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    x_train, y_train = load("train+dev", args.train_size, args.seed)
    x_test, y_test = load("test", args.test_size, args.seed + 1)
    data = (x_train, y_train, x_test, y_test)
    print(f"{2 * args.blocks + 2} layers, width {args.width}, {args.train_size} training images, {args.epochs} epochs")
    results = {name: train(args, name == "residual", data) for name in ("plain", "residual")}
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, **results}
    (args.out / "plain_vs_residual.json").write_text(json.dumps(summary, indent=1))
    plot(results, args, args.out / "plain_vs_residual.png")
    for name, r in results.items():
        g = r["conv_grad_norms_at_init"]
        print(
            f"{name:8s}: test accuracy per epoch {[round(a, 4) for a in r['test_accuracy']]}, "
            f"final train loss {np.mean(r['losses'][-20:]):.3f}, first/last conv grad norm at init "
            f"{g[0]:.3g}/{g[-1]:.3g}, {r['parameters']:,} parameters, {r['seconds'] / 60:.1f} min"
        )


if __name__ == "__main__":
    main()
