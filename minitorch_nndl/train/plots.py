"""Pictures of a training run, as PNG files (matplotlib with the non-interactive Agg backend).

* :func:`plot_curves` -- loss and accuracy per epoch for train and dev (plus the
  per-step training loss), the figure a write-up shows first;
* :func:`plot_lr` -- the learning-rate schedule actually used, per step;
* :func:`plot_confusion_matrix` -- rows are true classes, columns predictions;
* :func:`plot_prediction_grid` -- test images with predicted vs true labels, wrong ones in red;
* :func:`plot_per_class_accuracy` -- one bar per class.

Every function takes host data (NumPy arrays, lists, a :class:`History`) and a path,
writes the PNG and closes the figure (no pyplot state leaks between calls).
Host-only code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .history import History  # noqa: E402

__all__ = [
    "plot_curves",
    "plot_lr",
    "plot_confusion_matrix",
    "plot_prediction_grid",
    "plot_per_class_accuracy",
    "images_for_display",
]


def _finite(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _no_data(ax: Any, message: str) -> None:
    """Say so in the middle of an empty axes, instead of leaving a blank frame."""
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def _integer_ticks(ax: Any) -> None:
    """Epochs and steps are whole numbers: no 2.25 on the x axis."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _curves_figure(history: History, title: str | None = None) -> Any:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.array([r["epoch"] for r in history.epochs], dtype=np.float64)  # numbered from 1
    if history.steps:
        steps_epoch = np.array([r["epoch"] for r in history.steps], dtype=np.float64)
        step_loss = _finite([r.get("loss") for r in history.steps])
        # place each step inside its epoch: epoch e spans (e - 1, e]
        x = np.empty_like(steps_epoch)
        for e in np.unique(steps_epoch):
            idx = np.nonzero(steps_epoch == e)[0]
            x[idx] = e - 1 + (np.arange(idx.size) + 1) / idx.size
        ax_loss.plot(x, step_loss, color="tab:blue", alpha=0.45, linewidth=1.0, label="train (per step)")
    size = 6 if epochs.size <= 40 else 3  # a marker on every epoch, so one epoch is a visible point
    for split, color in (("train", "tab:blue"), ("dev", "tab:orange"), ("test", "tab:green")):
        loss = _finite(history.column(f"{split}_loss"))
        acc = _finite(history.column(f"{split}_acc"))
        if np.isfinite(loss).any():
            ax_loss.plot(epochs, loss, "o-", color=color, label=f"{split} (epoch)", markersize=size, linewidth=1.8)
        if np.isfinite(acc).any():
            ax_acc.plot(epochs, 100 * acc, "o-", color=color, label=split, markersize=size, linewidth=1.8)
    dev_acc = _finite(history.column("dev_acc"))
    if np.isfinite(dev_acc).any():  # the best epoch in the legend, where no tick or curve can hide it
        best = int(np.nanargmax(dev_acc))
        ax_acc.plot(
            epochs[best],
            100 * dev_acc[best],
            "*",
            color="tab:red",
            markersize=14,
            zorder=3,
            label=f"best dev {100 * dev_acc[best]:.2f}% (epoch {epochs[best]:.0f})",
        )
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_title(name)
        if not ax.has_data():
            _no_data(ax, "no epochs yet" if ax is ax_acc or not history.steps else "no steps yet")
            continue
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if ax is ax_loss else "accuracy (%)")
        last = max([1.0, *epochs.tolist(), *(r["epoch"] for r in history.steps)])  # the last epoch begun
        ax.set_xlim(-0.05 * last, last * 1.05 + 0.1)  # from the start of training, so one epoch is not a lone dot
        ax.margins(y=0.12)  # room for the markers (and the star) at the extremes
        _integer_ticks(ax)
        ax.grid(alpha=0.3)
        # below the axes: inside, some run's curves or markers would always end up under it
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(history: History, path: str | os.PathLike, title: str | None = None) -> Path:
    """Loss (left) and accuracy (right) against epochs, for train and dev (and a monitored test set).

    The per-step training loss is drawn inside each epoch; every epoch value is a marker, so
    a one-epoch run still shows its points; the best dev accuracy is starred and named in the
    legend.  An empty history gives axes that say "no epochs yet".
    """
    return _save(_curves_figure(history, title), path)


def _lr_figure(history: History) -> Any:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.set_title("learning-rate schedule")
    if history.steps:
        x, lr, unit = [r["step"] for r in history.steps], _finite([r.get("lr") for r in history.steps]), "step"
    else:
        x, lr, unit = [r["epoch"] for r in history.epochs], _finite(history.column("lr")), "epoch"
    if not x:
        _no_data(ax, "no steps yet")
        return fig
    few = len(x) <= 40
    ax.plot(x, lr, "o-" if few else "-", markersize=4)
    ax.set_xlabel(unit)
    ax.set_ylabel("learning rate")
    _integer_ticks(ax)
    ax.grid(alpha=0.3)
    return fig


