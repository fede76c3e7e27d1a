#!/usr/bin/env python3
"""Train a ResNet, built from minitorch_nndl's own primitives, on CIFAR-10 (or Fashion-MNIST).

    python3 examples/resnet18_cifar10.py --download                 # CPU; downloads CIFAR-10 first
    python3 examples/resnet18_cifar10.py --device cuda --download   # the real thing (needs CuPy + a GPU)
    python3 examples/resnet18_cifar10.py --recipe seed              # the original course setup, for comparison
    python3 examples/resnet18_cifar10.py --dataset fashion-mnist --arch resnet10 --width 16 --epochs 3 \
        --final --monitor-test                                      # small, offline, CPU-friendly

No data set yet?  ``minitorch_nndl.data.synthetic.write_fake_cifar10`` writes a small
CIFAR-10 look-alike in the official format, which tries the whole pipeline in seconds::

    python3 -c "from minitorch_nndl.data.synthetic import write_fake_cifar10; write_fake_cifar10('fake-cifar')"
    python3 examples/resnet18_cifar10.py --data-dir fake-cifar --arch resnet10 --width 8 --epochs 2

The default recipe targets >= 95% test accuracy with ResNet18 on CIFAR-10 after the
full 200 epochs:

* CIFAR stem (3x3 stride-1 convolution, no max-pool) -- the ImageNet stem shrinks a
  32x32 image to 8x8 before the first residual stage and throws away most of the detail;
* SGD with Nesterov momentum 0.9, lr 0.1 for batch 128 (scaled linearly with the batch
  size), weight decay 5e-4 on weights only (not on BatchNorm parameters or biases);
* 5 warm-up epochs then cosine decay to 0, stepped every batch;
* label smoothing 0.1;
* random crop (4-pixel zero padding) + horizontal flip, optionally cutout (``--cutout 16``).

``--recipe seed`` reproduces the course experiment this project grew from (73.6% test
accuracy): ImageNet stem, SGD lr 0.001 with momentum 0.9 (we assume plain momentum: no
Nesterov, no weight decay), no augmentation, batch 64, 30 epochs, constant learning
rate, no label smoothing.  Inputs are normalized with the data set's per-channel mean
and std in both recipes, so the comparison isolates the choices above.

Splits: without ``--final`` the model trains on ``train`` (40k CIFAR images) and the
best epoch is chosen on ``dev`` (the 10k images of data_batch_5); with ``--final`` it
trains on ``train+dev`` (all 50k) and keeps the last epoch.  Either way the chosen
model is evaluated once on ``test`` at the end.

The run folder (``--out``, default ``runs/<dataset>-<arch>-<recipe>``) receives
``last.npz``/``best.npz`` checkpoints, ``config.json``, ``history.json``/``.csv``,
``curves.png``, ``lr.png``, ``confusion_matrix.png``, ``per_class_accuracy.png``,
``predictions.png`` and ``test_summary.json``.  An earlier run is never overwritten:
when the folder already holds one, the new run goes to ``<folder>-2`` (``-3``, ...)
unless ``--overwrite`` is given.  Every input (options, data, checkpoint) is checked
before the folder is created, so a mistake leaves nothing behind.

Ctrl-C saves ``last.npz``; ``--resume RUN/last.npz`` continues with the run's saved
settings (options given with ``--resume`` override them and the banner names each
change; ``--epochs N`` extends the run and rebuilds the learning-rate schedule for N
epochs).  ``--eval-only CHECKPOINT`` evaluates a checkpoint into ``RUN/eval-<name>/``,
leaving the run's own ``test_summary.json`` alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

import minitorch_nndl as mt
from minitorch_nndl import nn, optim
from minitorch_nndl.data import CIFAR10, DataLoader, FashionMNIST, Subset, transforms
from minitorch_nndl.train import (
    Accuracy,
    ConfusionMatrix,
    PerClassAccuracy,
    TopKAccuracy,
    Trainer,
    load_checkpoint,
    restore_model,
)
from minitorch_nndl.train.checkpoint import CheckpointError

ARCHS = ("resnet10", "resnet18", "resnet34", "resnet50")  # constructors in minitorch_nndl.models
FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FMNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: every file a run writes into its folder (what --overwrite deletes first; nothing else is touched)
RUN_FILES = (
    "last.npz",
    "best.npz",
    "config.json",
    "history.json",
    "history.csv",
    "history_steps.csv",
    "curves.png",
    "lr.png",
    "confusion_matrix.png",
    "per_class_accuracy.png",
    "predictions.png",
    "test_summary.json",
)
#: settings that say *how* to run, not *what* the run is: a resumed run or an evaluation may change them
RUNTIME_OPTIONS = frozenset(
    {"device", "data_dir", "download", "quiet", "num_workers", "prefetch", "log_every", "eval_batch_size"}
)
#: what --resume accepts besides the runtime options (epochs and lr rebuild the learning-rate schedule)
RESUME_OPTIONS = RUNTIME_OPTIONS | {"resume", "epochs", "lr", "monitor_test"}
#: what --eval-only accepts besides the runtime options
EVAL_OPTIONS = RUNTIME_OPTIONS | {"eval_only", "out", "overwrite", "subset"}
#: fixed seeds for the --subset draws of dev and test: every quick run evaluates on the same images
SUBSET_SEEDS = {"dev": 1, "test": 2}


class UsageError(Exception):
    """An option, or a combination of options, that cannot work; the message says what to change (exit 2)."""


class DataError(Exception):
    """The data, a checkpoint or the device cannot be used; the message says why and how to fix it (exit 1)."""


# ----------------------------------------------------------------------------- the model
def build_model(cfg: dict[str, Any]) -> nn.Module:
    """The network a config describes (``arch``, ``width``, ``stem``, ``in_channels``, ``num_classes``)."""
    from minitorch_nndl import models

    kw = {"num_classes": cfg["num_classes"], "stem": cfg["stem"], "in_channels": cfg["in_channels"]}
    return getattr(models, cfg["arch"])(width=int(cfg.get("width", 64)), **kw)


# ----------------------------------------------------------------------------- options
class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``error: ...`` on stderr, exit status 2, no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def _whole_number(minimum: int, note: str = "") -> Callable[[str], int]:
    """An argparse ``type=`` accepting integers >= ``minimum``; ``note`` is added to the complaint."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}{note}")
        return value

    return parse


