"""``Trainer``: the training loop, written once, with the care a long run needs.

What one :meth:`Trainer.fit` does, epoch by epoch::

    for each batch:    forward -> loss -> backward -> (clip) -> optimizer.step -> scheduler.step
    every log_every:   one host sync: per-step losses, NaN check, progress-bar postfix
    end of epoch:      train loss/accuracy, dev evaluation, history row,
                       last.npz (and best.npz when dev accuracy improved), history.json/csv

Design points, each one a lesson from the seed experiment:

* **No per-batch host syncs.**  Losses stay device scalars until a log point,
  where they are stacked and copied in one transfer; accuracy is counted on the
  device (:mod:`minitorch_nndl.train.metrics`).  On the CPU the NaN check runs
  every step, because it costs nothing there.
* **Sample-weighted epoch numbers.**  Epoch loss is ``sum(loss_i * n_i) / sum(n_i)``,
  so a short last batch weighs what it contains.
* **Checkpoints you can trust.**  ``last.npz`` is written atomically at the end of
  every epoch and on Ctrl-C; ``best.npz`` whenever dev accuracy improves (every
  epoch when there is no dev set).  Before a checkpoint is written, the losses since
  the previous one and all parameters are checked to be finite: a run that diverges
  never overwrites a good checkpoint with NaN weights.
* **Exact resume** (:meth:`fit` with ``resume=``): model, optimizer, scheduler,
  epoch, step, the position inside the epoch, the library's CPU generator, NumPy's
  global generator and the loader's state are restored.  A checkpoint taken in the
  middle of an epoch (Ctrl-C) stores the loader's state *at the start of that
  epoch* and the number of batches already done.  On resume, a loader whose state has
  a ``batch_index`` (our :class:`~minitorch_nndl.data.DataLoader`, whose order and
  augmentation derive from ``(seed, epoch, batch)``) starts directly at that batch;
  any other loader with ``state_dict``/``set_epoch`` is replayed to the position
  (re-reading the batches without training on them).  Then the generators are set
  as they were after the last completed step.  On the CPU, an interrupted and resumed run therefore reaches
  bit-identical weights to an uninterrupted one, at epoch boundaries and in the
  middle of an epoch -- provided the loader's randomness lives in the loader's own
  generator (``state_dict``/``load_state_dict``) or in the library's global
  generator, and no prefetch thread draws random numbers concurrently.  On a GPU
  the CuPy generator's state is not saved, so a resumed GPU run is statistically,
  not bitwise, the same.
* **Ctrl-C** (SIGINT, main thread only): the first press asks the trainer to stop
  after the current step; it saves ``last.npz`` at that exact position, writes the
  history and ``fit`` *returns* a :class:`FitResult` with ``status="interrupted"``
  (it does not re-raise).  A second press raises ``KeyboardInterrupt`` at once; that,
  or a ``KeyboardInterrupt`` raised by user code (a callback, the loss), is caught the
  same way, and the position saved is the last completed step.  Only if the
  interrupt lands inside ``optimizer.step()`` (half-updated weights) is nothing saved.
* **NaN/inf loss**: the run stops with a message naming the step (1-based count of
  optimizer steps), the epoch and the batch; ``fit`` returns ``status="nan"``; the
  checkpoints on disk are the last good ones.  NumPy's floating-point warnings
  (overflow, invalid value) are silenced inside the training step: the NaN check
  reports a diverging run once, clearly.
* **Epochs are numbered from 1** everywhere a person reads them: the console, the
  ``"epoch"`` column of the history, ``best_epoch``.  ``Trainer.epoch`` counts the
  completed epochs.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..grad_mode import no_grad
from ..tensor import Tensor
from .atomic import atomic_copy
from .checkpoint import load_checkpoint, restore_model, restore_optimizer, restore_scheduler, save_checkpoint
from .history import History
from .last_good import LastGoodModel
from .metrics import Accuracy, MeanMetric, Metric

__all__ = ["Trainer", "FitResult", "NonFiniteLossError"]


class NonFiniteLossError(RuntimeError):
    """Raised inside the loop when a loss is NaN/inf; ``fit`` turns it into ``status="nan"``."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class _StopRequestedError(Exception):
    """Internal: the first Ctrl-C asked the loop to stop after the current step."""


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns.

    ``status``: ``"completed"``, ``"interrupted"`` (Ctrl-C; ``last_checkpoint`` holds the
    position) or ``"nan"`` (a non-finite loss; ``message`` names the step).  ``epoch`` is the
    number of completed epochs, ``best_epoch`` the number (from 1) of the epoch ``best.npz`` holds.
    """

    status: str
    epoch: int
    step: int
    message: str = ""
    best_acc: float = float("nan")
    best_epoch: int | None = None
    last_checkpoint: str | None = None
    best_checkpoint: str | None = None
    history: History = field(default_factory=History)

    @property
    def ok(self) -> bool:
        return self.status == "completed"


class _SigintGuard:
    """First Ctrl-C sets a flag (stop after this step); the second raises KeyboardInterrupt."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.previous: Any = None
        self.installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.trainer._stop_requested:
            signal.signal(signal.SIGINT, self.previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.trainer._stop_requested = True
        print(
            "\nCtrl-C: stopping after the current step and saving last.npz (press Ctrl-C again to abort now)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> _SigintGuard:
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._handler)
                self.installed = True
            except (ValueError, OSError):  # not allowed here (e.g. embedded interpreter)
                self.installed = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous if self.previous is not None else signal.default_int_handler)


