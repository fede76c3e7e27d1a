#!/usr/bin/env python3
"""Train several classic networks under one recipe and compare them: size, cost, speed, accuracy.

    python3 examples/compare_models.py --dataset fashion-mnist --epochs 3 --width 0.25 --subset 6000
    python3 examples/compare_models.py --dataset cifar10 --data-dir data --device cuda --epochs 30
    python3 examples/compare_models.py --dataset fake --models lenet5,alexnet --width 0.125 --epochs 1

This answers the course's comparison questions (LeNet, AlexNet, VGG, GoogLeNet, ResNet; and
ResNet at several depths) with measurements rather than words.  Every network is the
library's own, in its CIFAR-sized form (32x32 inputs; Fashion-MNIST's 28x28 images are
zero-padded to 32x32), built from minitorch_nndl's primitives:

    lenet5  alexnet  vgg11  vgg16  googlenet  resnet10  resnet18  resnet34  resnet50  resnet101  resnet152

One recipe for all (no network gets its own tuning): Adam, lr 1e-3 for batch 128 (scaled
linearly with ``--batch-size``), cosine decay to 0 over the run, stepped every batch; no
weight decay, no augmentation, no label smoothing; inputs normalised with the data set's
per-channel mean and std.  Each network trains on the training split (``--subset N``
draws N of its images) and is evaluated on the test split after every epoch (nothing is
selected on the test set: the curve is reported, not used).  ``--width W`` multiplies every
channel count (and AlexNet's 4096-wide hidden layers) by W; LeNet5 stays as it is.

Measured per network: parameters, multiply-accumulates per image (``models.count_macs``:
convolutions and linear layers), training and evaluation images per second on the device,
peak memory (on the CPU the process's peak resident memory while that network ran, data set
and Python included; on a GPU the peak of CuPy's memory pool), test accuracy after each epoch,
and the wall time.  The folder (``--out``, default ``runs/compare-<dataset>``) receives
``results.md`` and ``results.csv`` (one row per network), ``epochs.csv`` (one row per epoch),
``accuracy.png`` (test accuracy per epoch) and ``tradeoff.png`` (accuracy against MACs and
training time); they are rewritten after every network, so an interrupted run keeps what it
finished.  An earlier comparison is never overwritten: a folder that holds one makes the
new run go to ``<folder>-2`` (``-3``, ...) unless ``--overwrite`` is given.  Every input is
checked before anything is written; a mistake is one ``error: ...`` line saying what to fix.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import minitorch_nndl as mt
from minitorch_nndl import backend, models, nn, optim
from minitorch_nndl.cli import (
    DataError,
    OneLineParser,
    UsageError,
    check_cuda,
    command_line,
    real_number,
    run_program,
    without_option,
)
from minitorch_nndl.cli import whole_number as at_least
from minitorch_nndl.data import DataLoader, DatasetInfo, catalog, random_subset, transforms
from minitorch_nndl.data.synthetic import write_fake_cifar10
from minitorch_nndl.train import Trainer

DEFAULT_MODELS = ("lenet5", "alexnet", "vgg11", "googlenet", "resnet18", "resnet34", "resnet50")
OUT_FILES = ("results.md", "results.csv", "epochs.csv", "accuracy.png", "tradeoff.png")
BASE_LR, BASE_BATCH = 1e-3, 128


# ----------------------------------------------------------------------------- the networks
def _scaled(n: int, width: float) -> int:
    return max(1, round(n * width))


def _vgg(name: str) -> Callable[[int, int, float], nn.Module]:
    def build(num_classes: int, in_channels: int, width: float) -> nn.Module:
        cfg = [v if v == "M" else _scaled(int(v), width) for v in models.vgg.CFGS[name]]
        return models.VGG(cfg, num_classes=num_classes, in_channels=in_channels)

    return build


def _resnet(name: str) -> Callable[[int, int, float], nn.Module]:
    def build(num_classes: int, in_channels: int, width: float) -> nn.Module:
        constructor = getattr(models, name)
        return constructor(num_classes, stem="cifar", in_channels=in_channels, width=_scaled(64, width))

    return build


#: name -> build(num_classes, in_channels, width multiplier), every one for 32x32 inputs
BUILDERS: dict[str, Callable[[int, int, float], nn.Module]] = {
    "lenet5": lambda n, c, w: models.LeNet5(num_classes=n, in_channels=c),
    "alexnet": lambda n, c, w: models.alexnet(
        n, stem="cifar", in_channels=c, width=_scaled(64, w), hidden=_scaled(4096, w)
    ),
    "vgg11": _vgg("vgg11"),
    "vgg16": _vgg("vgg16"),
    "googlenet": lambda n, c, w: models.googlenet(n, stem="cifar", in_channels=c, width=_scaled(64, w)),
    **{name: _resnet(name) for name in ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")},
}


def parse_models(text: str) -> list[str]:
    names = [n.strip().lower() for n in text.replace(" ", ",").split(",") if n.strip()]
    unknown = [n for n in names if n not in BUILDERS]
    if unknown or not names:
        raise UsageError(
            f"--models: unknown network(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(BUILDERS)}"
        )
    if len(set(names)) != len(names):
        raise UsageError(f"--models: a network is named twice in {text!r}; name each once")
    return names


# ----------------------------------------------------------------------------- the data
@dataclass
class Data:
    train: Any
    test: Any
    info: DatasetInfo  # classes, mean/std, image size and channels
    source: str
    tmp: Any = None  # keeps the temporary folder of --dataset fake alive


def load_data(args: argparse.Namespace) -> Data:
    """The training and test splits, ``--subset``/``--test-subset`` applied; DataError with the data module's line."""
    tmp = None
    name, root = args.dataset, args.data_dir or "data"
    if name == "fake":  # a synthetic CIFAR-10 look-alike in a temporary folder
        tmp = tempfile.TemporaryDirectory(prefix="compare-fake-")
        name, root = "cifar10", tmp.name
        write_fake_cifar10(root, n_per_batch=max(10, args.subset or 200), archive=False)
    try:
        train = catalog.open_split(name, root, "train+dev", download=args.download)
        test = catalog.open_split(name, root, "test")
    except (OSError, ValueError) as exc:  # FileNotFoundError, DownloadError, CIFAR10FormatError, IDXFormatError
        raise DataError(str(exc)) from None
    source = getattr(test, "source_note", None) or f"{name} from {root}"
    return Data(
        train=random_subset(train, args.subset, seed=args.seed),
        test=random_subset(test, args.test_subset, seed=2),
        info=catalog.info(name),
        source="a synthetic CIFAR-10 look-alike" if tmp is not None else source,
        tmp=tmp,
    )