def _real_number(low: float, high: float = math.inf, low_ok: bool = True, note: str = "") -> Callable[[str], float]:
    """An argparse ``type=`` accepting finite numbers in ``[low, high)`` (``(low, high)`` unless ``low_ok``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (value == low and not low_ok) or value >= high:
            if high == math.inf:
                bound = f"{low:g} or more" if low_ok else f"more than {low:g}"
            else:
                bound = f"at least {low:g} and below {high:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}{note}")
        return value

    return parse


EPILOG = """\
examples:
  python3 examples/resnet18_cifar10.py --download --device cuda      the full recipe on a GPU
  python3 examples/resnet18_cifar10.py --download --arch resnet10 --width 16 --epochs 3
                                                                     a small network on the CPU
  python3 examples/resnet18_cifar10.py --resume runs/cifar10-resnet18-default/last.npz
                                                                     continue a stopped run

no data set yet? try the pipeline in seconds on a synthetic CIFAR-10 look-alike:
  python3 -c "from minitorch_nndl.data.synthetic import write_fake_cifar10; write_fake_cifar10('fake-cifar')"
  python3 examples/resnet18_cifar10.py --data-dir fake-cifar --arch resnet10 --width 8 --epochs 2

A new run never overwrites an earlier one: when --out already holds a run, it goes to
<out>-2 (-3, ...) unless --overwrite is given.  --resume continues with the run's saved
settings; options given with it (runtime ones, --epochs, --lr, --monitor-test) override them.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line.  Every default is ``None`` here, so that :func:`given_options` can tell
    what the user typed; :func:`resolve_config` fills in the defaults the help texts state."""
    p = OneLineParser(
        prog="resnet18_cifar10.py",
        description=(
            "Train a ResNet from minitorch_nndl primitives on CIFAR-10 or Fashion-MNIST.\n"
            "The default recipe targets >= 95% CIFAR-10 test accuracy with ResNet18, which needs the\n"
            "full 200 epochs (a GPU run: --device cuda); shorter runs stop lower.\n"
            "--recipe seed reproduces the original 73.6% setup."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    whole, real = _whole_number, _real_number
    a("--device", choices=["cpu", "cuda"], help="where to train (default cpu)")
    a("--data-dir", metavar="FOLDER", help="folder holding (or receiving) the data set (default ./data)")
    a("--download", action="store_true", default=None, help="download the data set into --data-dir if it is missing")
    a("--dataset", choices=["cifar10", "fashion-mnist"], help="which data set (default cifar10)")
    a("--recipe", choices=["default", "seed"], help="defaults for every unset option below (default: default)")
    a("--arch", choices=list(ARCHS), help="default resnet18 (resnet10 = one block per stage)")
    a("--width", metavar="N", type=whole(1), help="base width of the ResNet (default 64 = the standard network)")
    a("--stem", choices=["cifar", "imagenet"], help="default cifar (seed recipe: imagenet)")
    a("--epochs", metavar="N", type=whole(0), help="default 200 for CIFAR-10, 15 for Fashion-MNIST (seed recipe: 30)")
    a("--batch-size", metavar="N", type=whole(1), help="default 128 (seed recipe: 64)")
    a("--optimizer", choices=["sgd", "adam"], help="default sgd")
    a(
        "--lr",
        metavar="LR",
        type=real(0, low_ok=False),
        help="default 0.1 * batch/128 for SGD, 1e-3 for Adam (seed: 0.001)",
    )
    a("--momentum", metavar="M", type=real(0, 1.0 + 1e-12), help="SGD momentum, default 0.9")
    a("--weight-decay", metavar="WD", type=real(0), help="default 5e-4, not applied to BN/bias (seed: 0)")
    a("--schedule", choices=["onecycle", "cosine", "step", "none"], help="default cosine (seed: none)")
    a(
        "--warmup-epochs",
        metavar="E",
        type=real(0),
        help="linear warm-up before cosine/step, at most --epochs; default 5 (epochs/5, at most 2, below 20 epochs)",
    )
    a("--label-smoothing", metavar="S", type=real(0, 1), help="default 0.1 (seed: 0)")
    a("--no-augment", action="store_true", default=None, help="no random crop/flip (the seed recipe never augments)")
    a(
        "--cutout",
        metavar="PIXELS",
        type=whole(0, " (0 = no cutout)"),
        help="cutout square size in pixels (default 0 = off)",
    )
    a(
        "--subset",
        metavar="N",
        type=whole(1, " (leave --subset out to use every image)"),
        help="a quick run: N random training images, and at most N dev and N test images",
    )
    a(
        "--final",
        action="store_true",
        default=None,
        help="train on train+dev and keep the last epoch (else select on dev)",
    )
    a("--monitor-test", action="store_true", default=None, help="also evaluate the test set after every epoch")
    a("--seed", metavar="N", type=whole(0), help="seeds weights, shuffling and augmentation (default 0)")
    a(
        "--out",
        metavar="FOLDER",
        help="run folder (default runs/<dataset>-<arch>-<recipe>; -2, -3, ... when it holds a run)",
    )
    a("--overwrite", action="store_true", default=None, help="replace the run in --out instead of using a new folder")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its last.npz, with its saved settings")
    how.add_argument(
        "--eval-only", metavar="CHECKPOINT", help="evaluate a checkpoint on the test set (into RUN/eval-<name>/)"
    )
    a("--quiet", action="store_true", default=None, help="no progress bar (one line per epoch)")
    a("--num-workers", metavar="N", type=whole(0), help="background threads preparing batches (default 1)")
    a("--prefetch", metavar="N", type=whole(0), help="batches prepared ahead (default 2)")
    a(
        "--log-every",
        metavar="N",
        type=whole(1),
        help="steps between progress-bar updates, each a host sync (default 50)",
    )
    a("--eval-batch-size", type=whole(1), help=argparse.SUPPRESS)
    return p


def given_options(args: argparse.Namespace) -> set[str]:
    """The options typed on the command line (every parser default is None)."""
    return {name for name, value in vars(args).items() if value is not None}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of a new run: every unset option filled in from the recipe and the data set."""
    seed_recipe = args.recipe == "seed"
    fmnist = args.dataset == "fashion-mnist"

    def pick(value: Any, default: Any, seed_value: Any = None) -> Any:
        if value is not None:
            return value
        return seed_value if (seed_recipe and seed_value is not None) else default

    cfg: dict[str, Any] = {
        "dataset": pick(args.dataset, "cifar10"),
        "recipe": pick(args.recipe, "default"),
        "arch": pick(args.arch, "resnet18"),
        "width": pick(args.width, 64),
        "stem": pick(args.stem, "cifar", "imagenet"),
        "epochs": pick(args.epochs, 15 if fmnist else 200, 30),
        "batch_size": pick(args.batch_size, 128, 64),
        "optimizer": pick(args.optimizer, "sgd"),
        "momentum": pick(args.momentum, 0.9),
        "nesterov": not seed_recipe,
        "weight_decay": pick(args.weight_decay, 5e-4, 0.0),
        "schedule": pick(args.schedule, "cosine", "none"),
        "label_smoothing": pick(args.label_smoothing, 0.1, 0.0),
        "augment": not (args.no_augment or seed_recipe),
        "cutout": pick(args.cutout, 0),
        "subset": args.subset,
        "final": bool(args.final),
        "monitor_test": bool(args.monitor_test),
        "seed": pick(args.seed, 0),
        **runtime_settings(args, {}),
    }
    if args.lr is not None:
        cfg["lr"] = args.lr
    elif seed_recipe:
        cfg["lr"] = 0.001
    elif cfg["optimizer"] == "adam":
        cfg["lr"] = 1e-3
    else:
        cfg["lr"] = 0.1 * cfg["batch_size"] / 128  # linear scaling rule
    warm = 5.0 if cfg["epochs"] >= 20 else min(2.0, cfg["epochs"] / 5)
    cfg["warmup_epochs"] = pick(args.warmup_epochs, warm, 0.0)
    cfg["out"] = args.out or f"runs/{cfg['dataset']}-{cfg['arch']}-{cfg['recipe']}"
    check_config(cfg)
    return cfg


