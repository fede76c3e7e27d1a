"""A training run on disk: its folder, its checkpoints, its test report.

* :func:`fresh_folder` / :func:`prepare_folder` -- a new run never replaces an earlier one: it
  goes to ``<folder>-2`` (``-3``, ...) unless ``overwrite``, and nothing is created until every
  input has been checked;
* :func:`read_run_checkpoint`, :func:`check_resumable`, :func:`resume` -- load the checkpoint a
  program is told to resume from or evaluate, refuse a resume that cannot continue (older than the
  run's ``last.npz``, no epochs left, shorter than the warm-up), and continue a Trainer from it;
* :func:`stop_hint` -- after Ctrl-C or a diverged run, the command that continues it;
* :func:`load_splits`, :func:`train_loader`, :func:`eval_loader`, :func:`describe_run` -- a run's data (``--subset``
  applied), its evaluation loader, and the banner that says what the run is;
* :func:`restore_best`, :func:`test_report`, :func:`write_test_summary`, :func:`plot_training` --
  the model a run chose, its test-set numbers and the figures.

A data-parallel run (``cfg["distributed"]``, :mod:`.data_parallel`) gives each rank its shard in
the loaders; every rank evaluates (the counts are summed over the ranks) and rank 0 alone writes.

Errors are :class:`~minitorch_nndl.cli.UsageError` (exit 2) and
:class:`~minitorch_nndl.cli.DataError` (exit 1): one line that names the file and the fix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import DataError, UsageError, flag, without_option
from ..data import DataLoader, catalog, random_subset
from ..tensor import Tensor
from . import data_parallel
from .atomic import atomic_write_json
from .checkpoint import CheckpointError, load_checkpoint, restore_model
from .metrics import Accuracy, ConfusionMatrix, PerClassAccuracy, TopKAccuracy
from .recipe import Recipe, eval_transform

__all__ = [
    "RUN_FILES",
    "check_latest",
    "check_resumable",
    "dataset_settings",
    "describe_run",
    "eval_loader",
    "fresh_folder",
    "load_splits",
    "train_loader",
    "training_speed",
    "write_config",
    "plot_training",
    "prepare_folder",
    "read_run_checkpoint",
    "refuse_changes",
    "restore_best",
    "resume_note",
    "write_test_summary",
    "resume",
    "stop_hint",
    "test_report",
]


def _is_empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def fresh_folder(requested: str | Path, overwrite: bool = False, option: str = "--out") -> tuple[Path, str]:
    """Where a new run (or evaluation) writes, and a note for its banner; nothing is created here.

    ``requested`` when it does not exist or is empty, or when ``overwrite``; otherwise the first
    free ``requested-2``, ``requested-3``, ...  A file in the way is a :class:`UsageError`.
    """
    requested = Path(requested)
    if requested.name in ("", ".", ".."):
        requested = requested.resolve()
    if requested.exists() and not requested.is_dir():
        raise UsageError(f"{option} {requested} is a file, not a folder: name a folder (it is created if missing)")
    if _is_empty(requested):
        return requested, ""
    if overwrite:
        return requested, "(--overwrite: the earlier run's files there are replaced)"
    n = 2
    while not _is_empty(requested.with_name(f"{requested.name}-{n}")):
        n += 1
    return requested.with_name(f"{requested.name}-{n}"), f"({requested} holds an earlier run, which is kept)"


def prepare_folder(folder: Path, overwrite: bool, run_files: tuple[str, ...]) -> None:
    """Create the run folder; with ``overwrite``, first delete the ``run_files`` an earlier run wrote there
    (nothing else in the folder is touched)."""
    if overwrite:
        for name in run_files:
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)


def read_run_checkpoint(path_text: str, option: str, program: str) -> dict[str, Any]:
    """Load the checkpoint named by ``option`` (``--resume``, ``--eval-only``, ``--checkpoint``).

    It must exist (else :class:`UsageError`), be intact and carry the run's settings (a
    ``config`` naming an ``arch``, as ``program`` writes it; else :class:`DataError`).
    """
    path = Path(path_text)
    if not path.is_file():
        what = "is a folder; name the last.npz or best.npz inside it" if path.is_dir() else "does not exist"
        raise UsageError(f"{option} {path_text}: the checkpoint {what}")
    try:
        ck = load_checkpoint(path)
    except (OSError, CheckpointError) as exc:  # truncated, bit-flipped, foreign: one line, never unpickled
        raise DataError(str(exc)) from None
    if not isinstance(ck.get("config"), dict) or "arch" not in ck["config"]:
        raise DataError(f"{path} holds no run settings (config): it was not written by {program}")
    return ck


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


def check_resumable(
    ck: dict[str, Any], ck_path: Path, epochs: int, epochs_given: bool, warmup_epochs: float = 0.0
) -> None:
    """Refuse to resume the run of ``ck`` (read from ``ck_path``) for ``epochs`` epochs in all when it
    cannot continue: ``ck`` is older than the run's last.npz (:func:`check_latest`), no epoch is left
    to train, or ``epochs`` is shorter than the schedule's ``warmup_epochs``.  ``epochs_given`` says
    whether ``--epochs`` was typed (the message then says "more than --epochs N")."""
    check_latest(ck, ck_path)
    done = int(ck.get("trainer", {}).get("epoch", 0))
    if epochs < done:
        raise UsageError(
            f"--epochs {epochs} is fewer than the {done} epochs this run has already trained: give "
            f"--epochs {done + 1} or more to train longer, or evaluate it with --eval-only {ck_path}"
        )
    if epochs == done:
        more = f"more than --epochs {done}" if epochs_given else f"--epochs {done + 1} or more"
        raise UsageError(
            f"the run in {ck_path.parent} has already trained all its {done} epochs: to train longer, resume with "
            f"{more}; to evaluate it, use --eval-only {ck_path}"
        )
    if warmup_epochs > epochs:
        raise UsageError(
            f"--epochs {epochs} is shorter than this run's {warmup_epochs:g} warm-up epochs: "
            f"resume with --epochs {math.ceil(warmup_epochs)} or more"
        )


def refuse_changes(options: list[str], saved: dict[str, Any], folder: Path) -> None:
    """A :class:`UsageError` when ``options`` (the settings of a run a resume was told to change) is not
    empty: the message names each option with the value the run keeps."""
    if not options:
        return
    was = ", ".join(
        f"{flag(k)} {saved[k]:g}" if isinstance(saved[k], float) else f"{flag(k)} {saved[k]}"
        for k in options
        if k in saved
    )
    raise UsageError(
        f"{', '.join(flag(k) for k in options)} cannot be changed when resuming: a resumed run keeps the "
        f"settings it was started with{f' ({was})' if was else ''} and continues in {folder}. "
        "Drop the option, or start a new run without --resume"
    )


def resume_note(ck: dict[str, Any], checkpoint: str | Path) -> str:
    """The banner's line for a resumed run: how far the checkpoint ``ck`` (read from ``checkpoint``) got."""
    position, epochs = ck.get("trainer", {}), ck["config"]["epochs"]
    return (
        f"from {checkpoint} ({position.get('epoch', 0)} of {epochs} epochs done, step "
        f"{position.get('global_step', 0)}), with the run's saved settings"
    )


