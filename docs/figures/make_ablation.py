"""Chapter 9's ablation: which of the course's choices cost accuracy, one factor at a time.

    OPENBLAS_NUM_THREADS=1 python3 docs/figures/make_ablation.py   # the run chapter 9 shows (~35 min, 1 core)
    python3 docs/figures/make_ablation.py --train-size 300 --test-size 200 --train-eval-size 200 \
        --epochs 1 --long-epochs 2 --seeds 0 --extra-seeds --out /tmp/ablation   # a smoke test (seconds)
    python3 docs/figures/make_ablation.py --replot   # redraw the figure and table from ablation.json

Two endpoints and ten one-factor changes between them, on a narrow ResNet18 (``--width``,
default 8: stages of 8, 16, 32, 64 channels) trained on a random subset of Fashion-MNIST
(Debian's package, offline) on the CPU:

* ``course``: the course experiment's setup (``Recipe.named("seed")``): ImageNet stem
  (7x7 stride-2 conv + max-pool), SGD lr 0.001 with momentum 0.9 (no Nesterov, no weight
  decay), constant learning rate, no augmentation, no label smoothing;
* ``recipe``: our default recipe (``Recipe.named("default")``) at the same batch size (64,
  so lr 0.1 x 64/128 = 0.05): CIFAR stem (3x3 stride-1 conv), Nesterov, weight decay 5e-4
  (not on BN and biases), linear warm-up then cosine decay to 0, random crop (pad 2) +
  horizontal flip, label smoothing 0.1;
* ``course, 32 epochs``: the course setup trained 4x longer (``--long-epochs``);
* ``course + X``: the course setup with one factor X switched to the recipe's value, and
  ``recipe - X``: the recipe with X switched back to the course's, for X in stem, lr,
  augment, schedule, smoothing.  (Nesterov and weight decay are not ablated: they differ
  only between the endpoints.)

Each run uses the library's ``Trainer``, ``models.resnet18``, ``data.DataLoader`` and
``train.recipe.Recipe``; after every epoch it evaluates, in eval mode and without
augmentation, a fixed subset of the training images (``train_acc``) and the test subset
(``test_acc``).  Every configuration runs with each of ``--seeds`` (0 and 1: the weights,
the data order and the augmentation), the endpoints also with ``--extra-seeds`` (2), to
show how much a number moves with the seed alone.  Writes ``ablation.json`` (after every
run, so that ``--append`` can continue an interrupted ablation) and ``ablation.png`` next
to itself (or in ``--out``), and prints the Markdown table chapter 9 quotes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import minitorch_nndl as mt
from minitorch_nndl import nn
from minitorch_nndl.data import DataLoader, catalog, random_subset
from minitorch_nndl.models import resnet18
from minitorch_nndl.train import Trainer
from minitorch_nndl.train.recipe import Recipe, eval_transform

HERE = Path(__file__).resolve().parent
DATASET = "fashion-mnist"
FACTORS = ("stem", "lr", "augment", "schedule", "smoothing")
CHANGES = {  # what each configuration changes, in the words of chapter 9's table
    "course": "the course's setup",
    "recipe": "our recipe at batch 64",
    "course + stem": "CIFAR stem",
    "course + lr": "lr 0.05",
    "course + augment": "crop + flip",
    "course + schedule": "warm-up + cosine",
    "course + smoothing": "label smoothing 0.1",
    "recipe - stem": "ImageNet stem",
    "recipe - lr": "lr 0.001",
    "recipe - augment": "no augmentation",
    "recipe - schedule": "constant lr",
    "recipe - smoothing": "no label smoothing",
}
CURVES = ("recipe", "recipe - augment")  # with the long course run, in the per-epoch panel


@dataclasses.dataclass(frozen=True)
class Setup:
    """One configuration: the network's stem and the training recipe."""

    name: str
    stem: str
    recipe: Recipe


def endpoints(epochs: int, batch_size: int) -> tuple[Setup, Setup]:
    """The course's setup and our recipe, both at ``epochs`` and ``batch_size``."""
    course = Recipe.named("seed", DATASET, epochs=epochs, batch_size=batch_size)
    ours = Recipe.named("default", DATASET, epochs=epochs, batch_size=batch_size)
    return Setup("course", "imagenet", course), Setup("recipe", "cifar", ours)


def with_factor(setup: Setup, factor: str, source: Setup, name: str) -> Setup:
    """``setup`` with ``factor`` taken from ``source``."""
    if factor == "stem":
        return Setup(name, source.stem, setup.recipe)
    fields = {
        "lr": ("lr",),
        "augment": ("augment",),
        "schedule": ("schedule", "warmup_epochs"),
        "smoothing": ("label_smoothing",),
    }[factor]
    changes = {f: getattr(source.recipe, f) for f in fields}
    return Setup(name, setup.stem, dataclasses.replace(setup.recipe, **changes))


