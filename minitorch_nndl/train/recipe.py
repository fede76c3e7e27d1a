"""The pieces of a training recipe: optimizer, per-step learning-rate schedule, data transforms.

What ``examples/resnet18_cifar10.py`` trains with, as functions a program calls with its settings:

* :func:`build_optimizer` -- SGD (optionally Nesterov) or Adam, weight decay on weights only
  (never on BatchNorm parameters or biases: :func:`~minitorch_nndl.optim.split_weight_decay`);
* :func:`build_scheduler` -- ``"cosine"`` (linear warm-up, then cosine decay to 0),
  ``"step"`` (warm-up, then x0.1 at 50% and 75%), ``"onecycle"`` or ``"none"``, stepped every batch;
  :func:`rebuild_scheduler` plans it anew for a resumed run that was given new epochs or lr;
* :func:`eval_transform` / :func:`train_transform` -- to tensors and normalized with the data
  set's mean and std; for training optionally random crop + horizontal flip (+ cutout).
"""

from __future__ import annotations

from typing import Any

from .. import nn, optim
from ..data import DatasetInfo, transforms

__all__ = [
    "SCHEDULES",
    "build_optimizer",
    "build_scheduler",
    "crop_padding",
    "eval_transform",
    "rebuild_scheduler",
    "train_transform",
]

SCHEDULES = ("onecycle", "cosine", "step", "none")


def build_optimizer(
    model: nn.Module, name: str, lr: float, momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 0.0
) -> Any:
    """``"sgd"`` (Nesterov when ``nesterov`` and ``momentum > 0``) or ``"adam"``; no decay on BN/bias."""
    groups = optim.split_weight_decay(model, weight_decay)
    if name == "adam":
        return optim.Adam(groups, lr=lr)
    return optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)


def build_scheduler(
    opt: Any, steps_per_epoch: int, schedule: str, lr: float, epochs: int, warmup_epochs: float = 0.0
) -> Any:
    """The per-step schedule of ``schedule`` over ``epochs`` (or None for ``"none"``).

    The warm-up (``"cosine"`` and ``"step"``) rises linearly from 1% of ``lr`` over
    ``warmup_epochs`` and always leaves at least one step for the decay after it.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"build_scheduler: schedule must be one of {SCHEDULES}, got {schedule!r}")
    total = max(1, epochs * steps_per_epoch)
    warm = min(int(round(warmup_epochs * steps_per_epoch)), total - 1)
    sched = optim.lr_scheduler
    if schedule == "none":
        return None
    if schedule == "onecycle":
        return sched.OneCycleLR(opt, max_lr=lr, total_steps=total)
    if schedule == "cosine":
        main = sched.CosineAnnealingLR(opt, T_max=max(1, total - warm))
    else:  # step: x0.1 at 50% and 75% of the run
        main = sched.MultiStepLR(opt, milestones=[int(0.5 * (total - warm)), int(0.75 * (total - warm))], gamma=0.1)
    if warm <= 0:
        return main
    warmup = sched.LinearLR(opt, start_factor=0.01, end_factor=1.0, total_iters=warm)
    return sched.SequentialLR(opt, [warmup, main], milestones=[warm])


def rebuild_scheduler(opt: Any, steps_per_epoch: int, steps_done: int, **settings: Any) -> Any:
    """:func:`build_scheduler` with new ``settings`` on a restored optimizer, advanced to ``steps_done``.

    The learning rate then is what a run planned with these settings from the start would use
    at this step; the steps already taken keep the rates they had.
    """
    for group in opt.param_groups:  # the base rate the schedule scales (the restored one is the old lr)
        group["lr"] = group["initial_lr"] = settings["lr"]
    sched = build_scheduler(opt, steps_per_epoch, **settings)
    for _ in range(steps_done if sched is not None else 0):
        sched.step()
    return sched


def crop_padding(info: DatasetInfo) -> int:
    """Zero padding of the random crop: 4 pixels for 32x32 images, 2 for smaller ones (28x28 Fashion-MNIST)."""
    return 4 if info.image_size >= 32 else 2


def eval_transform(info: DatasetInfo) -> Any:
    """uint8 images -> float tensors normalized with the data set's per-channel mean and std."""
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(info.mean, info.std)])


def train_transform(info: DatasetInfo, augment: bool = True, cutout: int = 0) -> Any:
    """:func:`eval_transform` after a random crop and horizontal flip (when ``augment``), then cutout
    of a ``cutout``-pixel square (when non-zero)."""
    if not augment:
        return eval_transform(info)
    steps: list[Any] = [
        transforms.RandomCrop(info.image_size, padding=crop_padding(info)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(info.mean, info.std),
    ]
    if cutout:
        steps.append(transforms.Cutout(cutout))
    return transforms.Compose(steps)