def input_transform(data: Data) -> transforms.Compose:
    steps: list[Any] = []
    if data.info.image_size == 28:  # a 32x32 "random" crop of a 28x28 image padded by 2 has one position: a plain pad
        steps.append(transforms.RandomCrop(32, padding=2))
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(data.info.mean, data.info.std)])


# ----------------------------------------------------------------------------- measuring
class PeakMemory:
    """Peak memory while one network runs: the process's peak RSS on the CPU (Linux: VmHWM, reset
    through /proc/self/clear_refs), the peak of CuPy's memory pool on a GPU.  None where unknown."""

    def __init__(self, device: str) -> None:
        self.device = device

    def reset(self) -> None:
        if self.device == "cpu":
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass
        else:
            pool = backend.xp_for(self.device).get_default_memory_pool()
            pool.free_all_blocks()

    def peak_mb(self) -> float | None:
        if self.device != "cpu":
            return backend.xp_for(self.device).get_default_memory_pool().total_bytes() / 2**20
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


@dataclass
class Result:
    name: str
    params: int
    macs: int
    test_acc: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    train_images: int = 0
    eval_images: int = 0
    peak_mb: float | None = None
    wall_seconds: float = 0.0
    status: str = "completed"

    @property
    def train_rate(self) -> float:
        return self.train_images / self.train_seconds if self.train_seconds else math.nan

    @property
    def eval_rate(self) -> float:
        return self.eval_images / self.eval_seconds if self.eval_seconds else math.nan

    @property
    def final_acc(self) -> float:
        return self.test_acc[-1] if self.test_acc else math.nan


def warm_up(args: argparse.Namespace, data: Data) -> None:
    """One untimed forward and backward pass of a small network, so the first network measured does not pay
    the process's one-time start-up costs (library imports, first BLAS calls) in its images per second."""
    model = models.LeNet5(num_classes=data.info.num_classes, in_channels=data.info.channels, device=args.device)
    x, y = next(
        iter(DataLoader(data.train, min(8, len(data.train)), transform=input_transform(data), device=args.device))
    )
    nn.CrossEntropyLoss()(model(x), y).backward()
    backend.synchronize(args.device)


