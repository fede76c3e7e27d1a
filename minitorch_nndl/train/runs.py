"""A training run on disk: its folder, its checkpoints, its test report.

* :func:`fresh_folder` / :func:`prepare_folder` -- a new run never replaces an earlier one: it
  goes to ``<folder>-2`` (``-3``, ...) unless ``overwrite``, and nothing is created until every
  input has been checked;
* :func:`read_run_checkpoint`, :func:`check_resumable`, :func:`resume` -- load the checkpoint a
  program is told to resume from or evaluate, refuse a resume that cannot continue (older than the
  run's ``last.npz``, no epochs left, shorter than the warm-up), and continue a Trainer from it;
* :func:`stop_hint` -- after Ctrl-C or a diverged run, the command that continues it;
* :func:`restore_best`, :func:`test_report`, :func:`plot_training` -- the model a run chose, its
  test-set numbers and the figures.

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

from ..cli import DataError, UsageError, without_option
from ..tensor import Tensor
from .checkpoint import CheckpointError, load_checkpoint, restore_model
from .metrics import Accuracy, ConfusionMatrix, PerClassAccuracy, TopKAccuracy
from .recipe import Recipe

__all__ = [
    "check_latest",
    "check_resumable",
    "fresh_folder",
    "plot_training",
    "prepare_folder",
    "read_run_checkpoint",
    "restore_best",
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


def resume(trainer: Any, checkpoint: str | Path, steps_per_epoch: int, replan: Recipe | None = None) -> str:
    """Continue ``trainer`` from ``checkpoint``: model, optimizer, schedule, position and history.

    With ``replan`` (the run's recipe given new epochs or lr) the learning-rate schedule is planned
    anew for it and advanced to the step reached; returns a note saying so ("" without).
    """
    trainer.load(checkpoint)
    if replan is None:
        return ""
    before = trainer.lr()
    trainer.scheduler = replan.build_scheduler(trainer.optimizer, steps_per_epoch, trainer.global_step)
    return (
        f"the learning-rate schedule is rebuilt for lr {replan.lr:g} over {replan.epochs} epochs and "
        f"continues at step {trainer.global_step} (lr {before:.4g} -> {trainer.lr():.4g})"
    )


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
    from . import plots  # noqa: PLC0415  (matplotlib only when a report is drawn)

    nc, test_ds = len(classes), loader.dataset
    metrics = {
        "acc": Accuracy(),
        "top3": TopKAccuracy(min(3, nc)),
        "confusion": ConfusionMatrix(nc),
        "per_class": PerClassAccuracy(nc),
    }
    t0 = time.perf_counter()
    res = trainer.evaluate(loader, metrics=metrics)
    plots.plot_confusion_matrix(res["confusion"], classes, out / "confusion_matrix.png", title="test confusion matrix")
    plots.plot_per_class_accuracy(
        res["per_class"], classes, out / "per_class_accuracy.png", title="test accuracy per class"
    )
    raw, labels = test_ds.get_batch(np.arange(min(32, len(test_ds))))
    probs = trainer.predict(Tensor(transform(raw), device=trainer.device), probs=True).numpy()
    plots.plot_prediction_grid(raw, labels, probs.argmax(1), classes, out / "predictions.png", probs=probs.max(1))
    return {
        "n_test": len(test_ds),
        "test_acc": res["acc"],
        "test_top3": res["top3"],
        "test_loss": res["loss"],
        "per_class_acc": {n: (None if math.isnan(v) else float(v)) for n, v in zip(classes, res["per_class"])},
        "confusion_matrix": res["confusion"].tolist(),
        "eval_seconds": time.perf_counter() - t0,
    }


def plot_training(history: Any, out: Path, title: str) -> None:
    """``curves.png`` (loss and accuracy per epoch) and ``lr.png`` (the learning rate per step) in ``out``."""
    from . import plots  # noqa: PLC0415

    plots.plot_curves(history, out / "curves.png", title=title)
    plots.plot_lr(history, out / "lr.png")
