#!/usr/bin/env python3
"""Train a ResNet, built from minitorch_nndl's own primitives, on CIFAR-10 (or Fashion-MNIST).

    python3 examples/resnet18_cifar10.py --device cuda --download   # the full recipe (needs CuPy + a GPU)
    python3 examples/resnet18_cifar10.py --recipe seed              # the original course setup, for comparison
    mpiexec -n 4 python3 examples/resnet18_cifar10.py --distributed --device cuda   # 4 GPUs, data-parallel

``--help`` states every default and docs/09-from-73-to-95.md explains each choice.  This file is
the options, their resolution into a run's settings (the resume merge included), and the train and
evaluate entries; :mod:`minitorch_nndl.train.recipe` builds the recipe's pieces,
:mod:`minitorch_nndl.train.runs` the run's data, folder, banner and reports, and
:mod:`minitorch_nndl.cli` the one-line errors.  Without ``--final`` the best epoch is chosen on
``dev`` (CIFAR-10's data_batch_5) and evaluated once on ``test``.  A run folder that holds a run is
never reused (``-2``, ``-3``, ... unless ``--overwrite``); Ctrl-C saves ``last.npz``, and ``--resume
RUN/last.npz`` continues with the run's saved settings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import minitorch_nndl as mt
from minitorch_nndl import cli, models, nn
from minitorch_nndl.cli import UsageError, command_line, flag, given_options, without_option
from minitorch_nndl.data import catalog
from minitorch_nndl.kernels import parallel
from minitorch_nndl.train import Accuracy, Trainer, data_parallel, restore_model, runs
from minitorch_nndl.train.recipe import Recipe

ARCHS = ("resnet10", "resnet18", "resnet34", "resnet50")  # constructors in minitorch_nndl.models
#: settings that say *how* to run, not *what* the run is, with their defaults: a resume or an evaluation may change them
RUNTIME = {"device": "cpu", "data_dir": "./data", "quiet": False, "num_workers": 1, "prefetch": 2, "log_every": 50}
RUNTIME["distributed"] = False  # --distributed: one of the ranks of mpiexec/srun (train.data_parallel)
RUNTIME_OPTIONS = frozenset({*RUNTIME, "eval_batch_size", "download"})
RESUME_OPTIONS = RUNTIME_OPTIONS | {"resume", "epochs", "lr", "monitor_test"}  # epochs and lr rebuild the schedule
EVAL_OPTIONS = RUNTIME_OPTIONS | {"eval_only", "out", "overwrite", "subset"}
#: the options that set a field of the recipe (--no-augment sets ``augment``; ``nesterov`` follows --recipe)
RECIPE_OPTIONS = [f.name for f in fields(Recipe) if f.name not in ("nesterov", "augment")]
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


def build_model(cfg: dict[str, Any]) -> nn.Module:
    """The network a config describes (``arch``, ``width``, ``stem``, ``in_channels``, ``num_classes``)."""
    kw = {"num_classes": cfg["num_classes"], "stem": cfg["stem"], "in_channels": cfg["in_channels"]}
    return getattr(models, cfg["arch"])(width=int(cfg.get("width", 64)), **kw)


def build_parser() -> argparse.ArgumentParser:
    """The command line.  Every default is None, so that the typed options can be told apart
    (:func:`~minitorch_nndl.cli.given_options`); :func:`resolve_config` fills in the stated defaults."""
    p = cli.OneLineParser(
        prog="resnet18_cifar10.py",
        description="Train a ResNet from minitorch_nndl primitives on CIFAR-10 or Fashion-MNIST.\n"
        "The default recipe aims at the 95% CIFAR-10 test accuracy the course expected of ResNet18, in\n"
        "200 epochs (a GPU run: --device cuda); that is not yet measured (docs chapter 9).\n"
        "--recipe seed reproduces the original 73.6% setup.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a, whole, real, on = p.add_argument, cli.whole_number, cli.real_number, {"action": "store_true", "default": None}
    a("--device", type=cli.device_name, metavar="{cpu,cuda,cuda:N}", help="where to train (default cpu)")
    a("--distributed", **on, help="data-parallel over mpiexec's ranks; --batch-size is per rank, cuda by local rank")
    a("--data-dir", metavar="FOLDER", help="folder holding (or receiving) the data set (default ./data)")
    a("--download", **on, help="download the data set into --data-dir if it is missing")
    a("--dataset", choices=list(catalog.DATASETS), help="which data set (default cifar10)")
    a("--recipe", choices=["default", "seed"], help="defaults for every unset option below (default: default)")
    a("--arch", choices=list(ARCHS), help="default resnet18 (resnet10 = one block per stage)")
    a("--width", metavar="N", type=whole(1), help="base width of the ResNet (default 64 = the standard network)")
    a("--stem", choices=["cifar", "imagenet"], help="default cifar (seed recipe: imagenet)")
    a("--epochs", metavar="N", type=whole(0), help="default 200 for CIFAR-10, 15 for Fashion-MNIST (seed recipe: 30)")
    a("--batch-size", metavar="N", type=whole(1), help="default 128 (seed recipe: 64)")
    a("--optimizer", choices=["sgd", "adam"], help="default sgd")
    lr_help = "default 0.1 * batch/128 for SGD, 1e-3 for Adam (seed: 0.001)"
    a("--lr", metavar="LR", type=real(0, low_ok=False), help=lr_help)
    a("--momentum", metavar="M", type=real(0, 1.0 + 1e-12), help="SGD momentum, default 0.9")
    a("--weight-decay", metavar="WD", type=real(0), help="default 5e-4, not applied to BN/bias (seed: 0)")
    a("--schedule", choices=["onecycle", "cosine", "step", "none"], help="default cosine (seed: none)")
    warm_help = "linear warm-up before cosine/step, at most --epochs; default 5 (epochs/5, at most 2, below 20 epochs)"
    a("--warmup-epochs", metavar="E", type=real(0), help=warm_help)
    a("--label-smoothing", metavar="S", type=real(0, 1), help="default 0.1 (seed: 0)")
    a("--no-augment", **on, help="no random crop/flip (the seed recipe never augments)")
    cut_help = "cutout square size in pixels (default 0 = off)"
    a("--cutout", metavar="PIXELS", type=whole(0, " (0 = no cutout)"), help=cut_help)
    sub_help = "a quick run: N random training images, and at most N dev and N test images"
    a("--subset", metavar="N", type=whole(1, " (leave --subset out to use every image)"), help=sub_help)
    a("--final", **on, help="train on train+dev and keep the last epoch (else select on dev)")
    a("--monitor-test", **on, help="also evaluate the test set after every epoch")
    a("--seed", metavar="N", type=whole(0), help="seeds weights, shuffling and augmentation (default 0)")
    out_help = "run folder (default runs/<dataset>-<arch>-<recipe>; -2, -3, ... when it holds a run)"
    a("--out", metavar="FOLDER", help=out_help)
    a("--overwrite", **on, help="replace the run in --out instead of using a new folder")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its last.npz, with its saved settings")
    eval_help = "evaluate a checkpoint on the test set (into RUN/eval-<name>/)"
    how.add_argument("--eval-only", metavar="CHECKPOINT", help=eval_help)
    a("--quiet", **on, help="no progress bar (one line per epoch)")
    a("--num-workers", metavar="N", type=whole(0), help="background threads preparing batches (default 1)")
    a("--prefetch", metavar="N", type=whole(0), help="batches prepared ahead (default 2)")
    log_help = "steps between progress-bar updates, each a host sync (default 50)"
    a("--log-every", metavar="N", type=whole(1), help=log_help)
    a("--eval-batch-size", type=whole(1), help=argparse.SUPPRESS)
    return p


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of a new run: every unset option filled in from the recipe and the data set."""
    dataset, name, arch = args.dataset or "cifar10", args.recipe or "default", args.arch or "resnet18"
    given = {f: getattr(args, f) for f in RECIPE_OPTIONS}
    how = Recipe.named(name, dataset, augment=False if args.no_augment else None, **given)
    cfg: dict[str, Any] = {
        "dataset": dataset,
        "recipe": name,
        "arch": arch,
        "width": 64 if args.width is None else args.width,
        "stem": args.stem or ("imagenet" if name == "seed" else "cifar"),
        **asdict(how),
        "subset": args.subset,
        "final": bool(args.final),
        "monitor_test": bool(args.monitor_test),
        "seed": 0 if args.seed is None else args.seed,
        **runtime_settings(args, {}),
        "out": args.out or f"runs/{dataset}-{arch}-{name}",
    }
    if cfg["schedule"] in ("cosine", "step") and cfg["warmup_epochs"] > cfg["epochs"]:
        raise UsageError(
            f"--warmup-epochs {cfg['warmup_epochs']:g} is longer than the run ({cfg['epochs']} epochs): "
            f"give at most --warmup-epochs {cfg['epochs']}, or more --epochs"
        )
    return cfg


