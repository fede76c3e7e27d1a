"""Classification metrics that count samples on the device and sync once.

Every metric here follows the same three-call protocol::

    metric.reset()
    for x, y in loader:
        metric.update(model(x), y)       # logits (N, C) or predicted labels (N,)
    value = metric.compute()             # the only host sync

``state_dict()`` / ``load_state_dict(state, device)`` save and restore the running counts
(host numbers, JSON-able; loaded onto ``device``), so a checkpoint taken in the middle of
an epoch resumes the epoch's numbers exactly without anyone reaching into a metric.

``update`` keeps its running *counts* as backend arrays (NumPy on the CPU, CuPy on
a GPU): comparing predictions with targets and summing happens on the device, so a
training loop on a GPU never waits for the host between batches.  ``compute``
transfers the counts once and divides.

Typical accuracy-metric bugs these metrics avoid (we do not have the course notebook
this project grew from, so which of them it had is not known):

* **Averaging per-batch accuracies.**  ``mean(acc_batch)`` weights the last,
  partial batch (say 16 images out of 10,000 with batch size 64) as much as a
  full one.  Here the numerator and the denominator are *sample* counts summed
  over the whole pass, so the result is exactly ``correct / seen``.
* **Dividing by the number of batches times the batch size** (``len(loader) *
  batch_size``), which overcounts the denominator whenever the last batch is short.
* **Dividing by the data set size while the loader drops the last batch**
  (``drop_last=True``): the denominator counts images that were never seen.
* **Comparing floats from a softmax with ``==``** or thresholding scores instead
  of taking the ``argmax`` over classes.
* **Forgetting to reset** between epochs, so "epoch accuracy" silently becomes a
  running average since the start of training; ``reset`` is explicit here and the
  Trainer calls it at the start of every pass.
* **Calling ``.item()`` per batch**, which is correct but forces a GPU sync every
  step and makes the metric the bottleneck.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["Metric", "Accuracy", "TopKAccuracy", "ConfusionMatrix", "PerClassAccuracy", "MeanMetric", "as_array"]


def as_array(x: Any) -> Any:
    """The backend array behind a Tensor (or the array itself); no copy, no sync."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, np.ndarray) or backend.is_cuda_array(x):
        return x
    return np.asarray(x)


def _predictions(output: Any, opname: str) -> Any:
    """Predicted labels (N,) from logits/probabilities (N, C) or from labels (N,)."""
    out = as_array(output)
    if out.ndim == 2:
        return out.argmax(axis=1)
    if out.ndim == 1:
        if out.dtype.kind not in "iub":
            raise TypeError(f"{opname}.update: 1-d predictions must be integer labels, got dtype {out.dtype}")
        return out
    raise ValueError(f"{opname}.update: expected logits of shape (N, C) or labels of shape (N,), got {out.shape}")


def _targets(target: Any, n: int, opname: str) -> Any:
    t = as_array(target)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"{opname}.update: targets must have shape ({n},), got {tuple(t.shape)}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{opname}.update: targets must be integer class labels, got dtype {t.dtype}")
    return t


