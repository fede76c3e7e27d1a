"""Learning-rate schedules: functions of the step count written into ``group["lr"]``.

Every scheduler here computes its learning rates in **closed form** from the
base learning rates and ``last_epoch`` (how many times ``step()`` was called),
so the values never drift and a scheduler can be resumed from its state dict.
The sequences equal PyTorch's ``torch.optim.lr_scheduler`` (which uses
equivalent recursive updates) up to floating-point rounding.

Usage, identical to PyTorch::

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = CosineAnnealingLR(opt, T_max=epochs)
    for epoch in range(epochs):
        train_one_epoch(...)      # many opt.step() calls
        sched.step()              # or step per batch: the choice of unit is yours

Construction already applies the value for ``last_epoch = 0`` and stores each
group's starting learning rate as ``group["initial_lr"]``.  Because the values
are closed forms, two schedulers attached to the same optimizer do *not*
multiply (the last one to step wins); chain schedules with :class:`SequentialLR`.
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from ..tensor import Tensor
from .optimizer import Optimizer
from .sgd import SGD

__all__ = [
    "CosineAnnealingLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "SequentialLR",
    "StepLR",
    "lr_sequence",
]


class LRScheduler:
    """Base class: keeps ``last_epoch`` and ``base_lrs``; subclasses write :meth:`lr_at`.

    Args:
        optimizer: the optimizer whose ``param_groups[i]["lr"]`` this scheduler sets.
        last_epoch: -1 to start a new schedule.  A value ``k >= 0`` resumes one
            (the groups must carry ``"initial_lr"``, as after loading an optimizer
            state dict) and the constructor then applies the value for step ``k + 1``,
            as PyTorch does.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", float(group["lr"]))
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr'; resuming with "
                        "last_epoch >= 0 needs the optimizer's state dict loaded first"
                    )
        self.base_lrs: list[float] = [float(group["initial_lr"]) for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr: list[float] = [float(group["lr"]) for group in optimizer.param_groups]
        self.step()

    def lr_at(self, epoch: int) -> list[float]:
        """The learning rate of every parameter group after ``epoch`` steps (closed form)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step (an epoch or a batch, as the caller decides) and set the new learning rates."""
        self.last_epoch += 1
        self._apply(self.lr_at(self.last_epoch))

    def _apply(self, lrs: Sequence[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = float(lr)
        self._last_lr = [float(group["lr"]) for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates this scheduler set most recently, one per parameter group."""
        return list(self._last_lr)

    _not_saved: tuple[str, ...] = ("optimizer",)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (and functions, which cannot be saved): Python numbers, lists, strings."""
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items() if key not in self._not_saved}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` and write the restored learning rates into the optimizer."""
        for key, value in state_dict.items():
            if key not in self._not_saved:
                setattr(self, key, copy.deepcopy(value))
        self.last_epoch = int(self.last_epoch)
        self._apply(self._last_lr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(epoch)``; ``lr_lambda`` is one function or one per group.

    The functions are not part of ``state_dict()``: build the scheduler with the
    same functions before loading a state.
    """

    _not_saved = ("optimizer", "lr_lambdas")

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        n = len(optimizer.param_groups)
        if callable(lr_lambda):
            self.lr_lambdas = [lr_lambda] * n
        else:
            if len(lr_lambda) != n:
                raise ValueError(f"LambdaLR: expected {n} lr_lambdas (one per group), got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        return [base * fn(epoch) for base, fn in zip(self.base_lrs, self.lr_lambdas)]


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)``: divide by 1/gamma every ``step_size`` steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        return [base * self.gamma ** (epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr = base_lr * gamma ** (number of milestones <= epoch)``: decay at chosen steps (e.g. [100, 150])."""

    def __init__(
        self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        return [base * self.gamma ** bisect_right(self.milestones, epoch) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Half a cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` steps (SGDR without restarts).

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``.
    Past ``T_max`` the formula keeps going (the rate rises again), as in PyTorch.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        c = (1.0 + math.cos(math.pi * epoch / self.T_max)) / 2.0
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale ``base_lr`` by a factor going linearly from ``start_factor`` to ``end_factor`` in ``total_iters`` steps.

    ``lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters)``; the usual
    learning-rate warm-up.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0.0 <= end_factor <= 1.0:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        if total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be a positive integer, got {total_iters}")
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        frac = min(epoch, self.total_iters) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * frac
        return [base * factor for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018): warm up to ``max_lr``, then anneal far below the start.

    Over ``total_steps`` steps (one ``step()`` per batch), with
    ``initial = max_lr / div_factor`` and ``min = initial / final_div_factor``:

    * two phases (default): ``initial -> max_lr`` until step ``pct_start * total_steps - 1``,
      then ``max_lr -> min`` until step ``total_steps - 1``;
    * ``three_phase=True``: ``initial -> max_lr -> initial`` symmetrically, then ``initial -> min``.

    Each phase interpolates with ``anneal_strategy`` "cos"
    (``end + (start - end) * (1 + cos(pi * pct)) / 2``) or "linear".  Only the
    learning rate is cycled: unlike PyTorch's default (``cycle_momentum=True``)
    this scheduler leaves momentum / beta1 alone, so it matches PyTorch's
    ``OneCycleLR(..., cycle_momentum=False)``.  Stepping past ``total_steps``
    raises ValueError.  ``max_lr`` may be one value per group; ``total_steps``
    may be given as ``epochs * steps_per_epoch`` instead.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
            total_steps = int(epochs) * int(steps_per_epoch)
        if total_steps <= 0:
            raise ValueError(f"OneCycleLR: total_steps must be positive, got {total_steps}")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        n = len(optimizer.param_groups)
        if isinstance(max_lr, (list, tuple)):
            if len(max_lr) != n:
                raise ValueError(f"OneCycleLR: expected {n} max_lr values (one per group), got {len(max_lr)}")
            max_lrs = [float(v) for v in max_lr]
        else:
            max_lrs = [float(max_lr)] * n
        self.total_steps = int(total_steps)
        self.anneal_strategy = anneal_strategy
        self.max_lrs = max_lrs
        self.initial_lrs = [m / div_factor for m in max_lrs]
        self.min_lrs = [i / final_div_factor for i in self.initial_lrs]
        # Phases as (end_step, start-of-phase name, end-of-phase name), as PyTorch lays them out.
        pct_steps = float(pct_start * self.total_steps)
        if three_phase:
            self.phases = [
                (pct_steps - 1, "initial", "max"),
                (2 * pct_steps - 2, "max", "initial"),
                (float(self.total_steps - 1), "initial", "min"),
            ]
        else:
            self.phases = [(pct_steps - 1, "initial", "max"), (float(self.total_steps - 1), "max", "min")]
        if last_epoch == -1:
            for group, initial, peak, low in zip(optimizer.param_groups, self.initial_lrs, max_lrs, self.min_lrs):
                group["initial_lr"] = initial
                group["max_lr"] = peak
                group["min_lr"] = low
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def lr_at(self, epoch: int) -> list[float]:
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {epoch} times, but total_steps is {self.total_steps}")
        lrs = []
        for i in range(len(self.max_lrs)):
            values = {"initial": self.initial_lrs[i], "max": self.max_lrs[i], "min": self.min_lrs[i]}
            start_step = 0.0
            for k, (end_step, start, end) in enumerate(self.phases):
                if epoch <= end_step or k == len(self.phases) - 1:
                    pct = (epoch - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(values[start], values[end], pct))
                    break
                start_step = end_step
        return lrs


class SequentialLR(LRScheduler):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` from its own step 0, and so on.

    The usual warm-up then cosine::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = CosineAnnealingLR(opt, T_max=epochs - 5)
        sched = SequentialLR(opt, [warmup, cosine], milestones=[5])

    At step ``e`` the active scheduler ``i`` (the number of milestones ``<= e``)
    is evaluated at its local step ``e - milestones[i - 1]``.  All schedulers
    must share ``optimizer``; their state is saved inside this one's.
    """

    _not_saved = ("optimizer", "_schedulers")

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        if len(schedulers) < 1:
            raise ValueError("SequentialLR: expects at least one scheduler")
        for i, sched in enumerate(schedulers):
            if not isinstance(sched, LRScheduler):
                raise TypeError(f"SequentialLR: schedulers[{i}] is a {type(sched).__name__}, not an LRScheduler")
            if sched.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{i}] belongs to a different optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: expects one milestone fewer than schedulers, got {len(schedulers)} schedulers "
                f"and {len(milestones)} milestones"
            )
        if list(milestones) != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must be increasing, got {list(milestones)}")
        if last_epoch != -1:
            raise ValueError("SequentialLR: resume with load_state_dict() instead of last_epoch")
        self._schedulers = list(schedulers)
        self.milestones = [int(m) for m in milestones]
        for group in optimizer.param_groups:  # undo what the sub-schedulers' constructors wrote
            group["lr"] = group["initial_lr"]
        for sched in self._schedulers:
            sched.last_epoch = -1
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        idx = bisect_right(self.milestones, epoch)
        start = self.milestones[idx - 1] if idx > 0 else 0
        return self._schedulers[idx].lr_at(epoch - start)

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self.milestones, self.last_epoch)
        sched = self._schedulers[idx]
        sched.last_epoch = self.last_epoch - (self.milestones[idx - 1] if idx > 0 else 0)
        sched._apply(sched.lr_at(sched.last_epoch))
        self._last_lr = sched.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["_schedulers"] = [sched.state_dict() for sched in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for sched, saved in zip(self._schedulers, state_dict["_schedulers"], strict=True):
            sched.load_state_dict(saved)
        super().load_state_dict(state_dict)


def lr_sequence(
    make_scheduler: Callable[[Optimizer], LRScheduler], steps: int, lr: float = 0.1, groups: int = 1
) -> list[list[float]]:
    """The learning rates a schedule produces over ``steps`` steps (for plots and tests).

    ``make_scheduler(optimizer)`` builds the scheduler on a throw-away SGD
    optimizer with ``groups`` groups of base rate ``lr``.  Row ``e`` holds every
    group's rate after ``e`` calls of ``step()`` (row 0 is the starting value).

    >>> rows = lr_sequence(lambda opt: StepLR(opt, step_size=2, gamma=0.5), steps=5, lr=1.0)
    >>> [round(r[0], 3) for r in rows]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    params = [{"params": [Tensor([0.0], requires_grad=True)]} for _ in range(groups)]
    scheduler = make_scheduler(SGD(params, lr=lr))
    rows = [scheduler.get_last_lr()]
    for _ in range(steps - 1):
        scheduler.step()
        rows.append(scheduler.get_last_lr())
    return rows
