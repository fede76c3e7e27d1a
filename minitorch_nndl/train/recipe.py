"""The pieces of a training recipe: optimizer, per-step learning-rate schedule, data transforms.

What ``examples/resnet18_cifar10.py`` trains with: a :class:`Recipe` holds the settings (as a run's
config stores them) and builds each piece; the functions below build them from plain arguments.

* :func:`build_optimizer` -- SGD (optionally Nesterov) or Adam, weight decay on weights only
  (never on BatchNorm parameters or biases: :func:`~minitorch_nndl.optim.split_weight_decay`);
* :func:`build_scheduler` -- ``"cosine"`` (linear warm-up, then cosine decay to 0),
  ``"step"`` (warm-up, then x0.1 at 50% and 75%), ``"onecycle"`` or ``"none"``, stepped every batch;
  :func:`rebuild_scheduler` plans it anew for a resumed run that was given new epochs or lr;
* :func:`eval_transform` / :func:`train_transform` -- to tensors and normalized with the data
  set's mean and std; for training optionally random crop + horizontal flip (+ cutout).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .. import nn, optim
from ..data import DatasetInfo, transforms

__all__ = [
    "SCHEDULES",
    "Recipe",
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


@dataclass(frozen=True)
class Recipe:
    """How a network is trained: the settings of a run's config that say so, and what they build.

    ``Recipe.from_config(cfg)`` picks these fields out of a run's settings (a dict with more keys);
    the methods build the optimizer, schedule, loss and transforms, and :meth:`describe` says in
    words what they are, for a program's banner.
    """

    epochs: int
    batch_size: int
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 5.0
    label_smoothing: float = 0.1
    augment: bool = True
    cutout: int = 0

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Recipe:
        """The recipe of a run's settings: its fields picked out of ``cfg`` (the defaults for any it lacks)."""
        return cls(**{f.name: cfg[f.name] for f in fields(cls) if f.name in cfg})

    @classmethod
    def named(cls, name: str = "default", dataset: str = "cifar10", **given: Any) -> Recipe:
        """The recipe ``"default"`` (our CIFAR-10 recipe for ResNet18; its full-scale accuracy is not yet
        measured: docs chapter 9) or ``"seed"`` (the course's 73.6% setup), with the ``given`` settings
        that are not None in place of its own.

        The defaults that depend on other settings follow the given ones: ``epochs`` 200 for CIFAR-10 and
        15 for Fashion-MNIST (seed: 30); ``lr`` 0.1 x batch/128 for SGD (the linear scaling rule) and 1e-3
        for Adam (seed: 0.001); ``warmup_epochs`` 5, or epochs/5 but at most 2 below 20 epochs (seed: 0).
        The seed recipe never augments and uses plain momentum: SGD lr 0.001, batch 64, no weight decay,
        schedule or label smoothing.
        """
        if name not in ("default", "seed"):
            raise ValueError(f"Recipe.named: the recipes are 'default' and 'seed', got {name!r}")
        settings = {k: v for k, v in given.items() if v is not None}
        if name == "seed":
            seed = {"epochs": 30, "batch_size": 64, "lr": 0.001, "weight_decay": 0.0, "schedule": "none"}
            settings = {**seed, "warmup_epochs": 0.0, "label_smoothing": 0.0, **settings}
            settings.update(nesterov=False, augment=False)
        settings.setdefault("epochs", 15 if dataset == "fashion-mnist" else 200)
        settings.setdefault("batch_size", 128)
        if "lr" not in settings:
            settings["lr"] = 1e-3 if settings.get("optimizer") == "adam" else 0.1 * settings["batch_size"] / 128
        if "warmup_epochs" not in settings:
            settings["warmup_epochs"] = 5.0 if settings["epochs"] >= 20 else min(2.0, settings["epochs"] / 5)
        return cls(**settings)

    def build_optimizer(self, model: nn.Module) -> Any:
        return build_optimizer(model, self.optimizer, self.lr, self.momentum, self.nesterov, self.weight_decay)

    def build_scheduler(self, opt: Any, steps_per_epoch: int, steps_done: int | None = None) -> Any:
        """The per-step schedule; with ``steps_done``, planned anew on a restored optimizer and advanced
        to that step (:func:`rebuild_scheduler`: a resumed run given new epochs or lr)."""
        settings = {
            "schedule": self.schedule,
            "lr": self.lr,
            "epochs": self.epochs,
            "warmup_epochs": self.warmup_epochs,
        }
        if steps_done is None:
            return build_scheduler(opt, steps_per_epoch, **settings)
        return rebuild_scheduler(opt, steps_per_epoch, steps_done, **settings)

    def loss_fn(self) -> nn.Module:
        """Cross-entropy with the recipe's label smoothing (for training; evaluate without it)."""
        return nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)

    def train_transform(self, info: DatasetInfo) -> Any:
        return train_transform(info, self.augment, self.cutout)

    def describe(self, info: DatasetInfo) -> dict[str, str]:
        """``{"augmentation", "optimizer", "schedule"}`` in words, e.g. ``"SGD nesterov momentum 0.9"``."""
        aug = "none"
        if self.augment:
            aug = f"random crop (pad {crop_padding(info)}) + horizontal flip"
            aug += f" + cutout {self.cutout}" if self.cutout else ""
        opt = (
            "Adam"
            if self.optimizer == "adam"
            else f"SGD{' nesterov' if self.nesterov else ''} momentum {self.momentum}"
        )
        warm = f"{self.warmup_epochs:g} warm-up epochs + "
        schedule = {
            "none": "constant learning rate",
            "cosine": warm + "cosine decay to 0",
            "onecycle": "one-cycle",
            "step": warm + "x0.1 at 50% and 75%",
        }[self.schedule]
        return {"augmentation": aug, "optimizer": opt, "schedule": schedule}