def runtime_settings(args: argparse.Namespace, saved: dict[str, Any]) -> dict[str, Any]:
    """Device, data folder and loader settings: from the command line, else ``saved``, else the defaults."""
    defaults = {
        "device": "cpu",
        "data_dir": "./data",
        "quiet": False,
        "num_workers": 1,
        "prefetch": 2,
        "log_every": 50,
        "eval_batch_size": 256,
    }
    out = {}
    for key, default in defaults.items():
        value = getattr(args, key)
        out[key] = value if value is not None else saved.get(key, default)
    return out


def check_config(cfg: dict[str, Any]) -> None:
    """What no single option can check: the warm-up must fit into the run."""
    if cfg["schedule"] in ("cosine", "step") and cfg["warmup_epochs"] > cfg["epochs"]:
        raise UsageError(
            f"--warmup-epochs {cfg['warmup_epochs']:g} is longer than the run ({cfg['epochs']} epochs): "
            f"give at most --warmup-epochs {cfg['epochs']}, or more --epochs"
        )


def _describe_value(cfg: dict[str, Any], key: str) -> str:
    value = cfg.get(key)
    return f"{_flag(key)} {value:g}" if isinstance(value, float) else f"{_flag(key)} {value}"


def resumed_config(
    args: argparse.Namespace, ck: dict[str, Any], ck_path: Path
) -> tuple[dict[str, Any], list[str], bool]:
    """The settings of a resumed run: the checkpoint's, with the options given on this command line.

    Returns ``(cfg, changes, rebuild_schedule)``: ``changes`` names every setting the
    command line changed (for the banner), ``rebuild_schedule`` is True when ``--epochs``
    or ``--lr`` changed, so that the learning-rate schedule must be built for the new values.
    """
    saved = ck["config"]
    given = given_options(args)
    refused = sorted(given - RESUME_OPTIONS)
    if refused:
        was = ", ".join(_describe_value(saved, k) for k in refused if k in saved)
        raise UsageError(
            f"{', '.join(_flag(k) for k in refused)} cannot be changed when resuming: a resumed run keeps the "
            f"settings it was started with{f' ({was})' if was else ''} and continues in {ck_path.parent}. "
            "Drop the option, or start a new run without --resume"
        )
    cfg = {**saved, **runtime_settings(args, saved)}
    for key in ("epochs", "lr"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.monitor_test:
        cfg["monitor_test"] = True
    cfg["out"] = str(ck_path.parent)
    changes = [
        f"{key} {saved.get(key)!r} -> {cfg[key]!r}"
        for key in sorted(given & (RESUME_OPTIONS - {"resume", "download"}))
        if saved.get(key) != cfg[key]
    ]
    done = int(ck.get("trainer", {}).get("epoch", 0))
    check_latest(ck, ck_path)
    if cfg["epochs"] < done:
        raise UsageError(
            f"--epochs {cfg['epochs']} is fewer than the {done} epochs this run has already trained: give "
            f"--epochs {done + 1} or more to train longer, or evaluate it with --eval-only {ck_path}"
        )
    if cfg["epochs"] == done:
        more = f"--epochs {done + 1} or more" if args.epochs is None else f"more than --epochs {done}"
        raise UsageError(
            f"the run in {ck_path.parent} has already trained all its {done} epochs: to train longer, resume with "
            f"{more}; to evaluate it, use --eval-only {ck_path}"
        )
    if cfg["schedule"] in ("cosine", "step") and cfg["warmup_epochs"] > cfg["epochs"]:
        raise UsageError(
            f"--epochs {cfg['epochs']} is shorter than this run's {cfg['warmup_epochs']:g} warm-up epochs: "
            f"resume with --epochs {math.ceil(cfg['warmup_epochs'])} or more"
        )
    rebuild = cfg["epochs"] != saved.get("epochs") or cfg["lr"] != saved.get("lr")
    return cfg, changes, rebuild


def check_latest(ck: dict[str, Any], ck_path: Path) -> None:
    """Refuse to resume from a checkpoint older than the run's last.npz: it would replace the later epochs."""
    last = ck_path.parent / "last.npz"
    if not last.is_file() or last.resolve() == ck_path.resolve():
        return
    try:
        later = load_checkpoint(last).get("trainer", {})
    except (OSError, CheckpointError):
        return  # a damaged last.npz holds nothing to protect
    step = int(ck.get("trainer", {}).get("global_step", 0))
    if int(later.get("global_step", 0)) > step:
        raise UsageError(
            f"{ck_path} is from step {step}, but {last} is further (step {later.get('global_step')}, "
            f"{later.get('epoch')} epochs): resuming from {ck_path.name} would replace the later epochs. "
            f"Resume from {last}, or evaluate {ck_path.name} with --eval-only {ck_path}"
        )


def eval_config(args: argparse.Namespace, ck: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``--eval-only``: the checkpoint's, with runtime options and ``--subset`` from the command
    line."""
    refused = sorted(given_options(args) - EVAL_OPTIONS)
    if refused:
        raise UsageError(
            f"{', '.join(_flag(k) for k in refused)} has no effect with --eval-only, which evaluates the checkpoint "
            "with the settings it was trained with: drop it"
        )
    cfg = {**ck["config"], **runtime_settings(args, ck["config"])}
    if args.subset is not None:
        cfg["subset"] = args.subset
    return cfg


def read_run_checkpoint(path_text: str, option: str) -> dict[str, Any]:
    """Load a checkpoint named by ``--resume``/``--eval-only``; it must carry a run config."""
    path = Path(path_text)
    if not path.is_file():
        what = "is a folder; name the last.npz or best.npz inside it" if path.is_dir() else "does not exist"
        raise UsageError(f"{option} {path_text}: the checkpoint {what}")
    try:
        ck = load_checkpoint(path)
    except (OSError, CheckpointError) as exc:
        raise DataError(str(exc)) from None
    if not isinstance(ck.get("config"), dict) or "arch" not in ck["config"]:
        raise DataError(f"{path} holds no run settings (config): it was not written by resnet18_cifar10.py")
    return ck


def dataset_info(name: str) -> dict[str, Any]:
    if name == "cifar10":
        return {"mean": list(CIFAR10.MEAN), "std": list(CIFAR10.STD), "classes": list(CIFAR10.CLASSES), "size": 32}
    return {
        "mean": list(FashionMNIST.MEAN),
        "std": list(FashionMNIST.STD),
        "classes": list(FashionMNIST.CLASSES),
        "size": 28,
    }


# ----------------------------------------------------------------------------- printed commands
_ARGV: list[str] = []


def _script() -> str:
    """This program's path as the user can type it: relative to the working folder when it is below it."""
    relative = os.path.relpath(Path(__file__).resolve())
    return relative if not relative.startswith("..") else str(Path(__file__).resolve())


def _command(*args: str) -> str:
    return shlex.join(["python3", _script(), *args])


def _without(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--opt V`` or ``--opt=V``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


# ----------------------------------------------------------------------------- data
def load_split(cfg: dict[str, Any], split: str, download: bool = False) -> Any:
    """One split of the configured data set; raises OSError/ValueError with a one-line message."""
    if cfg["dataset"] == "cifar10":
        return CIFAR10(cfg["data_dir"], split=split, download=download)
    if download and FashionMNIST.find_root(cfg["data_dir"], system_copy=True) is None:
        from minitorch_nndl.data import download_url

        target = Path(cfg["data_dir"]) / "fashion-mnist"
        for f in FMNIST_FILES:
            download_url(FMNIST_URL + f + ".gz", target / f"{f}.gz")
    return FashionMNIST(cfg["data_dir"], split=split, fallback=True)


def take(ds: Any, n: int | None, seed: int) -> Any:
    """``n`` random samples of ``ds`` in their original order (all of them when ``n`` is None or too big)."""
    if n is None or n >= len(ds):
        return ds
    idx = np.sort(np.random.default_rng(seed).permutation(len(ds))[:n])
    return Subset(ds, idx)


def load_data(cfg: dict[str, Any], download: bool, eval_only: bool) -> dict[str, Any]:
    """``{"train", "dev", "test", "source"}`` (train/dev None where not needed), ``--subset`` applied.

    Raises :class:`DataError` with the data module's one-line message."""
    try:
        test = load_split(cfg, "test", download=download)
        train = dev = None
        if not eval_only:
            train = load_split(cfg, "train+dev" if cfg["final"] else "train")
            dev = None if cfg["final"] else load_split(cfg, "dev")
    except (OSError, ValueError) as exc:  # FileNotFoundError, DownloadError, CIFAR10FormatError, IDXFormatError
        raise DataError(str(exc)) from None
    source = getattr(test, "source_note", None) or f"{cfg['dataset']} from {getattr(test, 'source', cfg['data_dir'])}"
    subset = cfg.get("subset")
    return {
        "train": None if train is None else take(train, subset, cfg["seed"]),
        "dev": None if dev is None else take(dev, subset, SUBSET_SEEDS["dev"]),
        "test": take(test, subset, SUBSET_SEEDS["test"]),
        "source": source,
    }


def eval_transform(info: dict[str, Any]) -> Any:
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(info["mean"], info["std"])])


def train_transform(cfg: dict[str, Any], info: dict[str, Any]) -> Any:
    if not cfg["augment"]:
        return eval_transform(info)
    pad = 4 if info["size"] == 32 else 2  # 28x28 Fashion-MNIST: a smaller shift
    steps: list[Any] = [transforms.RandomCrop(info["size"], padding=pad), transforms.RandomHorizontalFlip()]
    steps += [transforms.ToTensor(), transforms.Normalize(info["mean"], info["std"])]
    if cfg["cutout"]:
        steps.append(transforms.Cutout(cfg["cutout"]))
    return transforms.Compose(steps)


# ----------------------------------------------------------------------------- the run folder
def _is_empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def choose_folder(requested: Path, overwrite: bool) -> tuple[Path, str]:
    """Where a new run (or evaluation) writes, and a note for the banner.

    ``requested`` when it does not exist or is empty; with ``overwrite``, ``requested``
    after deleting the files an earlier run wrote there (:data:`RUN_FILES`, nothing else);
    otherwise the first free ``requested-2``, ``requested-3``, ...  Nothing is created here.
    """
    if requested.name in ("", ".", ".."):
        requested = requested.resolve()
    if requested.exists() and not requested.is_dir():
        raise UsageError(f"--out {requested} is a file, not a folder: name a folder (it is created if missing)")
    if _is_empty(requested):
        return requested, ""
    if overwrite:
        return requested, "(--overwrite: the earlier run's files there are replaced)"
    n = 2
    while not _is_empty(requested.with_name(f"{requested.name}-{n}")):
        n += 1
    return requested.with_name(f"{requested.name}-{n}"), f"({requested} holds an earlier run, which is kept)"


def prepare_folder(folder: Path, overwrite: bool) -> None:
    """Create the run folder; with ``overwrite``, first delete what an earlier run wrote there."""
    if overwrite:
        for name in RUN_FILES:
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)


