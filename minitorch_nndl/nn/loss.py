"""Loss modules: thin wrappers that remember the ``reduction`` (and label smoothing)."""

from __future__ import annotations

from ..ops import validate
from ..tensor import Tensor
from . import functional as F  # noqa: N812  (PyTorch's conventional name)
from .module import Module


class CrossEntropyLoss(Module):
    """L = -sum_k q_k log softmax(z)_k with q the (smoothed) one-hot target;
    dL/dz = softmax(z) - q (per sample, divided by N for the mean).

    ``logits`` (N, K) float, ``target`` (N,) int64 class indices.
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.reduction = validate.reduction(reduction, "CrossEntropyLoss")
        self.label_smoothing = validate.label_smoothing(label_smoothing, "CrossEntropyLoss")

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target, reduction=self.reduction, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


class NLLLoss(Module):
    """L = -log_probs[n, target[n]];  dL/dlog_probs = -1 at the target entry (divided by N for the mean)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = validate.reduction(reduction, "NLLLoss")

    def forward(self, log_probs: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(log_probs, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(Module):
    """L = (input - target)^2 (mean over elements by default);  dL/dinput = 2 (input - target) / n."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = validate.reduction(reduction, "MSELoss")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