def resume(
    trainer: Any, checkpoint: str | Path, steps_per_epoch: int, cfg: dict[str, Any], notes: dict[str, str], replan: bool
) -> None:
    """Continue ``trainer`` from ``checkpoint``: model, optimizer, schedule, position and history.

    With ``replan`` (the run was given new epochs or lr) the learning-rate schedule is planned anew
    from ``cfg`` and advanced to the step reached, and ``notes["changed"]`` says so.  The record of
    this resume is appended to ``cfg["resumes"]``, which travels in config.json and every later
    checkpoint (``trainer.config``).
    """
    trainer.load(checkpoint)
    if replan:
        recipe, before = Recipe.from_config(cfg), trainer.lr()
        trainer.scheduler = recipe.build_scheduler(trainer.optimizer, steps_per_epoch, trainer.global_step)
        rebuilt = (
            f"the learning-rate schedule is rebuilt for lr {recipe.lr:g} over {recipe.epochs} epochs and "
            f"continues at step {trainer.global_step} (lr {before:.4g} -> {trainer.lr():.4g})"
        )
        notes["changed"] = "; ".join(filter(None, [notes.get("changed"), rebuilt]))
    cfg["resumes"] = [*cfg.get("resumes", []), {"step": trainer.global_step, "changed": notes.get("changed", "")}]
    trainer.config = dict(cfg)