class Metric:
    """Base class: ``update`` accumulates on the device, ``compute`` syncs once."""

    name = "metric"

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, output: Any, target: Any) -> None:
        raise NotImplementedError

    def compute(self) -> Any:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The running counts as host numbers (one sync); :meth:`load_state_dict` takes them back."""
        raise NotImplementedError(f"{type(self).__name__} does not implement state_dict")

    def load_state_dict(self, state: dict[str, Any], device: str = "cpu") -> None:
        """Continue from counts saved by :meth:`state_dict`, keeping them on ``device``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement load_state_dict")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _SampleSum(Metric):
    """A device sum over the pass divided by a host count: the shared part of every ratio metric.

    The sum is a 0-d array on the batch's device (``dtype``); the count a Python int (the
    batch size is known on the host without a sync).  ``state_dict`` names them ``keys``.
    """

    keys = ("sum", "count")
    dtype: Any = np.float64

    def reset(self) -> None:
        self._sum: Any = None
        self._count = 0

    def _add(self, value: Any, n: int) -> None:
        self._sum = value if self._sum is None else self._sum + value
        self._count += n

    def _host_sum(self) -> Any:
        return np.dtype(self.dtype).type(backend.to_numpy(self._sum) if self._count else 0).item()

    def compute(self) -> float:
        if self._count == 0:
            return float("nan")
        return self._host_sum() / self._count

    def state_dict(self) -> dict[str, Any]:
        return {self.keys[0]: self._host_sum(), self.keys[1]: self._count}

    def load_state_dict(self, state: dict[str, Any], device: str = "cpu") -> None:
        self.reset()
        if state.get(self.keys[1]):
            self._sum = backend.asarray(np.dtype(self.dtype).type(state[self.keys[0]]), device=device)
            self._count = int(state[self.keys[1]])


class _HitRate(_SampleSum):
    """Shared counting for :class:`Accuracy` and :class:`TopKAccuracy`: ``correct / total``.

    ``correct`` is a 0-d int64 array on the batch's device; ``total`` is a Python
    int (the batch size is known on the host without a sync).
    """

    keys = ("correct", "total")
    dtype = np.int64

    correct = property(lambda self: self._sum, doc="Samples predicted right: a 0-d int64 array on the device.")
    total = property(lambda self: self._count, doc="Samples seen (a host int).")


class Accuracy(_HitRate):
    """Fraction of samples whose ``argmax`` prediction equals the target."""

    name = "acc"

    def __init__(self) -> None:
        self.reset()

    def update(self, output: Any, target: Any) -> None:
        pred = _predictions(output, "Accuracy")
        t = _targets(target, pred.shape[0], "Accuracy")
        self._add((pred == t).sum(dtype=np.int64), int(t.shape[0]))


class TopKAccuracy(_HitRate):
    """Fraction of samples whose target is among the ``k`` highest-scoring classes.

    Computed by rank, not by sorting: the target is in the top k when fewer than
    ``k`` classes score strictly higher than it (ties count in the target's favour).
    Needs logits/scores of shape (N, C).
    """

    def __init__(self, k: int = 5) -> None:
        if k < 1:
            raise ValueError(f"TopKAccuracy: k must be >= 1, got {k}")
        self.k = int(k)
        self.name = f"top{self.k}"
        self.reset()

    def update(self, output: Any, target: Any) -> None:
        scores = as_array(output)
        if scores.ndim != 2:
            raise ValueError(f"TopKAccuracy.update: expected scores of shape (N, C), got {tuple(scores.shape)}")
        t = _targets(target, scores.shape[0], "TopKAccuracy")
        xp = backend.xp_of(scores)
        target_score = scores[xp.arange(scores.shape[0]), t][:, None]
        rank = (scores > target_score).sum(axis=1)
        self._add((rank < self.k).sum(dtype=np.int64), int(t.shape[0]))

    def __repr__(self) -> str:
        return f"TopKAccuracy(k={self.k})"


