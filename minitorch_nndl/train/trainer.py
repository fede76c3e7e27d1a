"""``Trainer``: the training loop, written once, with the care a long run needs.

What one :meth:`Trainer.fit` does, epoch by epoch::

    for each batch:    forward -> loss -> backward -> (clip) -> optimizer.step -> scheduler.step
    every log_every:   one host sync: per-step losses, NaN check, progress-bar postfix
    end of epoch:      train loss/accuracy, dev evaluation, history row,
                       last.npz (and best.npz when dev accuracy improved), history.json/csv

This module is the loop; each concern around it has its own module, and each is a lesson
from the seed experiment:

* **No per-batch host syncs** (:mod:`.divergence`, :mod:`.metrics`): losses stay device
  scalars until a log point; accuracy is counted on the device; epoch numbers are
  sample-weighted, so a short last batch weighs what it contains.
* **Exact resume** (:mod:`.position`; :meth:`fit` with ``resume=``): at epoch boundaries and
  in the middle of an epoch, bit-identical on the CPU.
* **Ctrl-C** (:mod:`.interrupt`): the first press stops after the current step and saves
  ``last.npz`` at that exact position; ``fit`` *returns* ``status="interrupted"``.
* **NaN/inf loss** (:mod:`.divergence`, :mod:`.last_good`): the run stops with a message naming
  the step and the epoch (``status="nan"``); no checkpoint is ever written from non-finite
  weights, and on a GPU the model in memory is the one from before the bad step.
* **Checkpoints you can trust** (:mod:`.checkpoint`, :mod:`.atomic`): ``last.npz`` at the end of
  every epoch and on Ctrl-C, ``best.npz`` whenever dev accuracy improves (every epoch when
  there is no dev set), each written atomically.
* **One path for a batch** (:mod:`.placement`): only the DataLoader moves data; the Trainer
  runs where the model is, and a batch on another device is an error naming both.
* **Epochs are numbered from 1** wherever a person reads them (:mod:`.reporting`: the console;
  the history's ``"epoch"`` column; ``best_epoch``).  ``Trainer.epoch`` counts completed epochs.
* **Several ranks** (:mod:`.sharded`; a model wrapped in ``DistributedDataParallel``): the
  gradients are averaged after each backward, the logged loss is the global batch's, evaluation
  counts are summed over the ranks' shards, all ranks stop at the same step, and only rank 0
  prints and writes files.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from . import evaluation, sharded
from .atomic import atomic_copy
from .checkpoint import load_checkpoint, restore_model, restore_optimizer, restore_scheduler, save_checkpoint
from .divergence import NonFiniteLossError, StepLosses, divergence_advice, nan_loss_message, params_finite
from .evaluation import metrics_by_name
from .fit_result import FitResult
from .history import History
from .interrupt import InterruptGuard, StopRequestedError
from .last_good import LastGoodModel
from .metrics import Metric
from .placement import model_device, on_device
from .position import Position, PositionField, rng_state
from .reporting import EpochMeter, Progress, epoch_summary

__all__ = ["Trainer", "FitResult", "NonFiniteLossError"]


def _scalars(prefix: str, result: dict[str, Any]) -> dict[str, Any]:
    """The scalar entries of an evaluation as history columns ``prefix_name``."""
    return {f"{prefix}_{k}": v for k, v in result.items() if isinstance(v, (int, float))}


class Trainer:
    """Train a classifier; evaluate it; keep its best and last checkpoints.

    Args:
        model: an ``nn.Module`` returning logits ``(N, C)``.
        optimizer: an optimizer over ``model.parameters()``.
        loss_fn: ``loss_fn(logits, targets) -> scalar Tensor`` (mean over the batch).
        metrics: metrics for :meth:`evaluate` (a dict name -> Metric, or a list using
            each metric's ``name``); an ``"acc"`` :class:`Accuracy` is always included,
            it selects ``best.npz``.
        scheduler: an LR scheduler, stepped every optimizer step
            (``scheduler_step="batch"``) or every epoch (``"epoch"``).
        device: where the model runs; by default, where its parameters are.  When given and
            the parameters are elsewhere, the model is moved there once, here.  Batches are
            never moved: give the DataLoader the same device (a batch on another device is
            an error naming both).
        out_dir: folder for ``last.npz``, ``best.npz``, ``history.json/csv``; ``None``
            writes nothing.
        quiet: no progress bar (the one-line epoch summaries are still printed, to stdout).
        grad_clip: clip the global gradient norm to this value (no host sync).
        eval_loss_fn: the loss reported by :meth:`evaluate` (default ``loss_fn``; pass a
            plain cross-entropy when training with label smoothing).
        config: a JSON-able dict stored in every checkpoint (the run's settings).
        callbacks: ``fn(trainer)`` called after every optimizer step.
        monitor: extra loaders evaluated after every epoch *for the record only*
            (``{"test": loader}`` adds ``test_loss``/``test_acc`` columns to the history);
            they never influence ``best.npz``.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        metrics: dict[str, Metric] | Sequence[Metric] | None = None,
        scheduler: Any = None,
        device: str | None = None,
        out_dir: str | Path | None = None,
        scheduler_step: str = "batch",
        quiet: bool = False,
        grad_clip: float | None = None,
        eval_loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        config: dict[str, Any] | None = None,
        callbacks: Iterable[Callable[[Trainer], Any]] = (),
        monitor: dict[str, Any] | None = None,
    ) -> None:
        if scheduler_step not in ("batch", "epoch"):
            raise ValueError(f"Trainer: scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}")
        self.model = model
        self.device = model_device(model, device)
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.eval_loss_fn = eval_loss_fn or loss_fn
        self.metrics = metrics_by_name(metrics)
        self.scheduler = scheduler
        self.scheduler_step = scheduler_step
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.quiet = quiet
        self.grad_clip = grad_clip
        self.config = dict(config or {})
        self.callbacks = list(callbacks)
        self.monitor = dict(monitor or {})
        self.history = History()
        self.position = Position()
        self.best_acc = -math.inf
        self.best_epoch: int | None = None
        self._meter = EpochMeter()  # the epoch being trained
        self._losses = StepLosses()  # read at log points
        self._guard = InterruptGuard()  # Ctrl-C
        self._main = sharded.is_main()  # rank 0 prints and writes; the others only train
        self._progress = Progress(enabled=self._main)
        self._last_good = LastGoodModel()  # the GPU's NaN stop (see train/last_good.py)

    # the position, as numbers (read and written through ``self.position``)
    epoch = PositionField()  # completed epochs (the epoch being trained is number epoch + 1)
    batch_in_epoch = PositionField()  # batches completed in the current epoch
    global_step = PositionField()  # optimizer steps completed

    def lr(self) -> float:
        """The learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | Path, rng_now: Any = None, meter_state: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint of the current position (refuses non-finite weights).

        ``meter_state``: the epoch's running numbers to store (default this process's; a
        data-parallel run passes them summed over the ranks).
        """
        if not params_finite(self.model):
            raise NonFiniteLossError(
                f"refusing to save {path}: the model has non-finite weights at step {self.global_step}",
                self.global_step,
            )
        state = self.position.state_dict(rng_now if rng_now is not None else rng_state())
        best_acc = self.best_acc if math.isfinite(self.best_acc) else None
        meter = self._meter.state_dict() if meter_state is None else meter_state
        state["trainer"].update(best_acc=best_acc, best_epoch=self.best_epoch, **meter)
        return save_checkpoint(
            path,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            **state,
            history=self.history.state_dict(),
            config=self.config,
        )

    def load(self, path: str | Path) -> dict[str, Any]:
        """Restore model, optimizer, scheduler, position and history from a checkpoint; ``fit`` continues there."""
        ck = load_checkpoint(path)
        restore_model(self.model, ck["model"])
        if "optimizer" in ck and self.optimizer is not None:
            restore_optimizer(self.optimizer, ck["optimizer"])
        if "scheduler" in ck and self.scheduler is not None:
            restore_scheduler(self.scheduler, ck["scheduler"])
        self.position = Position.from_checkpoint(ck)
        t = ck.get("trainer", {})
        self.best_acc = -math.inf if t.get("best_acc") is None else float(t["best_acc"])
        self.best_epoch = t.get("best_epoch")
        # The saved epoch numbers are the sum over the ranks: rank 0 carries them, the others start from zero.
        self._meter.load_state_dict(t if self._main else {}, device=self.device)
        if "history" in ck:
            self.history.load_state_dict(ck["history"])
        return ck

    # ------------------------------------------------------------------ losses and divergence
    def _log_losses(self) -> None:
        """Record the pending per-step losses (one transfer); stop on the first NaN/inf."""
        rows, bad = self._losses.read()
        self.history.log_steps(rows)
        if bad is not None:
            self._last_good.restore()  # on a GPU, undo the steps taken since the bad loss
            value, step, epoch = bad
            raise NonFiniteLossError(nan_loss_message(value, step, epoch, self._advice()), step)

    def _advice(self) -> str:
        peak = max([self.lr(), *(r["lr"] for r in self.history.steps)])  # the schedule may have decayed since
        return divergence_advice(self.out_dir, peak)

    def _evaluate_finite(self, name: str, loader: Any) -> dict[str, Any]:
        """:meth:`evaluate` at the end of an epoch; a non-finite loss means diverged weights: stop, save nothing."""
        with np.errstate(all="ignore"):  # overflowing weights end in the check below, not in warnings
            result = self.evaluate(loader)
        if not math.isfinite(result["loss"]):
            raise NonFiniteLossError(
                f"non-finite {name} loss ({result['loss']}) after epoch {self.epoch + 1}, although the training "
                "losses were finite: the weights have diverged. Training stopped, no checkpoint was written from "
                f"them.{self._advice()}",
                self.global_step,
            )
        return result

    # ------------------------------------------------------------------ one step
    def _clip_gradients(self) -> None:
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not grads:
            return
        xp = backend.xp_of(grads[0])
        total = xp.sqrt(sum((g.astype(np.float32) ** 2).sum() for g in grads))
        scale = xp.minimum(np.float32(1.0), np.float32(self.grad_clip) / (total + np.float32(1e-6)))
        for p in self.model.parameters():
            if p.grad is not None:
                p.grad = p.grad * scale.astype(p.grad.dtype)

    def _gate(self, loss: Any, buffers: list[tuple[Tensor, Any]]) -> None:
        """Keep a NaN step from reaching the weights: read the loss (an array) on the CPU, a device flag on a GPU."""
        if self.device == "cpu":
            if not math.isfinite(float(loss)):  # reading the loss is free on the CPU
                self._log_losses()  # raises NonFiniteLossError naming this step
            return
        # no sync on a GPU: the model from before any NaN step is kept on the device
        self._last_good.before_update(loss, [(p, p.data) for p in self.model.parameters()] + buffers)

    def _train_step(self, x: Tensor, y: Tensor) -> None:
        """forward -> loss -> NaN gate -> backward -> (clip) -> update, then the position advances."""
        # BatchNorm updates its running statistics during the forward pass; keep a copy (small: two
        # vectors per BN layer) to put back when the step fails before its update (NaN, Ctrl-C), so
        # the model and the saved position stay those of the last completed step.
        buffers = [(b, backend.copy(b.data)) for b in self.model.buffers()]
        try:
            logits = self.model(x)
            loss = self.loss_fn(logits, y)
            if loss.data.size != 1:
                raise ValueError(f"Trainer: loss_fn must return a scalar, got shape {loss.shape}")
            logged = sharded.global_mean(loss.data.reshape(()))  # the same on every rank: same NaN stop
            self._losses.add(self.global_step + 1, self.epoch + 1, logged, self.lr())
            self._gate(logged, buffers)
            self.optimizer.zero_grad()
            loss.backward()
            sync_gradients = getattr(self.model, "sync_gradients", None)  # DistributedDataParallel's
            if sync_gradients is not None:
                sync_gradients()
            if self.grad_clip is not None:
                self._clip_gradients()
        except BaseException:
            for b, saved in buffers:
                b.data = saved
            raise
        with self._guard.updating():  # an interrupt in here leaves weights and position out of step
            self.optimizer.step()
            if self.scheduler is not None and self.scheduler_step == "batch":
                self.scheduler.step()
            self.position.step_done()
            self._meter.update(loss.data, logits.data, y.data, int(x.shape[0]))

    # ------------------------------------------------------------------ one epoch
    def _run_epoch(self, loader: Any, epochs: int, log_every: int) -> None:
        """Train on the epoch's batches (those after the saved position when resuming inside it)."""
        self.model.train()
        self._meter.start(carry_on=self.position.resuming)
        batches = self.position.start_epoch(loader)
        total = len(loader) if hasattr(loader, "__len__") else None
        desc = f"epoch {self.epoch + 1}/{epochs}"
        with self._progress.epoch(total, self.batch_in_epoch, desc, enabled=not self.quiet and self._main) as progress:
            for batch in batches:
                x, y = on_device(batch[0], self.device), on_device(batch[1], self.device, "batch's target")
                with np.errstate(all="ignore"):  # a diverging run ends in the NaN check, not in warnings
                    self._train_step(x, y)
                progress.advance()
                if self.global_step % log_every == 0:
                    self._log_losses()
                    progress.postfix(self.history, self.epoch + 1, self._meter, self.lr())
                for cb in self.callbacks:
                    cb(self)
                self._check_stop()  # the first Ctrl-C stops here, after a whole step
            self._log_losses()
        self.position.batches_done(loader)

    def _check_stop(self) -> None:
        """Stop after this step when Ctrl-C was pressed (on any rank: all ranks stop at the same step)."""
        if sharded.world_size() > 1 and sharded.agree(self._guard.stop_requested):
            self._guard.stop_requested = True
        self._guard.check()

    def _epoch_row(self) -> dict[str, Any]:
        """The epoch's history row: train numbers over every rank's samples."""
        if sharded.world_size() == 1:
            return self._meter.row(self.epoch + 1, self.global_step, self.lr())
        meter = EpochMeter()
        meter.load_state_dict(sharded.global_meter_state(self._meter.state_dict()), device=self.device)
        meter.start(carry_on=True)
        return meter.row(self.epoch + 1, self.global_step, self.lr())

    def _end_epoch(self, dev_loader: Any, epochs: int, eval_every: int) -> None:
        """Close the epoch: its numbers, the evaluations, the schedule and the record, the checkpoints, one line."""
        backend.synchronize(self.device)
        row = self._epoch_row()
        improved = self._evaluate_dev(dev_loader, row, epochs, eval_every)
        for name, loader in self.monitor.items():
            row.update(_scalars(name, self._evaluate_finite(name, loader)))
        with self._guard.updating():  # from here until the save, the state is between two positions
            self._advance_epoch(row)
        self._save_epoch(improved)
        self._progress.print(epoch_summary(row, improved and dev_loader is not None, self.monitor))

    def _evaluate_dev(self, dev_loader: Any, row: dict[str, Any], epochs: int, eval_every: int) -> bool:
        """Evaluate on the dev set when due, into ``row``; whether ``best.npz`` should take this epoch."""
        number = self.epoch + 1
        if dev_loader is None:  # no dev set: best.npz is the latest model
            self.best_epoch = number
            return True
        if number % eval_every and number != epochs:
            return False
        result = self._evaluate_finite("dev", dev_loader)
        row.update(_scalars("dev", result))
        if result["acc"] > self.best_acc:
            self.best_acc, self.best_epoch = result["acc"], number
            return True
        return False

    def _advance_epoch(self, row: dict[str, Any]) -> None:
        """Step an epoch-wise schedule, record the row, move the position to the next epoch."""
        if self.scheduler is not None and self.scheduler_step == "epoch":
            self.scheduler.step()
        self.history.log_epoch(row)
        self.position.end_epoch()
        self._meter.clear()

    def _save_epoch(self, improved: bool) -> None:
        """``last.npz``, ``best.npz`` when ``improved``, and the history files (rank 0 only)."""
        if self.out_dir is None or not self._main:
            return
        last = self.save(self.out_dir / "last.npz", rng_now=self.position.rng_after_step)
        if improved:
            atomic_copy(last, self.out_dir / "best.npz")
        self.history.save(self.out_dir)

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        train_loader: Any,
        dev_loader: Any = None,
        epochs: int = 1,
        eval_every: int = 1,
        log_every: int = 50,
        resume: str | Path | None = None,
    ) -> FitResult:
        """Train until ``epochs`` epochs in total are done (a resumed run counts the epochs already done).

        Returns a :class:`FitResult` (it does not raise on Ctrl-C or on a NaN loss;
        check ``result.status``).
        """
        if epochs < 0 or eval_every < 1 or log_every < 1:
            raise ValueError("Trainer.fit: epochs must be >= 0, eval_every and log_every >= 1")
        if resume is not None:
            self.load(resume)
        self._last_good.reset()
        status, message = "completed", ""
        with self._guard, backend.device_context(self.device):
            try:
                while self.epoch < epochs:
                    self._run_epoch(train_loader, epochs, log_every)
                    self._end_epoch(dev_loader, epochs, eval_every)
                    self._check_stop()
            except NonFiniteLossError as err:
                status, message = "nan", str(err)
                self._losses.clear()
                if self._main:
                    print(f"\nERROR: {message}", file=sys.stderr, flush=True)
            except (KeyboardInterrupt, StopRequestedError):
                status, message = "interrupted", self._on_interrupt()
                if self._main:
                    print(f"\n{message}", file=sys.stderr, flush=True)
        if self.out_dir is not None and self._main:
            self.history.save(self.out_dir)
        return self._result(status, message)

    def _result(self, status: str, message: str) -> FitResult:
        last = self.out_dir / "last.npz" if self.out_dir is not None else None
        best = self.out_dir / "best.npz" if self.out_dir is not None else None
        return FitResult(
            status=status,
            epoch=self.epoch,
            step=self.global_step,
            message=message,
            best_acc=self.best_acc if math.isfinite(self.best_acc) else float("nan"),
            best_epoch=self.best_epoch,
            last_checkpoint=str(last) if last is not None and last.exists() else None,
            best_checkpoint=str(best) if best is not None and best.exists() else None,
            history=self.history,
        )

    def _on_interrupt(self) -> str:
        """Save ``last.npz`` at the last completed step (unless the interrupt split an update); say what happened."""
        position = f"epoch {self.epoch + 1}, {self.batch_in_epoch} batches into it, step {self.global_step}"
        try:
            self._losses.drop_after(self.global_step)  # the interrupted step's loss, if any
            self._log_losses()
            if self.out_dir is None:
                return f"interrupted at {position} (no out_dir: nothing saved)"
            if self._guard.in_update:
                return f"interrupted inside the optimizer/scheduler update at {position}; last.npz was NOT updated"
            meter = sharded.global_meter_state(self._meter.state_dict())  # every rank takes part
            if not self._main:
                return f"interrupted at {position}; rank 0 saved last.npz"
            path = self.save(self.out_dir / "last.npz", rng_now=self.position.rng_after_step, meter_state=meter)
        except NonFiniteLossError as err:
            return f"interrupted; not saving: {err}"
        self.history.save(self.out_dir)
        return f"interrupted at {position}; saved {path}"

    def evaluate(self, loader: Any, metrics: dict[str, Metric] | None = None) -> dict[str, Any]:
        """Loss and metrics over a whole loader, in eval mode; one host sync at the end.

        Returns ``{"loss": float, "acc": float, ...}``; array-valued metrics (confusion
        matrix, per-class accuracy) come back as NumPy arrays.
        """
        metrics = self.metrics if metrics is None else metrics_by_name(metrics)
        with backend.device_context(self.device):  # the metrics' arithmetic runs on the model's GPU
            return evaluation.evaluate(self.model, loader, self.eval_loss_fn, metrics, self.device)

    def predict(self, x: Any, probs: bool = False, batch_size: int | None = None) -> Tensor:
        """Logits (or softmax probabilities with ``probs=True``) for a batch on the model's device, in eval mode."""
        with backend.device_context(self.device):
            return evaluation.predict(self.model, x, self.device, probs=probs, batch_size=batch_size)