def stop_hint(result: Any, command: Callable[..., str], argv: list[str], lr: float) -> tuple[int, str]:
    """The exit status and message of a ``fit`` that did not complete, for a program with ``--resume``
    and ``--lr``: after Ctrl-C (130) the command that continues the run; after divergence (1) the one
    that continues from the last good checkpoint, or starts again, with a 10x lower learning rate.

    ``command(*args)`` is the program's command line with ``args``; ``argv`` what it was started with.
    """
    if result.status == "interrupted":
        if result.last_checkpoint:
            return 130, f"Continue with:\n    {command('--resume', result.last_checkpoint)}"
        return 130, "Nothing was saved yet (no epoch and no step had completed): start the run again."
    lower = f"{lr / 10:g}"
    if result.last_checkpoint:
        again = command("--resume", result.last_checkpoint, "--lr", lower)
        return 1, f"continue from the last good checkpoint with a 10x lower learning rate:\n    {again}"
    again = command(*without_option(argv, "--lr"), "--lr", lower)
    return 1, f"start again with a 10x lower learning rate:\n    {again}"


def restore_best(model: Any, out: Path) -> tuple[Path | None, int | None]:
    """Load ``out/best.npz`` (the epoch a run chose) into ``model``; returns its path and epoch,
    or ``(None, None)`` when the run saved none (``--epochs 0``: the untrained model is what there is)."""
    chosen = out / "best.npz"
    if not chosen.exists():
        return None, None
    ck = load_checkpoint(chosen)
    restore_model(model, ck["model"])
    return chosen, ck["trainer"]["epoch"]


def test_report(trainer: Any, loader: Any, classes: list[str], out: Path, transform: Any) -> dict[str, Any]:
    """Evaluate ``trainer``'s model on ``loader`` (a test set) and draw what it got right and wrong.

    Writes ``confusion_matrix.png``, ``per_class_accuracy.png`` and ``predictions.png`` (the first
    32 images, raw, with the predictions of ``transform``-ed copies) into ``out``; returns the
    numbers for a summary file: ``n_test``, ``test_acc``, ``test_top3``, ``test_loss``,
    ``per_class_acc`` (None for a class absent from the set), ``confusion_matrix``, ``eval_seconds``.
    """
    nc, test_ds = len(classes), loader.dataset
    metrics = {
        "acc": Accuracy(),
        "top3": TopKAccuracy(min(3, nc)),
        "confusion": ConfusionMatrix(nc),
        "per_class": PerClassAccuracy(nc),
    }
    t0 = time.perf_counter()
    res = trainer.evaluate(loader, metrics=metrics)  # every rank (its shard); the figures: rank 0
    if data_parallel.is_main():
        _draw_test_report(trainer, res, test_ds, classes, out, transform)
    return {
        "n_test": len(test_ds),
        "test_acc": res["acc"],
        "test_top3": res["top3"],
        "test_loss": res["loss"],
        "per_class_acc": {n: (None if math.isnan(v) else float(v)) for n, v in zip(classes, res["per_class"])},
        "confusion_matrix": res["confusion"].tolist(),
        "eval_seconds": time.perf_counter() - t0,
    }


def _draw_test_report(trainer: Any, res: dict[str, Any], test_ds: Any, classes: list[str], out: Path, transform: Any):
    """:func:`test_report`'s three figures."""
    from . import plots  # noqa: PLC0415  (matplotlib only when a report is drawn)

    plots.plot_confusion_matrix(res["confusion"], classes, out / "confusion_matrix.png", title="test confusion matrix")
    plots.plot_per_class_accuracy(
        res["per_class"], classes, out / "per_class_accuracy.png", title="test accuracy per class"
    )
    raw, labels = test_ds.get_batch(np.arange(min(32, len(test_ds))))
    probs = trainer.predict(Tensor(transform(raw), device=trainer.device), probs=True).numpy()
    plots.plot_prediction_grid(raw, labels, probs.argmax(1), classes, out / "predictions.png", probs=probs.max(1))