class ConfusionMatrix(Metric):
    """``matrix[i, j]`` = number of samples of true class ``i`` predicted as ``j``.

    On the CPU one ``bincount`` of ``target * C + pred`` per batch.  On a GPU the
    counts are a one-hot product ``onehot(target).T @ onehot(pred)`` instead, because
    ``cupy.bincount`` reads ``max(x)`` on the host (a sync per batch); the product is
    exact (float32 sums of 0/1 up to 2**24 per batch).  Labels outside ``[0, C)``
    raise ``ValueError``: in ``update`` on the CPU, in ``compute`` on a GPU (checking
    in ``update`` would sync).  ``compute`` returns an int64 NumPy array of shape
    (C, C); rows are true classes.
    """

    name = "confusion"

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.reset()

    def reset(self) -> None:
        self.matrix: Any = None
        self._out_of_range: Any = None  # device flag, GPU only

    def _range_error(self) -> ValueError:
        return ValueError(f"{type(self).__name__}.update: labels must lie in [0, {self.num_classes}), got others")

    def update(self, output: Any, target: Any) -> None:
        pred = _predictions(output, type(self).__name__).astype(np.int64, copy=False)
        t = _targets(target, pred.shape[0], type(self).__name__).astype(np.int64, copy=False)
        xp = backend.xp_of(pred)
        c = self.num_classes
        bad = ((t < 0) | (t >= c) | (pred < 0) | (pred >= c)).any()
        if xp is np:
            if bad:
                raise self._range_error()
            counts = np.bincount(t * c + pred, minlength=c * c).reshape(c, c).astype(np.int64)
        else:
            self._out_of_range = bad if self._out_of_range is None else self._out_of_range | bad
            counts = _onehot_counts(xp, t, pred, c)
        self.matrix = counts if self.matrix is None else self.matrix + counts

    def compute(self) -> np.ndarray:
        if self.matrix is None:
            return np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        if self._out_of_range is not None and bool(backend.to_numpy(self._out_of_range)):
            raise self._range_error()
        return backend.to_numpy(self.matrix).astype(np.int64)

    def state_dict(self) -> dict[str, Any]:
        bad = self._out_of_range is not None and bool(backend.to_numpy(self._out_of_range))
        matrix = None if self.matrix is None else backend.to_numpy(self.matrix).astype(np.int64)
        return {"matrix": matrix, "out_of_range": bad}

    def load_state_dict(self, state: dict[str, Any], device: str = "cpu") -> None:
        self.reset()
        if state.get("matrix") is not None:
            self.matrix = backend.asarray(np.asarray(state["matrix"], dtype=np.int64), device=device)
        if state.get("out_of_range"):
            self._out_of_range = backend.asarray(np.bool_(True), device=device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_classes={self.num_classes})"


def _onehot_counts(xp: Any, t: Any, pred: Any, c: int) -> Any:
    """(C, C) int64 counts of (target, pred) pairs without a host sync; out-of-range labels count nowhere."""
    classes = xp.arange(c)
    onehot_t = (t[:, None] == classes).astype(np.float32)
    onehot_p = (pred[:, None] == classes).astype(np.float32)
    return (onehot_t.T @ onehot_p).astype(np.int64)


class PerClassAccuracy(ConfusionMatrix):
    """Accuracy of each true class (the recall of each class): diag(M) / M.sum(axis=1).

    ``compute`` returns a float64 NumPy array of shape (C,); a class with no samples
    gets ``nan`` (not 0, which would read as "always wrong").
    """

    name = "per_class_acc"

    def compute(self) -> np.ndarray:  # type: ignore[override]
        m = super().compute()
        support = m.sum(axis=1)
        out = np.full(self.num_classes, np.nan)
        seen = support > 0
        out[seen] = np.diag(m)[seen] / support[seen]
        return out


class MeanMetric(_SampleSum):
    """Sample-weighted mean of a per-batch value (e.g. a mean-reduced loss).

    ``update(value, n)`` adds ``value * n`` on the device; ``compute`` returns
    ``sum(value_i * n_i) / sum(n_i)`` -- the mean over samples, exact for a short
    last batch.
    """

    name = "mean"

    def __init__(self) -> None:
        self.reset()

    total_value = property(lambda self: self._sum, doc="``sum(value_i * n_i)``: a 0-d float64 array on the device.")
    count = property(lambda self: self._count, doc="``sum(n_i)`` (a host int).")

    def update(self, value: Any, n: Any = 1) -> None:  # type: ignore[override]
        n = int(n)
        self._add(as_array(value).astype(np.float64) * n, n)  # float64 sum: exact enough over any epoch