def plot_lr(history: History, path: str | os.PathLike) -> Path:
    """The learning rate of every optimizer step (or of every epoch when steps were not logged)."""
    return _save(_lr_figure(history), path)


def plot_confusion_matrix(
    matrix: np.ndarray,
    class_names: Sequence[str] | None,
    path: str | os.PathLike,
    normalize: bool = True,
    title: str = "confusion matrix",
) -> Path:
    """Counts (or row-normalized fractions) with the class names on both axes."""
    m = np.asarray(matrix, dtype=np.float64)
    c = m.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    shown = m / np.maximum(m.sum(axis=1, keepdims=True), 1) if normalize else m
    size = max(4.5, 0.55 * c + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title + (" (rows sum to 1)" if normalize else ""))
    if c <= 20:
        threshold = np.nanmax(shown) / 2 if shown.size else 0
        for i in range(c):
            for j in range(c):
                text = f"{shown[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
                color = "white" if shown[i, j] > threshold else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    return _save(fig, path)


def images_for_display(images: np.ndarray, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
    """NHWC float images in [0, 1] from NCHW (normalized) float or NHWC uint8 input."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float64) / 255.0
        if x.ndim == 3:
            x = x[..., None]
        return np.clip(x, 0, 1)
    x = x.astype(np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if mean is not None and std is not None:
        m = np.asarray(mean, dtype=np.float64).reshape(1, -1, 1, 1)
        s = np.asarray(std, dtype=np.float64).reshape(1, -1, 1, 1)
        x = x * s + m
    return np.clip(x.transpose(0, 2, 3, 1), 0, 1)


def plot_prediction_grid(
    images: np.ndarray,
    true_labels: Sequence[int],
    pred_labels: Sequence[int],
    class_names: Sequence[str] | None,
    path: str | os.PathLike,
    probs: Sequence[float] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    ncols: int = 8,
) -> Path:
    """A grid of images titled "pred (true)"; wrong predictions in red with a red frame."""
    x = images_for_display(images, mean, std)
    n = x.shape[0]
    names = list(class_names) if class_names is not None else None
    ncols = max(1, min(ncols, n))
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        img = x[k]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        t, p = int(true_labels[k]), int(pred_labels[k])
        tn = names[t] if names else str(t)
        pn = names[p] if names else str(p)
        wrong = t != p
        label = pn if not wrong else f"{pn}\n(true: {tn})"
        if probs is not None:
            label = f"{pn} {100 * float(probs[k]):.0f}%" + ("" if not wrong else f"\n(true: {tn})")
        ax.set_title(label, fontsize=7, color="red" if wrong else "green")
        if wrong:
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(2)
    n_wrong = int(np.sum(np.asarray(true_labels[:n]) != np.asarray(pred_labels[:n])))
    fig.suptitle(f"predictions (green: right, red: wrong; {n_wrong} of {n} wrong)", fontsize=9)
    return _save(fig, path)


def _per_class_figure(accuracy: Sequence[float], class_names: Sequence[str] | None, title: str = "") -> Any:
    acc = _finite(list(accuracy))
    c = acc.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    fig, ax = plt.subplots(figsize=(6, 0.35 * c + 1.5))
    pct = 100 * np.nan_to_num(acc)
    ax.barh(range(c), pct, color="tab:blue")
    ax.set_yticks(range(c))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    for i, (a, p) in enumerate(zip(acc, pct)):
        text = "n/a" if np.isnan(a) else f"{100 * a:.1f}%"
        if p >= 20:  # inside the bar, at its base: never past the frame, never under the mean line
            ax.text(1, i, text, va="center", ha="left", fontsize=7, color="white")
        else:
            ax.text(p + 1, i, text, va="center", ha="left", fontsize=7)
    heading = title or "per-class accuracy"
    if np.isfinite(acc).any():  # the mean goes in the title: a legend box would cover a bar
        mean = 100 * np.nanmean(acc)
        ax.axvline(mean, color="tab:orange", linestyle="--")
        heading += f" (dashed: mean {mean:.1f}%)"
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(heading)
    return fig


def plot_per_class_accuracy(
    accuracy: Sequence[float], class_names: Sequence[str] | None, path: str | os.PathLike, title: str = ""
) -> Path:
    """Horizontal bars of per-class accuracy, labelled with their values, with the mean as a dashed line."""
    return _save(_per_class_figure(accuracy, class_names, title), path)