# ----------------------------------------------------------------------------- optimizer and schedule
def build_optimizer(cfg: dict[str, Any], model: nn.Module) -> Any:
    groups = optim.split_weight_decay(model, cfg["weight_decay"])
    if cfg["optimizer"] == "adam":
        return optim.Adam(groups, lr=cfg["lr"])
    return optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"] and cfg["momentum"] > 0)


def build_scheduler(cfg: dict[str, Any], opt: Any, steps_per_epoch: int) -> Any:
    """A per-step schedule (or None): warm-up + cosine, one-cycle, warm-up + step decay."""
    total = max(1, cfg["epochs"] * steps_per_epoch)
    warm = min(int(round(cfg["warmup_epochs"] * steps_per_epoch)), total - 1)
    sched = optim.lr_scheduler
    if cfg["schedule"] == "none":
        return None
    if cfg["schedule"] == "onecycle":
        return sched.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=total)
    if cfg["schedule"] == "cosine":
        main = sched.CosineAnnealingLR(opt, T_max=max(1, total - warm))
    else:  # step: x0.1 at 50% and 75% of the run
        main = sched.MultiStepLR(opt, milestones=[int(0.5 * (total - warm)), int(0.75 * (total - warm))], gamma=0.1)
    if warm <= 0:
        return main
    warmup = sched.LinearLR(opt, start_factor=0.01, end_factor=1.0, total_iters=warm)
    return sched.SequentialLR(opt, [warmup, main], milestones=[warm])