def runtime_settings(args: argparse.Namespace, saved: dict[str, Any]) -> dict[str, Any]:
    """Device, data folder and loader settings: from the command line, else ``saved``, else the defaults."""
    defaults = {**RUNTIME, "eval_batch_size": 256}
    return {k: getattr(args, k) if getattr(args, k) is not None else saved.get(k, d) for k, d in defaults.items()}


def resumed_config(args: argparse.Namespace, ck: dict[str, Any], ck_path: Path) -> tuple[dict, dict, bool]:
    """The settings of a resumed run: the checkpoint's, with the options given on this command line.

    Returns ``(cfg, notes, rebuild_schedule)``: ``notes`` for the banner (what is resumed, and every
    setting the command line changed); ``rebuild_schedule`` when ``--epochs`` or ``--lr`` changed.
    """
    saved, given = ck["config"], given_options(args)
    runs.refuse_changes(sorted(given - RESUME_OPTIONS), saved, ck_path.parent)
    cfg = {**saved, **runtime_settings(args, saved), "out": str(ck_path.parent)}
    cfg.update({k: getattr(args, k) for k in ("epochs", "lr") if getattr(args, k) is not None})
    cfg["monitor_test"] = bool(args.monitor_test or saved.get("monitor_test"))
    warmup = cfg["warmup_epochs"] if cfg["schedule"] in ("cosine", "step") else 0.0
    runs.check_resumable(ck, ck_path, cfg["epochs"], epochs_given=args.epochs is not None, warmup_epochs=warmup)
    notes = {"resumed": runs.resume_note(ck, args.resume)}
    changed = sorted(k for k in given & (RESUME_OPTIONS - {"resume", "download"}) if saved.get(k) != cfg[k])
    if changed:
        notes["changed"] = "on this command line: " + "; ".join(f"{k} {saved.get(k)!r} -> {cfg[k]!r}" for k in changed)
    return cfg, notes, cfg["epochs"] != saved.get("epochs") or cfg["lr"] != saved.get("lr")