def plot_training(history: Any, out: Path, cfg: dict[str, Any]) -> None:
    """``curves.png`` (loss and accuracy per epoch) and ``lr.png`` (the learning rate per step) in ``out``."""
    if not data_parallel.is_main():  # (before importing matplotlib: the other ranks never draw)
        return
    from . import plots  # noqa: PLC0415

    title = f"{cfg['arch']} on {cfg['dataset']} ({cfg['recipe']} recipe)"
    if cfg.get("label_smoothing"):  # otherwise the reader wonders why train loss sits above test loss
        title += f"; train loss includes label smoothing {cfg['label_smoothing']}"
    plots.plot_curves(history, out / "curves.png", title=title)
    plots.plot_lr(history, out / "lr.png")


def training_speed(history: Any) -> tuple[float, float]:
    """``(minutes, images/s)`` of a run's training so far: minutes over every session (resumes
    included), and the median of the epochs' training images per second (NaN before any epoch)."""
    seconds = [r.get("seconds") or 0.0 for r in history.epochs]
    rates = [r["images_per_sec"] for r in history.epochs if r.get("images_per_sec")]
    return sum(s for s in seconds if math.isfinite(s)) / 60, float(np.median(rates)) if rates else math.nan


def write_config(out: Path, cfg: dict[str, Any]) -> None:
    """``config.json``: the run's settings (what ``--resume`` continues with), written atomically (rank 0)."""
    if not data_parallel.is_main():
        return
    atomic_write_json(out / "config.json", cfg)


#: every file a run writes into its folder (what ``overwrite`` deletes first; nothing else is touched)
RUN_FILES = tuple(
    "last.npz best.npz config.json history.json history.csv history_steps.csv curves.png lr.png "
    "confusion_matrix.png per_class_accuracy.png predictions.png test_summary.json".split()
)

#: ``--subset`` draws the same dev and test images in every quick run (the training subset follows the seed)
SUBSET_SEEDS = {"dev": 1, "test": 2}


def dataset_settings(name: str) -> dict[str, Any]:
    """What a run's config records about its data set ``name``: its classes, channels, image size, mean and std."""
    info = catalog.info(name)
    return {
        "num_classes": info.num_classes,
        "in_channels": info.channels,
        "classes": list(info.classes),
        "mean": list(info.mean),
        "std": list(info.std),
        "image_size": info.image_size,
    }


def load_splits(cfg: dict[str, Any], download: bool = False, eval_only: bool = False) -> dict[str, Any]:
    """A run's data: ``{"train", "dev", "test", "source"}`` for ``cfg``'s ``dataset``, ``data_dir``,
    ``final`` (train on train+dev, no dev) and ``subset`` (at most that many images per split);
    ``train``/``dev`` are None when ``eval_only``.  A :class:`DataError` (the data module's one-line
    message) when the data cannot be used."""
    name, root, n = cfg["dataset"], cfg["data_dir"], cfg.get("subset")
    try:
        test = catalog.open_split(name, root, "test", download=download)
        train = dev = None
        if not eval_only:
            train = catalog.open_split(name, root, "train+dev" if cfg["final"] else "train")
            dev = None if cfg["final"] else catalog.open_split(name, root, "dev")
    except (OSError, ValueError) as exc:  # FileNotFoundError, DownloadError, CIFAR10FormatError, IDXFormatError
        raise DataError(str(exc)) from None
    return {
        "train": None if train is None else random_subset(train, n, cfg["seed"]),
        "dev": None if dev is None else random_subset(dev, n, SUBSET_SEEDS["dev"]),
        "test": random_subset(test, n, SUBSET_SEEDS["test"]),
        "source": getattr(test, "source_note", None) or f"{name} from {test.source}",
    }