def rebuild_scheduler(cfg: dict[str, Any], opt: Any, steps_per_epoch: int, steps_done: int) -> Any:
    """The schedule of ``cfg`` (new ``epochs`` or ``lr``) advanced to ``steps_done``, on a restored optimizer.

    The learning rate then is what a run planned with these settings from the start would
    use at this step; the steps already taken keep the rates they had.
    """
    for group in opt.param_groups:  # the base rate the schedule scales (the restored one is the old lr)
        group["lr"] = group["initial_lr"] = cfg["lr"]
    sched = build_scheduler(cfg, opt, steps_per_epoch)
    for _ in range(steps_done if sched is not None else 0):
        sched.step()
    return sched


# ----------------------------------------------------------------------------- the banner
def describe(cfg: dict[str, Any], model: nn.Module, sizes: dict[str, int], notes: dict[str, str]) -> str:
    """What this run is, in a few lines; ``notes`` adds the data source, resume details and folder notes."""
    stem = "3x3 conv, no max-pool" if cfg["stem"] == "cifar" else "7x7/2 conv + 3x3/2 max-pool"
    aug = "none"
    if cfg["augment"]:
        aug = f"random crop (pad {4 if cfg['dataset'] == 'cifar10' else 2}) + horizontal flip"
        aug += f" + cutout {cfg['cutout']}" if cfg["cutout"] else ""
    if cfg["optimizer"] == "sgd":
        opt = f"SGD{' nesterov' if cfg['nesterov'] else ''} momentum {cfg['momentum']}"
    else:
        opt = "Adam"
    sched = {
        "none": "constant learning rate",
        "cosine": f"{cfg['warmup_epochs']:g} warm-up epochs + cosine decay to 0",
        "onecycle": "one-cycle",
        "step": f"{cfg['warmup_epochs']:g} warm-up epochs + x0.1 at 50% and 75%",
    }[cfg["schedule"]]
    width = f", width {cfg['width']}" if cfg["width"] != 64 else ""
    split = "train+dev (final model = last epoch)" if cfg["final"] else "train, best epoch chosen on dev"
    quick = " (--subset: a quick run, evaluated on a subset too)" if cfg.get("subset") else ""
    lines = [
        f"{cfg['arch']} on {cfg['dataset']} -- recipe {cfg['recipe']!r} -- device {cfg['device']}",
        f"  model     {cfg['stem']} stem ({stem}){width}, {model.num_parameters():,} parameters",
        f"  data      {split}: "
        + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
        + f" images{quick}; augmentation: {aug}",
        f"            {notes['source']}",
        f"  optimizer {opt}, lr {cfg['lr']:g} at batch {cfg['batch_size']}, "
        f"weight decay {cfg['weight_decay']:g} (not on BN/bias)",
        f"  schedule  {sched} over {cfg['epochs']} epochs; label smoothing {cfg['label_smoothing']:g}",
    ]
    for key in ("resumed", "changed"):
        if notes.get(key):
            lines.append(f"  {key:<9s} {notes[key]}")
    lines.append(f"  output    {cfg['out']} {notes.get('folder', '')}".rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------- evaluation and pictures
def evaluate_and_plot(
    trainer: Trainer, cfg: dict[str, Any], info: dict[str, Any], test_ds: Any, out: Path, checkpoint: str | None
) -> dict[str, Any]:
    """Test-set numbers, confusion matrix, per-class bars and prediction grid in ``out``; returns the summary."""
    from minitorch_nndl.train import plots

    nc = len(info["classes"])
    loader = DataLoader(
        test_ds, batch_size=cfg["eval_batch_size"], transform=eval_transform(info), device=trainer.device
    )
    metrics = {
        "acc": Accuracy(),
        "top3": TopKAccuracy(min(3, nc)),
        "confusion": ConfusionMatrix(nc),
        "per_class": PerClassAccuracy(nc),
    }
    t0 = time.perf_counter()
    res = trainer.evaluate(loader, metrics=metrics)
    names = info["classes"]
    plots.plot_confusion_matrix(res["confusion"], names, out / "confusion_matrix.png", title="test confusion matrix")
    plots.plot_per_class_accuracy(
        res["per_class"], names, out / "per_class_accuracy.png", title="test accuracy per class"
    )
    raw, labels = test_ds.get_batch(np.arange(min(32, len(test_ds))))
    probs = trainer.predict(eval_transform(info)(raw), probs=True).numpy()
    plots.plot_prediction_grid(raw, labels, probs.argmax(1), names, out / "predictions.png", probs=probs.max(1))
    return {
        "checkpoint": checkpoint,
        "dataset": cfg["dataset"],
        "arch": cfg["arch"],
        "n_test": len(test_ds),
        "test_acc": res["acc"],
        "test_top3": res["top3"],
        "test_loss": res["loss"],
        "per_class_acc": {n: (None if math.isnan(v) else float(v)) for n, v in zip(names, res["per_class"])},
        "confusion_matrix": res["confusion"].tolist(),
        "eval_seconds": time.perf_counter() - t0,
    }


def write_training_plots(trainer: Trainer, cfg: dict[str, Any], out: Path) -> None:
    from minitorch_nndl.train import plots

    title = f"{cfg['arch']} on {cfg['dataset']} ({cfg['recipe']} recipe)"
    if cfg.get("label_smoothing"):  # otherwise the reader wonders why train loss sits above test loss
        title += f"; train loss includes label smoothing {cfg['label_smoothing']}"
    plots.plot_curves(trainer.history, out / "curves.png", title=title)
    plots.plot_lr(trainer.history, out / "lr.png")


# ----------------------------------------------------------------------------- main
def check_device(device: str) -> None:
    """Raise :class:`DataError` saying why CUDA is not usable, with the CPU command, when it is not."""
    if device != "cuda" or mt.cuda.is_available():
        return
    try:  # the backend's own message says why (no CuPy, no GPU, no CUDA libraries) and how to install
        mt.zeros(1, device="cuda")
        reason = "CUDA is not usable here"
    except (RuntimeError, ImportError, OSError) as exc:
        reason = " ".join(str(exc).split())
    argv = [*_without(_ARGV, "--device"), "--device", "cpu"]
    raise DataError(f"--device cuda: {reason}\nOr train on the CPU:\n    {_command(*argv)}")


def main(argv: list[str] | None = None) -> int:
    """Run the program; returns the exit status (0 done, 1 data/checkpoint/device error or NaN, 2 usage error,
    130 stopped by Ctrl-C).  Errors are one ``error: ...`` message on stderr, never a traceback."""
    global _ARGV
    _ARGV = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(_ARGV)
    except SystemExit as exc:  # --help (0), or a usage error that argparse has printed (2)
        return int(exc.code or 0)
    try:
        return run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside training (the Trainer handles Ctrl-C during fit itself)
        print("\ninterrupted (Ctrl-C); checkpoints already written are intact", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    """Check every input, then create the run folder, train, evaluate and plot."""
    # 1. the settings: a new run's from the options; a resumed run's or an evaluation's from its checkpoint
    notes: dict[str, str] = {}
    ck: dict[str, Any] | None = None
    rebuild = False
    if args.eval_only:
        ck = read_run_checkpoint(args.eval_only, "--eval-only")
        cfg = eval_config(args, ck)
    elif args.resume:
        ck = read_run_checkpoint(args.resume, "--resume")
        cfg, changes, rebuild = resumed_config(args, ck, Path(args.resume))
        t = ck.get("trainer", {})
        notes["resumed"] = (
            f"from {args.resume} ({t.get('epoch', 0)} of {ck['config']['epochs']} epochs done, step "
            f"{t.get('global_step', 0)}), with the run's saved settings"
        )
        if changes:
            notes["changed"] = "on this command line: " + "; ".join(changes)
    else:
        cfg = resolve_config(args)
    info = dataset_info(cfg["dataset"])

    # 2. the device and the data, before anything is written
    check_device(cfg["device"])
    device = "cuda" if cfg["device"] == "cuda" else "cpu"
    data = load_data(cfg, download=bool(args.download), eval_only=bool(args.eval_only))
    notes["source"] = data["source"]

    # 3. the folder: a resumed run continues in its own; anything else never replaces an earlier run
    if args.resume:
        out = Path(cfg["out"])
    else:
        default = Path(args.eval_only).parent / f"eval-{Path(args.eval_only).stem}" if args.eval_only else cfg["out"]
        out, notes["folder"] = choose_folder(Path(args.out or default), bool(args.overwrite))
        prepare_folder(out, bool(args.overwrite))
    cfg["out"] = str(out)
    cfg.update(
        num_classes=len(info["classes"]),
        in_channels=1 if cfg["dataset"] == "fashion-mnist" else 3,
        classes=info["classes"],
        mean=info["mean"],
        std=info["std"],
        image_size=info["size"],
    )

    mt.manual_seed(cfg["seed"])
    model = build_model(cfg).to(device)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
    eval_loss = nn.CrossEntropyLoss()

    if args.eval_only:
        assert ck is not None
        restore_model(model, ck["model"])
        trainer = Trainer(model, None, loss_fn, device=device, quiet=True, eval_loss_fn=eval_loss, config=cfg)
        print(f"evaluating {args.eval_only} on {data['source']}; results in {out}/ {notes['folder']}".rstrip())
        summary = evaluate_and_plot(trainer, cfg, info, data["test"], out, str(args.eval_only))
        (out / "test_summary.json").write_text(json.dumps(summary, indent=1))
        print(f"test accuracy {100 * summary['test_acc']:.2f}% on {summary['n_test']:,} images ({args.eval_only})")
        return 0
    return train(args, cfg, info, model, loss_fn, eval_loss, data, notes, rebuild)


def train(
    args: argparse.Namespace,
    cfg: dict[str, Any],
    info: dict[str, Any],
    model: nn.Module,
    loss_fn: Any,
    eval_loss: Any,
    data: dict[str, Any],
    notes: dict[str, str],
    rebuild: bool,
) -> int:
    """Train (or continue training), then evaluate the chosen model on the test set."""
    out = Path(cfg["out"])
    device = "cuda" if cfg["device"] == "cuda" else "cpu"
    train_ds, dev_ds, test_ds = data["train"], data["dev"], data["test"]
    train_loader = DataLoader(
        train_ds,
        batch_size=cfg["batch_size"],
        shuffle=True,
        seed=cfg["seed"],
        transform=train_transform(cfg, info),
        device=device,
        prefetch=cfg["prefetch"],
        num_workers=cfg["num_workers"],
    )
    etf = eval_transform(info)
    dev_loader = None
    if dev_ds is not None:
        dev_loader = DataLoader(dev_ds, batch_size=cfg["eval_batch_size"], transform=etf, device=device)
    monitor = {}
    if cfg["monitor_test"]:
        monitor["test"] = DataLoader(test_ds, batch_size=cfg["eval_batch_size"], transform=etf, device=device)
    opt = build_optimizer(cfg, model)
    sched = None if rebuild else build_scheduler(cfg, opt, len(train_loader))
    trainer = Trainer(
        model,
        opt,
        loss_fn,
        metrics=[Accuracy()],
        scheduler=sched,
        device=device,
        out_dir=out,
        scheduler_step="batch",
        quiet=cfg["quiet"],
        eval_loss_fn=eval_loss,
        config=cfg,
        monitor=monitor,
    )
    if args.resume:
        trainer.load(args.resume)  # model, optimizer, schedule, position, history; fit() continues from here
        if rebuild:
            before = trainer.lr()
            trainer.scheduler = rebuild_scheduler(cfg, opt, len(train_loader), trainer.global_step)
            notes["changed"] += (
                f"; the learning-rate schedule is rebuilt for lr {cfg['lr']:g} over {cfg['epochs']} epochs and "
                f"continues at step {trainer.global_step} (lr {before:.4g} -> {trainer.lr():.4g})"
            )
        # the record of each resume travels in config.json and in every later checkpoint
        cfg["resumes"] = [*cfg.get("resumes", []), {"step": trainer.global_step, "changed": notes.get("changed", "")}]
        trainer.config = dict(cfg)
    sizes = {"train": len(train_ds)}
    if dev_ds is not None:
        sizes["dev"] = len(dev_ds)
    sizes["test"] = len(test_ds)
    print(describe(cfg, model, sizes, notes), flush=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=1))

    t0 = time.perf_counter()
    result = trainer.fit(train_loader, dev_loader, epochs=cfg["epochs"], log_every=cfg["log_every"])
    minutes = (time.perf_counter() - t0) / 60
    write_training_plots(trainer, cfg, out)
    if result.status == "interrupted":
        if result.last_checkpoint:
            hint = f"Continue with:\n    {_command('--resume', result.last_checkpoint)}"
        else:
            hint = "Nothing was saved yet (no epoch and no step had completed): start the run again."
        print(f"stopped after {minutes:.1f} min. {hint}", file=sys.stderr)
        return 130
    if result.status == "nan":
        lower = f"{cfg['lr'] / 10:g}"
        if result.last_checkpoint:
            hint = "continue from the last good checkpoint with a 10x lower learning rate:\n    "
            hint += _command("--resume", result.last_checkpoint, "--lr", lower)
        else:
            hint = "start again with a 10x lower learning rate:\n    "
            hint += _command(*_without(_ARGV, "--lr"), "--lr", lower)
        print(f"error: the run diverged (see above); {hint}", file=sys.stderr)
        return 1

    chosen = out / "best.npz"
    if chosen.exists():
        ck = load_checkpoint(chosen)
        restore_model(model, ck["model"])
        best_epoch, which = ck["trainer"]["epoch"], "last epoch" if cfg["final"] else "best on dev"
    else:  # --epochs 0: nothing was trained, so the untrained model is what there is to evaluate
        best_epoch, which = None, "untrained: --epochs 0"
    summary = evaluate_and_plot(trainer, cfg, info, test_ds, out, str(chosen) if chosen.exists() else None)
    seconds = [r.get("seconds") or 0.0 for r in trainer.history.epochs]
    summary["train_minutes"] = sum(s for s in seconds if math.isfinite(s)) / 60  # every session of the run
    summary["epochs_trained"] = trainer.epoch
    summary["best_epoch"] = best_epoch
    (out / "test_summary.json").write_text(json.dumps(summary, indent=1))
    rates = [r["images_per_sec"] for r in trainer.history.epochs if r.get("images_per_sec")]
    model_of = f"epoch {best_epoch} ({which})" if best_epoch else f"epoch 0 ({which})"
    print(
        f"test accuracy {100 * summary['test_acc']:.2f}% (top-3 {100 * summary['test_top3']:.2f}%) with the model of "
        f"{model_of}; {minutes:.1f} min, {np.median(rates) if rates else float('nan'):,.0f} img/s. Outputs in {out}/"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