def eval_config(args: argparse.Namespace, ck: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``--eval-only``: the checkpoint's, with the runtime options and ``--subset`` given."""
    refused = sorted(given_options(args) - EVAL_OPTIONS)
    if refused:
        raise UsageError(
            f"{', '.join(flag(k) for k in refused)} has no effect with --eval-only, which evaluates the checkpoint "
            "with the settings it was trained with: drop it"
        )
    cfg = {**ck["config"], **runtime_settings(args, ck["config"])}
    cfg["subset"] = args.subset if args.subset is not None else cfg.get("subset")
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Run the program; returns the exit status (0 done, 1 data/checkpoint/device error or NaN, 2 usage error,
    130 stopped by Ctrl-C).  Errors are one ``error: ...`` message on stderr, never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    done = "interrupted (Ctrl-C); checkpoints already written are intact"
    return data_parallel.exit_status(cli.run_program(build_parser(), argv, lambda a: run(a, argv), interrupted=done))


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Check every input (settings, device, data), then create the run folder and train or evaluate."""
    ck, notes, rebuild = None, {}, False
    if args.eval_only:
        ck = runs.read_run_checkpoint(args.eval_only, "--eval-only", "resnet18_cifar10.py")
        cfg = eval_config(args, ck)
    elif args.resume:
        ck = runs.read_run_checkpoint(args.resume, "--resume", "resnet18_cifar10.py")
        cfg, notes, rebuild = resumed_config(args, ck, Path(args.resume))
    else:
        cfg = resolve_config(args)
    notes["parallel"] = data_parallel.setup(cfg, scale_lr=not (args.resume or args.eval_only or args.lr))
    notes["note"] = parallel.forced_kernels_note() if cfg["device"] == "cpu" else None
    on_cpu = _command(*without_option(argv, "--device"), "--device", "cpu")
    cli.check_cuda(cfg["device"], f"Or train on the CPU:\n    {on_cpu}")
    data = runs.load_splits(cfg, download=bool(args.download), eval_only=bool(args.eval_only))
    notes["source"] = data["source"]
    if not args.resume:  # a resumed run continues in its own folder; anything else never replaces an earlier run
        default = Path(args.eval_only).parent / f"eval-{Path(args.eval_only).stem}" if args.eval_only else cfg["out"]
        out, notes["folder"] = data_parallel.one_folder(
            lambda: runs.fresh_folder(args.out or default, bool(args.overwrite)),
            lambda folder: runs.prepare_folder(folder, bool(args.overwrite), runs.RUN_FILES),
        )
        cfg["out"] = str(out)
    cfg.update(runs.dataset_settings(cfg["dataset"]))
    mt.manual_seed(cfg["seed"])
    model = build_model(cfg).to(cfg["device"])
    if args.eval_only:
        restore_model(model, ck["model"])
        return evaluate(args.eval_only, cfg, model, data, notes)
    return train(args, argv, cfg, model, data, notes, rebuild)


def evaluate(checkpoint: str, cfg: dict[str, Any], model: nn.Module, data: dict[str, Any], notes: dict) -> int:
    """The ``--eval-only`` entry: the test report of ``model`` (restored from ``checkpoint``) in ``cfg["out"]``."""
    loss_fn, device = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"]), cfg["device"]
    trainer = Trainer(model, None, loss_fn, device=device, quiet=True, eval_loss_fn=nn.CrossEntropyLoss(), config=cfg)
    print(f"evaluating {checkpoint} on {data['source']}; results in {cfg['out']}/ {notes['folder']}".rstrip())
    summary = runs.write_test_summary(trainer, cfg, data["test"], checkpoint)
    print(f"test accuracy {100 * summary['test_acc']:.2f}% on {summary['n_test']:,} images ({checkpoint})")
    return 0


def train(
    args: argparse.Namespace, argv: list[str], cfg: dict, model: nn.Module, data: dict, notes: dict, rebuild: bool
) -> int:
    """The training entry: train (or continue training), then evaluate the chosen model on the test set."""
    out, how, model = Path(cfg["out"]), Recipe.from_config(cfg), data_parallel.wrap(model, cfg)
    train_loader = runs.train_loader(data["train"], cfg)
    opt = how.build_optimizer(model)
    trainer = Trainer(
        model,
        opt,
        how.loss_fn(),
        metrics=[Accuracy()],
        scheduler=None if rebuild else how.build_scheduler(opt, len(train_loader)),
        device=cfg["device"],
        out_dir=out,
        scheduler_step="batch",
        quiet=cfg["quiet"],
        eval_loss_fn=nn.CrossEntropyLoss(),
        config=cfg,
        monitor={"test": runs.eval_loader(data["test"], cfg)} if cfg["monitor_test"] else {},
    )
    if args.resume:
        runs.resume(trainer, args.resume, len(train_loader), cfg, notes, replan=rebuild)
    sizes = {split: len(data[split]) for split in ("train", "dev", "test") if data[split] is not None}
    print(runs.describe_run(cfg, model.num_parameters(), sizes, notes), flush=True)
    runs.write_config(out, cfg)
    t0 = time.perf_counter()
    dev_loader = None if data["dev"] is None else runs.eval_loader(data["dev"], cfg)
    result = trainer.fit(train_loader, dev_loader, epochs=cfg["epochs"], log_every=cfg["log_every"])
    minutes = (time.perf_counter() - t0) / 60
    runs.plot_training(trainer.history, out, cfg)
    if result.status in ("interrupted", "nan"):
        code, hint = runs.stop_hint(result, _command, argv, cfg["lr"])
        head = f"stopped after {minutes:.1f} min." if code == 130 else "error: the run diverged (see above);"
        print(f"{head} {hint}", file=sys.stderr)
        return code
    return finish(trainer, cfg, model, data["test"], minutes)


def finish(trainer: Trainer, cfg: dict[str, Any], model: nn.Module, test_ds: Any, minutes: float) -> int:
    """Evaluate the chosen model (best.npz: best on dev, or the last epoch with --final) on the test set."""
    chosen, best_epoch = runs.restore_best(model, Path(cfg["out"]))
    which = "untrained: --epochs 0" if chosen is None else "last epoch" if cfg["final"] else "best on dev"
    minutes_all, images_per_sec = runs.training_speed(trainer.history)
    summary = runs.write_test_summary(
        trainer,
        cfg,
        test_ds,
        None if chosen is None else str(chosen),
        train_minutes=minutes_all,  # every session of the run
        epochs_trained=trainer.epoch,
        best_epoch=best_epoch,
    )
    print(
        f"test accuracy {100 * summary['test_acc']:.2f}% (top-3 {100 * summary['test_top3']:.2f}%) with the model of "
        f"epoch {best_epoch or 0} ({which}); {minutes:.1f} min, {images_per_sec:,.0f} img/s. Outputs in {cfg['out']}/"
    )
    return 0


def _command(*args: str) -> str:
    """``python3 examples/resnet18_cifar10.py ARGS...`` as the user can type it from the working folder."""
    return command_line(__file__, *args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # process-wide CPU settings, which the library never makes on its own: freed memory kept for the next
    # step, and (one process per machine) each convolution's batch split over the cores on a 1-thread BLAS
    mt.backend.reuse_freed_memory()
    if "--distributed" not in sys.argv:
        parallel.use_batch_threads()
    sys.exit(main())