def train_one(name: str, args: argparse.Namespace, data: Data) -> Result:
    """Build, measure and train one network for ``args.epochs`` epochs, evaluating on test after each."""
    t_start = time.perf_counter()
    memory = PeakMemory(args.device)
    memory.reset()
    mt.manual_seed(args.seed)
    model = BUILDERS[name](data.info.num_classes, data.info.channels, args.width)
    result = Result(name, models.count_parameters(model), models.count_macs(model, (data.info.channels, 32, 32)))
    print(f"{name}: {_fmt_count(result.params)} parameters, {_fmt_count(result.macs)} MACs per image", flush=True)
    model.to(args.device)
    transform = input_transform(data)
    train_loader = DataLoader(
        data.train, args.batch_size, shuffle=True, seed=args.seed, transform=transform, device=args.device
    )
    test_loader = DataLoader(data.test, args.eval_batch_size, transform=transform, device=args.device)
    optimizer = optim.Adam(model.parameters(), lr=BASE_LR * args.batch_size / BASE_BATCH)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, args.epochs * len(train_loader)))
    trainer = Trainer(
        model, optimizer, nn.CrossEntropyLoss(), scheduler=scheduler, device=args.device, quiet=True
    )  # fmt: skip
    for epoch in range(1, args.epochs + 1):
        fit = trainer.fit(train_loader, epochs=epoch, log_every=max(1, len(train_loader)))
        if not fit.ok:  # "nan": this network diverged (the others still run); "interrupted": Ctrl-C
            result.status = "diverged (NaN loss)" if fit.status == "nan" else fit.status
            break
        row = trainer.history.epochs[-1]
        result.train_seconds += row["seconds"]
        result.train_images += len(data.train)
        t0 = time.perf_counter()
        evaluation = trainer.evaluate(test_loader)
        backend.synchronize(args.device)
        result.eval_seconds += time.perf_counter() - t0
        result.eval_images += len(data.test)
        result.test_acc.append(float(evaluation["acc"]))
        print(f"          test acc {100 * result.test_acc[-1]:6.2f}% ({name})", flush=True)
    result.peak_mb = memory.peak_mb()
    result.wall_seconds = time.perf_counter() - t_start
    return result


# ----------------------------------------------------------------------------- reporting
COLUMNS = (
    "model",
    "params",
    "macs_per_image",
    "train_images_per_s",
    "eval_images_per_s",
    "peak_memory_mb",
    "final_test_acc",
    "train_seconds",
    "wall_seconds",
    "status",
)


def _fmt_count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(int(n))