def all_setups(epochs: int, batch_size: int, long_epochs: int) -> list[Setup]:
    """The two endpoints, ``course + X`` and ``recipe - X`` for every factor X, and the course
    setup trained ``long_epochs`` epochs (does lr 0.001 fit the training set given more steps?)."""
    course, ours = endpoints(epochs, batch_size)
    added = [with_factor(course, f, ours, f"course + {f}") for f in FACTORS]
    removed = [with_factor(ours, f, course, f"recipe - {f}") for f in FACTORS]
    longer = Setup(f"course, {long_epochs} epochs", course.stem, dataclasses.replace(course.recipe, epochs=long_epochs))
    return [course, ours, *added, *removed, *([longer] if long_epochs else [])]


def load_data(args: argparse.Namespace) -> dict[str, Any]:
    """The training subset, a fixed slice of it to measure training accuracy on, and the test subset."""
    train = random_subset(catalog.open_split(DATASET, "data", "train+dev"), args.train_size, seed=0)
    test = random_subset(catalog.open_split(DATASET, "data", "test"), args.test_size, seed=1)
    train_probe = random_subset(train, args.train_eval_size, seed=2)
    return {"train": train, "train_probe": train_probe, "test": test}


def run(setup: Setup, seed: int, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Train ``setup`` with ``seed``; per-epoch training loss, train and test accuracy."""
    info, how = catalog.info(DATASET), setup.recipe
    mt.manual_seed(seed)
    model = resnet18(num_classes=info.num_classes, in_channels=info.channels, width=args.width, stem=setup.stem)
    train_loader = DataLoader(
        data["train"], batch_size=how.batch_size, shuffle=True, seed=seed, transform=how.train_transform(info)
    )

    def evaluation_loader(ds: Any) -> DataLoader:
        return DataLoader(ds, batch_size=500, transform=eval_transform(info))

    opt = how.build_optimizer(model)
    trainer = Trainer(
        model,
        opt,
        how.loss_fn(),
        scheduler=how.build_scheduler(opt, len(train_loader)),
        quiet=True,
        eval_loss_fn=nn.CrossEntropyLoss(),
        monitor={"train_eval": evaluation_loader(data["train_probe"]), "test": evaluation_loader(data["test"])},
    )
    start = time.perf_counter()
    result = trainer.fit(train_loader, epochs=how.epochs)
    history = result.history
    row = {
        "name": setup.name,
        "seed": seed,
        "status": result.status,
        "stem": setup.stem,
        "recipe": dataclasses.asdict(how),
        "train_loss": history.column("train_loss"),
        "train_acc_augmented": history.column("train_acc"),  # in train mode, on the augmented batches
        "train_acc": history.column("train_eval_acc"),  # eval mode, unaugmented training images
        "test_acc": history.column("test_acc"),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(
        f"{setup.name:20s} seed {seed}  train {100 * row['train_acc'][-1]:5.1f}%  "
        f"test {100 * row['test_acc'][-1]:5.1f}%  ({row['seconds']:.0f} s)",
        flush=True,
    )
    return row


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration, in table order: final train and test accuracy (%), mean and range over seeds."""
    rows: dict[str, dict[str, Any]] = {}
    for r in results:
        row = rows.setdefault(r["name"], {"name": r["name"], "train": [], "test": []})
        row["train"].append(100 * r["train_acc"][-1])
        row["test"].append(100 * r["test_acc"][-1])
    return sorted(rows.values(), key=lambda row: table_order(row["name"]))


def table_order(name: str) -> tuple[int, int]:
    """The course and its one-factor changes (the long run last), then the recipe and its ablations."""
    group = 0 if name.startswith("course") else 1
    if name in ("course", "recipe"):
        return group, -1
    factor = name.rsplit(maxsplit=1)[-1]
    return group, FACTORS.index(factor) if factor in FACTORS else len(FACTORS)


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table chapter 9 shows: final train and test accuracy, and their gap."""

    def cell(values: list[float]) -> str:
        if len(values) == 1:
            return f"{values[0]:.1f}"
        return f"{np.mean(values):.1f} ({min(values):.1f}-{max(values):.1f})"

    head = "| configuration | what differs | seeds | train acc. (%) | test acc. (%) | train - test |"
    lines = [head, "|---|---|---|---|---|---|"]
    for row in rows:
        gap = np.mean(row["train"]) - np.mean(row["test"])
        change = CHANGES.get(row["name"], "4x the epochs" if row["name"].startswith("course, ") else "")
        cells = [row["name"], change, str(len(row["test"])), cell(row["train"]), cell(row["test"]), f"{gap:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], results: list[dict[str, Any]], path: Path) -> None:
    """Left: final train and test accuracy of every configuration (mean; range over seeds).
    Right: train and test accuracy per epoch of the long course run and of the recipe (first seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.arange(len(rows))
    fig, (ax, curves) = plt.subplots(
        1, 2, figsize=(10, 0.36 * len(rows) + 1.3), dpi=80, gridspec_kw={"width_ratios": [1.6, 1]}
    )
    for offset, key, label, color in (
        (-0.2, "train", "train accuracy (eval mode, no augmentation)", "#9ecae1"),
        (0.2, "test", "test accuracy", "#3182bd"),
    ):
        means = np.array([np.mean(r[key]) for r in rows])
        spread = np.array([[means[k] - min(r[key]), max(r[key]) - means[k]] for k, r in enumerate(rows)]).T
        ax.barh(y + offset, means, height=0.4, xerr=spread, label=label, color=color, error_kw={"lw": 0.8})
        for yi, (m, r) in enumerate(zip(means, rows)):
            ax.text(max(r[key]) + 0.5, yi + offset, f"{m:.1f}", va="center", fontsize=7)
    ax.set_yticks(y, [f"{r['name']}" + (f" ({len(r['test'])} seeds)" if len(r["test"]) > 1 else "") for r in rows])
    ax.tick_params(axis="y", labelsize=8)
    ax.invert_yaxis()
    low = min(min(r["train"] + r["test"]) for r in rows)
    ax.set_xlim(max(0.0, 5 * np.floor(low / 5) - 5), 100)
    ax.set_xlabel("accuracy after the last epoch (%)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=7, frameon=False)
    ax.set_title("One factor at a time (error bars: range over seeds)", fontsize=9)

    first_seed = results[0]["seed"]
    shown = [
        r for r in results if r["seed"] == first_seed and (r["name"] in CURVES or r["name"].startswith("course, "))
    ]
    for r, color in zip(shown, ("#d95f02", "#1b9e77", "#7570b3")):
        epochs = np.arange(1, len(r["test_acc"]) + 1)
        curves.plot(epochs, 100 * np.array(r["train_acc"]), "--", color=color, label=f"{r['name']}: train")
        curves.plot(epochs, 100 * np.array(r["test_acc"]), "-", color=color, label=f"{r['name']}: test")
    curves.set_xlabel("epoch")
    curves.set_ylabel("accuracy (%)")
    curves.set_ylim(60, 100)
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7, loc="lower right")
    curves.set_title("Per epoch: fitting the training set vs generalizing", fontsize=9)
    fig.suptitle("ResNet18 (width 8) on a Fashion-MNIST subset, CPU", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def report(results: list[dict[str, Any]], out: Path) -> None:
    """Draw the figure and print the table."""
    rows = summarize(results)
    plot(rows, results, out / "ablation.png")
    print(table(rows))
    print(f"wrote {out / 'ablation.json'} and {out / 'ablation.png'}")


SCALE = ("train_size", "test_size", "train_eval_size", "epochs", "long_epochs", "batch_size", "width")


def previous_results(path: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The runs already in ``path`` (for ``--append``), when they were made at the same scale."""
    if not path.exists():
        return []
    saved = json.loads(path.read_text())
    differ = [k for k in SCALE if saved["settings"].get(k) != getattr(args, k)]
    if differ:
        raise SystemExit(f"{path} was made with other settings ({', '.join(differ)}); drop --append or change --out")
    return saved["results"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-size", type=int, default=6000, help="training images (default 6000)")
    p.add_argument("--test-size", type=int, default=2000, help="test images (default 2000)")
    p.add_argument("--train-eval-size", type=int, default=2000, help="training images to measure train accuracy on")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--long-epochs", type=int, default=32, help="epochs of the long course run (0: none)")
    p.add_argument("--batch-size", type=int, default=64, help="the course's 64 (default)")
    p.add_argument("--width", type=int, default=8, help="channels of ResNet18's first stage (default 8)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of every configuration (default 0 1)")
    p.add_argument("--extra-seeds", type=int, nargs="*", default=[2], help="more seeds for the two endpoints")
    p.add_argument("--only", nargs="*", help="run only these configurations (by name)")
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--append", action="store_true", help="keep the runs already in --out's ablation.json, add the rest")
    p.add_argument("--replot", action="store_true", help="only redraw the figure and table from --out's ablation.json")
    args = p.parse_args(argv)
    path = args.out / "ablation.json"
    if args.replot:
        report(json.loads(path.read_text())["results"], args.out)
        return

    data = load_data(args)
    setups = all_setups(args.epochs, args.batch_size, args.long_epochs)
    if args.only:
        setups = [s for s in setups if s.name in args.only]
    plan = [(s, seed) for seed in args.seeds for s in setups]
    plan += [(s, seed) for seed in args.extra_seeds for s in setups if s.name in ("course", "recipe")]
    results = previous_results(path, args) if args.append else []
    done = {(r["name"], r["seed"]) for r in results}
    plan = [(s, seed) for s, seed in plan if (s.name, seed) not in done]
    print(
        f"{len(plan)} runs ({len(done)} kept): ResNet18 width {args.width}, {len(data['train'])} training images, "
        f"{len(data['test'])} test images, {args.epochs} epochs, batch {args.batch_size}",
        flush=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("append", "replot")
    }
    for setup, seed in plan:
        results.append(run(setup, seed, data, args))
        summary = {"settings": settings, "dataset": DATASET, "results": results}
        path.write_text(json.dumps(summary, indent=1) + "\n")  # after every run: an interrupted ablation can --append
    report(results, args.out)


if __name__ == "__main__":
    main()