def _to_tensor(x: Any, device: str) -> Tensor:
    if isinstance(x, Tensor):
        return x if x.device == device else x.to(device)
    return Tensor(x, device=device)


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


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
        device: where the model runs; the model (when its parameters are elsewhere) and the
            batches are moved there.
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
        device: str = "cpu",
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
        self.device = backend.normalize_device(device)
        self.model = model
        params = model.parameters() if hasattr(model, "parameters") else ()
        if any(p.device != self.device for p in params):
            model.to(self.device)  # Module.to keeps the Parameter objects: an optimizer over them still works
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.eval_loss_fn = eval_loss_fn or loss_fn
        self.metrics = self._metric_dict(metrics)
        self.scheduler = scheduler
        self.scheduler_step = scheduler_step
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.quiet = quiet
        self.grad_clip = grad_clip
        self.config = dict(config or {})
        self.callbacks = list(callbacks)
        self.monitor = dict(monitor or {})
        self.history = History()
        # position
        self.epoch = 0  # number of completed epochs (the epoch being trained is number self.epoch + 1)
        self.batch_in_epoch = 0  # batches completed in the current epoch
        self.global_step = 0  # optimizer steps completed
        self.best_acc = -math.inf
        self.best_epoch: int | None = None
        # bookkeeping for logging and resume
        self._pending: list[tuple[int, int, Any, float]] = []  # (step, epoch, loss array, lr)
        self._train_loss = MeanMetric()
        self._train_acc = Accuracy()
        self._phase = "idle"
        self._stop_requested = False
        self._loader_state_epoch_start: Any = None
        self._pending_loader_state: Any = None  # the loader's state after the epoch, saved at its end
        self._rng_epoch_start: Any = None
        self._rng_after_step: Any = None
        self._resume_point: dict[str, Any] | None = None
        self._bar: Any = None
        self._buffer_snapshot: list[tuple[Tensor, Any]] = []
        self._last_good = LastGoodModel()  # the GPU's NaN stop (see train/last_good.py)
        self._epoch_images = 0
        self._epoch_t0 = 0.0

    # ------------------------------------------------------------------ setup helpers
    @staticmethod
    def _metric_dict(metrics: Any) -> dict[str, Metric]:
        if metrics is None:
            out: dict[str, Metric] = {}
        elif isinstance(metrics, dict):
            out = dict(metrics)
        else:
            out = {}
            for m in metrics:
                if m.name in out:
                    raise ValueError(f"Trainer: two metrics are named {m.name!r}; pass a dict to name them")
                out[m.name] = m
        if "acc" not in out:
            out = {"acc": Accuracy(), **out}
        return out

    def lr(self) -> float:
        """The learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    # ------------------------------------------------------------------ RNG and loader state
    @staticmethod
    def _rng_state() -> dict[str, Any]:
        return {"minitorch_cpu": backend.get_rng_state(), "numpy_global": np.random.get_state()}

    @staticmethod
    def _set_rng_state(state: dict[str, Any]) -> None:
        backend.set_rng_state(state["minitorch_cpu"])
        ng = state.get("numpy_global")
        if ng is not None:
            np.random.set_state(tuple(ng))

    @staticmethod
    def _loader_state(loader: Any) -> Any:
        fn = getattr(loader, "state_dict", None)
        return fn() if callable(fn) else None

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_state(self, rng_now: Any) -> dict[str, Any]:
        loss_state, acc_state = self._train_loss.state_dict(), self._train_acc.state_dict()
        return {
            "trainer": {
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "global_step": self.global_step,
                "best_acc": self.best_acc if math.isfinite(self.best_acc) else None,
                "best_epoch": self.best_epoch,
                "train_loss_sum": loss_state["sum"],
                "train_loss_count": loss_state["count"],
                "train_correct": acc_state["correct"],
                "train_total": acc_state["total"],
                "epoch_seconds": time.perf_counter() - self._epoch_t0 if self._epoch_t0 else 0.0,
                "epoch_images": self._epoch_images,
            },
            "rng": {"epoch_start": self._rng_epoch_start, "now": rng_now},
            "loader": {"epoch_start": self._loader_state_epoch_start},
            "history": self.history.state_dict(),
            "config": self.config,
        }

    def _params_finite(self) -> bool:
        """One device reduction over all parameters and buffers, one sync."""
        flags = []
        for p in self.model.parameters():
            flags.append(p.xp.isfinite(p.data).all())
        for b in self.model.buffers():
            if backend.is_floating(b.dtype):
                flags.append(b.xp.isfinite(b.data).all())
        if not flags:
            return True
        xp = backend.xp_of(flags[0])
        return bool(backend.to_numpy(xp.stack(flags).all()))

    def save(self, path: str | Path, rng_now: Any = None) -> Path:
        """Write a checkpoint of the current position (refuses non-finite weights)."""
        if not self._params_finite():
            raise NonFiniteLossError(
                f"refusing to save {path}: the model has non-finite weights at step {self.global_step}",
                self.global_step,
            )
        state = self._checkpoint_state(rng_now if rng_now is not None else self._rng_state())
        return save_checkpoint(path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler, **state)

    def load(self, path: str | Path) -> dict[str, Any]:
        """Restore model, optimizer, scheduler, position and history from a checkpoint."""
        ck = load_checkpoint(path)
        restore_model(self.model, ck["model"])
        if "optimizer" in ck and self.optimizer is not None:
            restore_optimizer(self.optimizer, ck["optimizer"])
        if "scheduler" in ck and self.scheduler is not None:
            restore_scheduler(self.scheduler, ck["scheduler"])
        t = ck.get("trainer", {})
        self.epoch = int(t.get("epoch", 0))
        self.batch_in_epoch = int(t.get("batch_in_epoch", 0))
        self.global_step = int(t.get("global_step", 0))
        best = t.get("best_acc")
        self.best_acc = -math.inf if best is None else float(best)
        self.best_epoch = t.get("best_epoch")
        if "history" in ck:
            self.history.load_state_dict(ck["history"])
        self._resume_point = ck
        return ck

    # ------------------------------------------------------------------ logging
    def _flush(self) -> None:
        """Gather pending per-step losses with one transfer; record them; stop on NaN/inf."""
        if not self._pending:
            return
        arrays = [a for _, _, a, _ in self._pending]
        xp = backend.xp_of(arrays[0])
        values = backend.to_numpy(xp.stack(arrays).astype(np.float64))  # one copy of all pending losses
        rows = [{"step": s, "epoch": e, "loss": float(v), "lr": lr} for (s, e, _, lr), v in zip(self._pending, values)]
        bad = np.nonzero(~np.isfinite(values))[0]
        if bad.size:
            first = int(bad[0])
            rows = rows[:first]
            self.history.log_steps(rows)
            step, epoch, _, _ = self._pending[first]
            self._pending = []
            self._last_good.restore()  # on a GPU, undo the steps taken since the bad loss
            raise NonFiniteLossError(self._nan_message(float(values[first]), step, epoch), step)
        self.history.log_steps(rows)
        self._pending = []

    def _nan_message(self, value: float, step: int, epoch: int) -> str:
        return (
            f"non-finite loss ({value}) at step {step} (epoch {epoch}); training stopped, "
            f"no checkpoint was written from the diverged weights.{self._divergence_advice()}"
        )

    def _divergence_advice(self) -> str:
        where = ""
        if self.out_dir is not None and (self.out_dir / "last.npz").exists():
            where = f" The last good checkpoint is {self.out_dir / 'last.npz'}."
        elif self.out_dir is not None:
            where = " No checkpoint had been written yet."
        peak = max([self.lr(), *(r["lr"] for r in self.history.steps)])  # the schedule may have decayed since
        return (
            f"{where} The usual cause is a learning rate that is too high (the highest so far was {peak:.3g}): "
            "try one 10x lower."
        )

    def _evaluate_finite(self, name: str, loader: Any) -> dict[str, Any]:
        """:meth:`evaluate` at the end of an epoch; a non-finite loss means diverged weights: stop, save nothing."""
        with np.errstate(all="ignore"):  # overflowing weights end in the check below, not in warnings
            result = self.evaluate(loader)
        if not math.isfinite(result["loss"]):
            raise NonFiniteLossError(
                f"non-finite {name} loss ({result['loss']}) after epoch {self.epoch + 1}, although the training "
                "losses were finite: the weights have diverged. Training stopped, no checkpoint was written from "
                f"them.{self._divergence_advice()}",
                self.global_step,
            )
        return result

    def _postfix(self) -> None:
        if self._bar is None:
            return
        recent = [r["loss"] for r in self.history.steps[-50:] if r["epoch"] == self.epoch + 1]
        elapsed = max(time.perf_counter() - self._epoch_t0, 1e-9)
        self._bar.set_postfix(
            loss=f"{np.mean(recent):.4f}" if recent else "-",
            acc=f"{100 * self._train_acc.compute():.2f}%" if self._train_acc.total else "-",
            lr=f"{self.lr():.4g}",
            img_s=_fmt_rate(self._epoch_images / elapsed),
            refresh=False,
        )

    def _print(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

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

    def _restore_buffers(self) -> None:
        """Put back the BatchNorm statistics from before the current step's forward pass."""
        for b, saved in self._buffer_snapshot:
            b.data = saved

    def _train_step(self, x: Tensor, y: Tensor) -> None:
        # BatchNorm updates its running statistics during the forward pass; keep a copy
        # (small: two vectors per BN layer) so an interrupt before the step completes
        # can put them back and the saved position stays exact.
        self._buffer_snapshot = [(b, backend.copy(b.data)) for b in self.model.buffers()]
        self._phase = "forward"
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        step = self.global_step + 1
        if loss.data.size != 1:
            raise ValueError(f"Trainer: loss_fn must return a scalar, got shape {loss.shape}")
        self._pending.append((step, self.epoch + 1, loss.data.reshape(()), self.lr()))
        if self.device == "cpu":
            if not math.isfinite(float(loss.data)):  # reading the loss is free on the CPU
                self._restore_buffers()  # the model stays as it was before this step
                self._flush()  # raises NonFiniteLossError naming this step
        else:  # no sync on a GPU: a device-side flag keeps the model from before any NaN step
            params = list(self.model.parameters())
            self._last_good.before_update(
                loss.data,
                params + [b for b, _ in self._buffer_snapshot],
                [p.data for p in params] + [saved for _, saved in self._buffer_snapshot],
            )
        self._phase = "backward"
        self.optimizer.zero_grad()
        loss.backward()
        if self.grad_clip is not None:
            self._clip_gradients()
        self._phase = "update"
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_step == "batch":
            self.scheduler.step()
        self.global_step = step
        self.batch_in_epoch += 1
        self._phase = "between"
        n = int(x.shape[0])
        self._epoch_images += n
        self._train_loss.update(loss.data, n)
        self._train_acc.update(logits.data, y.data)
        self._rng_after_step = self._rng_state()

    # ------------------------------------------------------------------ epoch
    def _run_epoch(self, loader: Any, epochs: int, log_every: int) -> None:
        self.model.train()
        resume = self._resume_point
        self._resume_point = None
        skip = self.batch_in_epoch
        fast_forwarded = False
        loader_state = None
        if resume is not None:
            rng = resume.get("rng", {})
            if rng.get("epoch_start") is not None:
                self._set_rng_state(rng["epoch_start"])
            loader_state = resume.get("loader", {}).get("epoch_start")
            if loader_state is not None and hasattr(loader, "load_state_dict"):
                if isinstance(loader_state, dict) and "batch_index" in loader_state:
                    # our DataLoader continues at a batch index by itself: no replay needed
                    loader.load_state_dict({**loader_state, "batch_index": skip})
                    fast_forwarded = True
                else:
                    loader.load_state_dict(loader_state)
            t = resume.get("trainer", {})
            loss_state = {"sum": t.get("train_loss_sum", 0.0), "count": t.get("train_loss_count", 0)}
            self._train_loss.load_state_dict(loss_state, device=self.device)
            acc_state = {"correct": t.get("train_correct", 0), "total": t.get("train_total", 0)}
            self._train_acc.load_state_dict(acc_state, device=self.device)
            self._epoch_images = int(t.get("epoch_images", 0))
            self._epoch_t0 = time.perf_counter() - float(t.get("epoch_seconds", 0.0))
        else:
            skip = 0
            self.batch_in_epoch = 0
            self._train_loss.reset()
            self._train_acc.reset()
            self._epoch_images = 0
            self._epoch_t0 = time.perf_counter()
        if fast_forwarded:
            self._loader_state_epoch_start = loader_state
        else:
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(self.epoch)
            self._loader_state_epoch_start = self._loader_state(loader)
        self._rng_epoch_start = self._rng_state()
        self._rng_after_step = self._rng_epoch_start

        total = len(loader) if hasattr(loader, "__len__") else None
        iterator = iter(loader)
        if not fast_forwarded:
            for _ in range(skip):  # replay the loader to the saved position (no training)
                next(iterator)
        if resume is not None and resume.get("rng", {}).get("now") is not None:
            self._set_rng_state(resume["rng"]["now"])
            self._rng_after_step = self._rng_state()

        if not self.quiet:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                initial=skip,
                desc=f"epoch {self.epoch + 1}/{epochs}",
                leave=False,
                dynamic_ncols=True,
                file=sys.stderr,
            )
        try:
            self._phase = "fetch"
            for batch in iterator:
                x, y = batch[0], batch[1]
                x, y = _to_tensor(x, self.device), _to_tensor(y, self.device)
                with np.errstate(all="ignore"):  # a diverging run ends in the NaN check, not in warnings
                    self._train_step(x, y)
                if self._bar is not None:
                    self._bar.update(1)
                if self.global_step % log_every == 0:
                    self._flush()
                    self._postfix()
                for cb in self.callbacks:
                    cb(self)
                if self._stop_requested:
                    raise _StopRequestedError
                self._phase = "fetch"
            self._flush()
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        self._phase = "epoch_end"

    def _end_epoch(self, dev_loader: Any, epochs: int, eval_every: int) -> None:
        backend.synchronize(self.device)
        seconds = time.perf_counter() - self._epoch_t0
        row: dict[str, Any] = {
            "epoch": self.epoch + 1,  # epochs are numbered from 1, as on the console
            "steps": self.global_step,
            "train_loss": self._train_loss.compute(),
            "train_acc": self._train_acc.compute(),
            "lr": self.lr(),
            "seconds": seconds,
            "images_per_sec": self._epoch_images / max(seconds, 1e-9),
        }
        improved = False
        is_last = self.epoch + 1 == epochs
        if dev_loader is not None and ((self.epoch + 1) % eval_every == 0 or is_last):
            result = self._evaluate_finite("dev", dev_loader)
            for k, v in result.items():
                if isinstance(v, (int, float)):
                    row[f"dev_{k}"] = v
            if result["acc"] > self.best_acc:
                self.best_acc, self.best_epoch, improved = result["acc"], self.epoch + 1, True
        elif dev_loader is None:
            improved = True  # no dev set: best.npz is the latest model
            self.best_epoch = self.epoch + 1
        for name, loader in self.monitor.items():
            result = self._evaluate_finite(name, loader)
            for k, v in result.items():
                if isinstance(v, (int, float)):
                    row[f"{name}_{k}"] = v
        self._phase = "update"  # from here until the save, the state is between two positions
        if self.scheduler is not None and self.scheduler_step == "epoch":
            self.scheduler.step()
        self.history.log_epoch(row)
        self.epoch += 1
        self.batch_in_epoch = 0
        self._train_loss.reset()
        self._train_acc.reset()
        self._epoch_images = 0
        self._epoch_t0 = 0.0
        rng = self._rng_state()
        self._rng_epoch_start = rng
        self._rng_after_step = rng
        self._phase = "between"
        if self.out_dir is not None:
            self._loader_state_epoch_start = self._pending_loader_state
            last = self.save(self.out_dir / "last.npz", rng_now=rng)
            if improved:
                atomic_copy(last, self.out_dir / "best.npz")
            self.history.save(self.out_dir)
        self._print(self._summary(row, improved and dev_loader is not None))

    def _summary(self, row: dict[str, Any], improved: bool) -> str:
        parts = [
            f"epoch {row['epoch']:>3}",
            f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:6.2f}%",
        ]
        if "dev_acc" in row:
            parts.append(f"dev loss {row['dev_loss']:.4f} acc {100 * row['dev_acc']:6.2f}%{' *' if improved else ''}")
        for name in self.monitor:
            if f"{name}_acc" in row:
                parts.append(f"{name} acc {100 * row[f'{name}_acc']:6.2f}%")
        parts.append(f"lr {row['lr']:.4g}")
        parts.append(f"{row['seconds']:.1f}s ({_fmt_rate(row['images_per_sec'])} img/s)")
        return " | ".join(parts)

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
        self._stop_requested = False
        self._last_good.reset()
        status, message = "completed", ""
        with _SigintGuard(self), backend.device_context(self.device):
            try:
                while self.epoch < epochs:
                    self._run_epoch(train_loader, epochs, log_every)
                    self._pending_loader_state = self._loader_state(train_loader)
                    self._end_epoch(dev_loader, epochs, eval_every)
                    if self._stop_requested:
                        raise _StopRequestedError
            except NonFiniteLossError as err:
                status, message = "nan", str(err)
                self._pending = []
                print(f"\nERROR: {message}", file=sys.stderr, flush=True)
            except (KeyboardInterrupt, _StopRequestedError):
                status, message = "interrupted", self._on_interrupt()
                print(f"\n{message}", file=sys.stderr, flush=True)
            finally:
                self._phase = "idle"
                self._stop_requested = False
        if self.out_dir is not None:
            self.history.save(self.out_dir)
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
        phase = self._phase
        position = f"epoch {self.epoch + 1}, {self.batch_in_epoch} batches into it, step {self.global_step}"
        try:
            self._pending = [p for p in self._pending if p[0] <= self.global_step]
            self._flush()
        except NonFiniteLossError as err:
            return f"interrupted; not saving: {err}"
        if self.out_dir is None:
            return f"interrupted at {position} (no out_dir: nothing saved)"
        if phase == "update":
            return f"interrupted inside the optimizer/scheduler update at {position}; last.npz was NOT updated"
        if phase in ("forward", "backward"):  # undo the interrupted step's BatchNorm statistics
            self._restore_buffers()
        try:
            path = self.save(self.out_dir / "last.npz", rng_now=self._rng_after_step)
        except NonFiniteLossError as err:
            return f"interrupted; not saving: {err}"
        self.history.save(self.out_dir)
        return f"interrupted at {position}; saved {path}"

    @no_grad()
    def evaluate(self, loader: Any, metrics: dict[str, Metric] | None = None) -> dict[str, Any]:
        """Loss and metrics over a whole loader, in eval mode; one host sync at the end.

        Returns ``{"loss": float, "acc": float, ...}``; array-valued metrics (confusion
        matrix, per-class accuracy) come back as NumPy arrays.
        """
        metrics = self.metrics if metrics is None else self._metric_dict(metrics)
        was_training = getattr(self.model, "training", True)
        self.model.eval()
        loss_meter = MeanMetric()
        for m in metrics.values():
            m.reset()
        try:
            for batch in loader:
                x, y = _to_tensor(batch[0], self.device), _to_tensor(batch[1], self.device)
                logits = self.model(x)
                loss_meter.update(self.eval_loss_fn(logits, y).data, int(x.shape[0]))
                for m in metrics.values():
                    m.update(logits.data, y.data)
        finally:
            self.model.train(was_training)
        result: dict[str, Any] = {"loss": loss_meter.compute()}
        for name, m in metrics.items():
            result[name] = m.compute()
        return result

    @no_grad()
    def predict(self, x: Any, probs: bool = False, batch_size: int | None = None) -> Tensor:
        """Logits (or softmax probabilities with ``probs=True``) for a batch of inputs, in eval mode."""
        was_training = getattr(self.model, "training", True)
        self.model.eval()
        try:
            x = _to_tensor(x, self.device)
            n = int(x.shape[0])
            step = batch_size or n or 1
            outs = [self.model(x[i : i + step]).data for i in range(0, n, step)]
            out = outs[0] if len(outs) == 1 else backend.xp_of(outs[0]).concatenate(outs)
            t = Tensor._wrap(out)
            return t.softmax(axis=1) if probs else t
        finally:
            self.model.train(was_training)
