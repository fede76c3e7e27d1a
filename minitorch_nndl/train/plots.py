"""Pictures of a training run, as PNG files (matplotlib with the non-interactive Agg backend).

* :func:`plot_curves` -- loss and accuracy per epoch for train and dev (plus the
  per-step training loss, faint), the figure a write-up shows first;
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


def plot_curves(history: History, path: str | os.PathLike, title: str | None = None) -> Path:
    """Loss (left) and accuracy (right) against epochs, for train and dev (and a monitored test set)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.array([r["epoch"] for r in history.epochs], dtype=np.float64) + 1.0
    if history.steps:
        steps_epoch = np.array([r["epoch"] for r in history.steps], dtype=np.float64)
        step_loss = _finite([r.get("loss") for r in history.steps])
        # place each step inside its epoch: epoch e spans (e, e+1]
        x = np.empty_like(steps_epoch)
        for e in np.unique(steps_epoch):
            idx = np.nonzero(steps_epoch == e)[0]
            x[idx] = e + (np.arange(idx.size) + 1) / idx.size
        ax_loss.plot(x, step_loss, color="tab:blue", alpha=0.25, linewidth=0.7, label="train (per step)")
    for split, color in (("train", "tab:blue"), ("dev", "tab:orange"), ("test", "tab:green")):
        loss = _finite(history.column(f"{split}_loss"))
        acc = _finite(history.column(f"{split}_acc"))
        if np.isfinite(loss).any():
            ax_loss.plot(epochs, loss, "o-", color=color, label=f"{split} (epoch)", markersize=3)
        if np.isfinite(acc).any():
            ax_acc.plot(epochs, 100 * acc, "o-", color=color, label=split, markersize=3)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy")
    dev_acc = _finite(history.column("dev_acc"))
    if np.isfinite(dev_acc).any():
        best = int(np.nanargmax(dev_acc))
        ax_acc.annotate(
            f"best dev {100 * dev_acc[best]:.2f}%",
            (epochs[best], 100 * dev_acc[best]),
            textcoords="offset points",
            xytext=(-40, -18),
            fontsize=8,
        )
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_lr(history: History, path: str | os.PathLike) -> Path:
    """The learning rate of every optimizer step (or of every epoch when steps were not logged)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if history.steps:
        ax.plot([r["step"] for r in history.steps], _finite([r.get("lr") for r in history.steps]))
        ax.set_xlabel("step")
    else:
        ax.plot([r["epoch"] + 1 for r in history.epochs], _finite(history.column("lr")), "o-")
        ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title("learning-rate schedule")
    ax.grid(alpha=0.3)
    return _save(fig, path)


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


def plot_per_class_accuracy(
    accuracy: Sequence[float], class_names: Sequence[str] | None, path: str | os.PathLike, title: str = ""
) -> Path:
    """Horizontal bars of per-class accuracy, with the mean as a dashed line."""
    acc = _finite(list(accuracy))
    c = acc.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    fig, ax = plt.subplots(figsize=(6, 0.35 * c + 1.5))
    ax.barh(range(c), 100 * np.nan_to_num(acc), color="tab:blue")
    ax.set_yticks(range(c))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    for i, a in enumerate(acc):
        ax.text(100 * np.nan_to_num(a) + 0.5, i, "n/a" if np.isnan(a) else f"{100 * a:.1f}%", va="center", fontsize=7)
    if np.isfinite(acc).any():
        ax.axvline(100 * np.nanmean(acc), color="tab:orange", linestyle="--", label="mean")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlim(0, 105)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(title or "per-class accuracy")
    return _save(fig, path)