def train_loader(dataset: Any, cfg: dict[str, Any]) -> DataLoader:
    """Shuffled, augmented batches of ``dataset`` as ``cfg``'s recipe trains on them (``batch_size``,
    ``seed``, ``augment``, ``cutout``), on ``cfg["device"]``, prepared by ``num_workers`` threads."""
    shard = data_parallel.sampler(dataset, cfg, train=True)  # None unless the run is data-parallel
    return DataLoader(
        dataset,
        batch_size=cfg["batch_size"],
        shuffle=shard is None,
        sampler=shard,
        seed=cfg["seed"],
        transform=Recipe.from_config(cfg).train_transform(catalog.info(cfg["dataset"])),
        device=cfg["device"],
        prefetch=cfg["prefetch"],
        num_workers=cfg["num_workers"],
    )


def eval_loader(dataset: Any, cfg: dict[str, Any]) -> DataLoader:
    """Batches of ``dataset`` for evaluation: in order, the data set's eval transform, on ``cfg["device"]``."""
    transform, shard = eval_transform(catalog.info(cfg["dataset"])), data_parallel.sampler(dataset, cfg, train=False)
    return DataLoader(dataset, cfg["eval_batch_size"], transform=transform, device=cfg["device"], sampler=shard)


def describe_run(cfg: dict[str, Any], num_parameters: int, sizes: dict[str, int], notes: dict[str, str]) -> str:
    """What a run is, in a few lines; ``notes`` adds the data source (``source``), how ranks split
    the work (``parallel``), a speed hint (``note``), resume details (``resumed``, ``changed``)
    and what happened to the folder (``folder``)."""
    stem = "3x3 conv, no max-pool" if cfg["stem"] == "cifar" else "7x7/2 conv + 3x3/2 max-pool"
    how = Recipe.from_config(cfg).describe(catalog.info(cfg["dataset"]))
    split = "train+dev (final model = last epoch)" if cfg["final"] else "train, best epoch chosen on dev"
    quick = " (--subset: a quick run, evaluated on a subset too)" if cfg.get("subset") else ""
    width = f", width {cfg['width']}" if cfg["width"] != 64 else ""
    images = ", ".join(f"{k} {v:,}" for k, v in sizes.items())
    per_rank = " per rank" if cfg.get("distributed") else ""
    lines = [
        f"{cfg['arch']} on {cfg['dataset']} -- recipe {cfg['recipe']!r} -- device {cfg['device']}",
        f"  model     {cfg['stem']} stem ({stem}){width}, {num_parameters:,} parameters",
        f"  data      {split}: {images} images{quick}; augmentation: {how['augmentation']}",
        f"            {notes['source']}",
        f"  optimizer {how['optimizer']}, lr {cfg['lr']:g} at batch {cfg['batch_size']}{per_rank}, "
        f"weight decay {cfg['weight_decay']:g} (not on BN/bias)",
        f"  schedule  {how['schedule']} over {cfg['epochs']} epochs; label smoothing {cfg['label_smoothing']:g}",
        *(f"  {key:<9s} {notes[key]}" for key in ("parallel", "note", "resumed", "changed") if notes.get(key)),
        f"  output    {cfg['out']} {notes.get('folder', '')}".rstrip(),
    ]
    return "\n".join(lines)


def write_test_summary(trainer: Any, cfg: dict[str, Any], test_ds: Any, checkpoint: str | None, **extra: Any) -> dict:
    """:func:`test_report` of ``trainer``'s model on ``test_ds`` into ``cfg["out"]``, and its numbers
    with ``checkpoint`` and ``extra`` in ``test_summary.json`` there; returns that summary."""
    info, out = catalog.info(cfg["dataset"]), Path(cfg["out"])
    report = test_report(trainer, eval_loader(test_ds, cfg), list(info.classes), out, eval_transform(info))
    summary = {"checkpoint": checkpoint, "dataset": cfg["dataset"], "arch": cfg["arch"], **report, **extra}
    if not data_parallel.is_main():  # every rank took part in the evaluation; rank 0 writes it down
        return summary
    atomic_write_json(out / "test_summary.json", summary)
    return summary
