"""Training plots: readable for a run of 0, 1 or many epochs (the figures are inspected, not just written)."""

from __future__ import annotations

import numpy as np
import pytest

from minitorch_nndl.data import CIFAR10
from minitorch_nndl.train import plots
from minitorch_nndl.train.history import History


def _history(epochs: int, steps_per_epoch: int = 5, test: bool = False) -> History:
    """Rows as the Trainer writes them: epochs and steps numbered from 1."""
    h = History()
    step = 0
    for e in range(1, epochs + 1):
        rows = []
        for _ in range(steps_per_epoch):
            step += 1
            rows.append({"step": step, "epoch": e, "loss": 2.0 / step, "lr": 0.1 * min(1.0, step / 4)})
        h.log_steps(rows)
        row = {
            "epoch": e,
            "train_loss": 2.0 / e,
            "train_acc": 0.5 + 0.1 * e,
            "dev_loss": 2.2 / e,
            "dev_acc": 0.4 + 0.1 * e,
        }
        if test:
            row.update(test_loss=2.3 / e, test_acc=0.38 + 0.1 * e)
        h.log_epoch(row | {"lr": 0.1})
    return h


def _drawn(fig):
    fig.canvas.draw()
    return fig


def _integer_ticks(ax) -> bool:
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    return bool(ticks) and all(float(t).is_integer() for t in ticks)


@pytest.mark.parametrize("epochs", [1, 3, 50])
def test_curves_mark_every_epoch_on_whole_epoch_ticks(epochs: int) -> None:
    fig = _drawn(plots._curves_figure(_history(epochs, test=True)))
    ax_loss, ax_acc = fig.axes
    per_epoch = [line for ax in (ax_loss, ax_acc) for line in ax.get_lines() if "per step" not in line.get_label()]
    assert len(per_epoch) == 3 + 3 + 1  # train/dev/test on both panels, and the best-dev star
    assert all(line.get_marker() in ("o", "*") for line in per_epoch)  # one epoch is a visible point, not nothing
    assert all(_integer_ticks(ax) for ax in (ax_loss, ax_acc))
    assert ax_acc.get_xlim()[0] < 0.5 and ax_acc.get_xlim()[1] >= epochs  # from the start of training
    np.testing.assert_array_equal(per_epoch[0].get_xdata(), np.arange(1, epochs + 1))  # epochs are numbered from 1


def test_best_dev_is_named_in_a_legend_outside_the_axes() -> None:
    fig = _drawn(plots._curves_figure(_history(3)))
    ax_acc = fig.axes[1]
    labels = [t.get_text() for t in ax_acc.get_legend().get_texts()]
    assert "best dev 70.00% (epoch 3)" in labels
    assert not ax_acc.texts  # no free-floating annotation that can sit on a tick label
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:  # below the axes, so it covers neither curves nor ticks
        assert ax.get_legend().get_window_extent(renderer).y1 < ax.get_tightbbox(renderer).y1
        assert ax.get_legend().get_window_extent(renderer).y1 <= ax.xaxis.label.get_window_extent(renderer).y0


def test_per_step_loss_is_visible_and_inside_its_epoch() -> None:
    fig = plots._curves_figure(_history(2, steps_per_epoch=4))
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "train (per step)"]
    assert line.get_alpha() >= 0.4 and line.get_linewidth() >= 1.0
    np.testing.assert_allclose(line.get_xdata(), [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0])


def test_steps_of_an_unfinished_epoch_stay_in_view() -> None:
    h = _history(1, steps_per_epoch=4)
    h.log_steps([{"step": 5, "epoch": 2, "loss": 0.3, "lr": 0.1}])  # stopped inside epoch 2
    ax_loss = _drawn(plots._curves_figure(h)).axes[0]
    assert ax_loss.get_xlim()[1] >= 2.0


def test_no_epochs_says_so_instead_of_empty_axes(tmp_path) -> None:
    fig = plots._curves_figure(History())
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["no epochs yet", "no epochs yet"]
    steps_only = History()
    steps_only.log_steps([{"step": 1, "epoch": 1, "loss": 2.0, "lr": 0.1}])
    fig = plots._curves_figure(steps_only)
    assert not fig.axes[0].texts and [t.get_text() for t in fig.axes[1].texts] == ["no epochs yet"]
    assert [t.get_text() for t in plots._lr_figure(History()).axes[0].texts] == ["no steps yet"]
    for path in (plots.plot_curves(History(), tmp_path / "c.png"), plots.plot_lr(History(), tmp_path / "lr.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("steps", [3, 500])
def test_lr_steps_are_whole_numbers(steps: int) -> None:
    h = History()
    h.log_steps([{"step": s, "epoch": 1, "loss": 1.0, "lr": 0.01 * s} for s in range(1, steps + 1)])
    ax = _drawn(plots._lr_figure(h)).axes[0]
    assert _integer_ticks(ax) and ax.get_xlabel() == "step"
    assert (ax.get_lines()[0].get_marker() == "o") == (steps <= 40)  # a few steps are points


def test_per_class_labels_stay_inside_the_frame_and_nothing_covers_a_bar() -> None:
    acc = [1.0, 0.05, float("nan"), 0.5, 0.97, 0.9, 0.8, 0.99, 1.0, 0.0]
    fig = _drawn(plots._per_class_figure(acc, CIFAR10.CLASSES, "test accuracy"))
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    texts = ax.texts
    assert [t.get_text() for t in texts][:3] == ["100.0%", "5.0%", "n/a"]
    for t in texts:
        box = t.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, t.get_text()
    assert ax.get_legend() is None and "mean 69.0%" in ax.get_title()


def test_every_plot_writes_a_png(tmp_path) -> None:
    h = _history(2)
    m = np.eye(10, dtype=np.int64) * 9 + 1
    imgs = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    paths = [
        plots.plot_curves(h, tmp_path / "curves.png", title="t"),
        plots.plot_lr(h, tmp_path / "lr.png"),
        plots.plot_confusion_matrix(m, CIFAR10.CLASSES, tmp_path / "cm.png"),
        plots.plot_per_class_accuracy(np.full(10, 0.9), CIFAR10.CLASSES, tmp_path / "pc.png"),
        plots.plot_prediction_grid(imgs, [0, 1, 2, 3], [0, 1, 3, 3], CIFAR10.CLASSES, tmp_path / "grid.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