def _fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def markdown_table(results: list[Result], epochs: int) -> str:
    head = ["network", "params", "MACs/image", "train img/s", "eval img/s", "peak memory (MB)"]
    head += [f"test acc ep {e}" for e in range(1, epochs + 1)] + ["train time (s)", "wall time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        accs = [f"{100 * a:.2f}%" for a in r.test_acc] + [r.status if r.status != "completed" else "-"] * (
            epochs - len(r.test_acc)
        )
        cells = [r.name, _fmt_count(r.params), _fmt_count(r.macs), _fmt(r.train_rate), _fmt(r.eval_rate)]
        cells += [_fmt(r.peak_mb, 0), *accs, _fmt(r.train_seconds, 0), _fmt(r.wall_seconds, 0)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(out: Path, results: list[Result], args: argparse.Namespace, data: Data, command: str) -> None:
    header = (
        f"# Network comparison on {data.source}\n\n"
        f"Command: `{command}`\n\n"
        f"{len(data.train)} training and {len(data.test)} test images, {args.epochs} epoch(s), width x{args.width}, "
        f"batch {args.batch_size}, Adam lr {BASE_LR * args.batch_size / BASE_BATCH:g} with cosine decay, "
        f"device {args.device} ({_machine(args.device)}).\n\n"
    )
    (out / "results.md").write_text(header + markdown_table(results, args.epochs), encoding="utf-8")
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in results:
            w.writerow(
                [r.name, r.params, r.macs, f"{r.train_rate:.3f}", f"{r.eval_rate:.3f}",
                 "" if r.peak_mb is None else f"{r.peak_mb:.1f}", f"{r.final_acc:.4f}",
                 f"{r.train_seconds:.1f}", f"{r.wall_seconds:.1f}", r.status]
            )  # fmt: skip
    with open(out / "epochs.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["model", "epoch", "test_acc"])
        for r in results:
            for e, a in enumerate(r.test_acc, start=1):
                w.writerow([r.name, e, f"{a:.4f}"])
    plot(out, results)


def _machine(device: str) -> str:
    if device == "cpu":
        return f"{os.cpu_count()} CPU cores"
    return "GPU"


def plot(out: Path, results: list[Result]) -> None:
    import matplotlib  # noqa: PLC0415  (only the report needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        if r.test_acc:
            ax.plot(range(1, len(r.test_acc) + 1), [100 * a for a in r.test_acc], marker="o", label=r.name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    if any(r.test_acc for r in results):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    done = [r for r in results if r.test_acc]
    for ax, key, label in ((axes[0], "macs", "MACs per image"), (axes[1], "train_seconds", "training time (s)")):
        for r in done:
            x = getattr(r, key)
            ax.scatter([x], [100 * r.final_acc])
            ax.annotate(r.name, (x, 100 * r.final_acc), fontsize=8, xytext=(3, 3), textcoords="offset points")
        if done and min(getattr(r, key) for r in done) > 0:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("final test accuracy (%)")
    fig.tight_layout()
    fig.savefig(out / "tradeoff.png", dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- the program
def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        description="Train several networks under one recipe and compare size, cost, speed and accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a = p.add_argument
    a("--models", default=",".join(DEFAULT_MODELS), help=f"comma-separated, from: {', '.join(BUILDERS)}")
    a("--dataset", choices=["cifar10", "fashion-mnist", "fake"], default="fashion-mnist", help="which data set")
    a("--data-dir", default=None, help="folder with the data (default data/; Fashion-MNIST also from Debian's copy)")
    a("--download", action="store_true", help="download the data set into --data-dir first (checked by MD5)")
    a("--epochs", type=at_least(1), default=3, help="epochs per network")
    a("--width", type=real_number(0.0, low_ok=False, note=" (1 = the published widths)"), default=1.0,
      help="channel multiplier for every network but LeNet5")  # fmt: skip
    a("--subset", type=at_least(1), default=None, help="train on N random training images (default: all)")
    a("--test-subset", type=at_least(1), default=None, help="evaluate on N random test images (default: all)")
    a("--batch-size", type=at_least(1), default=128, help="training batch size (the lr scales with it)")
    a("--eval-batch-size", type=at_least(1), default=256, help="evaluation batch size")
    a("--device", default="cpu", help="cpu, cuda or cuda:N")
    a("--seed", type=at_least(0), default=0, help="seed for weights, shuffling and the --subset draw")
    a("--out", default=None, help="output folder (default runs/compare-<dataset>)")
    a("--overwrite", action="store_true", help="replace an earlier comparison in --out instead of using --out-2")
    return p


def check_args(args: argparse.Namespace, argv: list[str]) -> None:
    """What the parser cannot check: the device exists and can be used."""
    on_cpu = command_line(__file__, *without_option(argv, "--device"), "--device", "cpu")
    try:
        check_cuda(args.device, f"or run on the CPU: {on_cpu}")
        args.device = backend.normalize_device(args.device)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--device: {exc}") from None
    except RuntimeError as exc:  # CUDA usable, but not this device (cuda:7 on a one-GPU machine)
        raise DataError(f"--device {args.device}: {exc}\nor run on the CPU: {on_cpu}") from None


def choose_out(args: argparse.Namespace) -> Path:
    """``--out`` when it holds no earlier comparison (or with --overwrite), else the first free ``-2``, ``-3``..."""
    out = Path(args.out or f"runs/compare-{args.dataset}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder: name a folder (it is created if missing)")

    def holds_results(folder: Path) -> bool:
        return any((folder / f).exists() for f in OUT_FILES)

    if args.overwrite or not holds_results(out):
        return out
    n = 2
    while holds_results(out.with_name(f"{out.name}-{n}")) or out.with_name(f"{out.name}-{n}").is_file():
        n += 1
    return out.with_name(f"{out.name}-{n}")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    names = parse_models(args.models)
    check_args(args, argv)
    command = command_line(__file__, *argv)
    data = load_data(args)
    out = choose_out(args)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"comparing {', '.join(names)} on {data.source}: {len(data.train)} train / {len(data.test)} test images, "
        f"{args.epochs} epoch(s), width x{args.width}, device {args.device}; results in {out}/",
        flush=True,
    )
    results: list[Result] = []
    try:
        warm_up(args, data)
        for name in names:
            results.append(train_one(name, args, data))
            write_report(out, results, args, data, command)
            if results[-1].status == "interrupted":  # the Trainer caught the Ctrl-C and stopped cleanly
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        print(f"\ninterrupted (Ctrl-C): {out}/results.md holds the {len(results)} network(s) finished", file=sys.stderr)
        return 130
    print(markdown_table(results, args.epochs), end="")
    print(f"wrote {', '.join(OUT_FILES)} to {out}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 done, 1 data/device error, 2 usage error, 130 Ctrl-C; errors are one ``error:`` line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_program(build_parser(), argv, lambda args: run(args, argv))


if __name__ == "__main__":
    sys.exit(main())
