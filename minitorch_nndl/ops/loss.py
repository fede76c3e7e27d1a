"""Loss functions: cross-entropy (fused with log-softmax), negative log-likelihood, mean squared error.

Cross-entropy of logits z (N, C) against integer classes y (N,), with the
target distribution q = (1 - eps) onehot(y) + eps / C (label smoothing eps):

    loss_n = -sum_c q_nc log softmax(z_n)_c = logsumexp(z_n) - sum_c q_nc z_nc

Its gradient is the famous "prediction minus target":

    dloss_n / dz_nc = softmax(z_n)_c - q_nc      (p - y)

because d logsumexp(z)/dz_c = softmax(z)_c and the second term is linear.
Fusing log-softmax and the loss into one op keeps both the forward (computed
from z - max z, so exp never overflows) and the backward (no division by a
probability that may underflow to 0) numerically stable.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Context, Function
from ..tensor import Tensor
from . import validate
from ._util import coerce_pair


def apply_reduction(losses: Any, reduction: str) -> Any:
    """``losses`` (an array or a Tensor) averaged, summed, or kept per sample."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def _reduction_grad(grad: Any, reduction: str, n: int) -> Any:
    """dL/dloss_n as an (N, 1) column: grad/N for mean, grad for sum, grad_n for none."""
    if reduction == "mean":
        return (grad / grad.dtype.type(n)).reshape(1, 1)
    if reduction == "sum":
        return grad.reshape(1, 1)
    return grad.reshape(-1, 1)


def _check_target(op: str, target: Any, n: int, num_classes: int, device: str) -> Tensor:
    """An integer Tensor of shape (N,), or a clear error.

    On the CPU the values are checked to lie in [0, C) here.  On a GPU that check
    would need ``int(target.min())``, a host sync per call that stalls the CPU from
    queueing the backward while the forward runs, so it is skipped; instead the
    loss ops mark the rows of out-of-range targets NaN on the device
    (:func:`_nan_where_out_of_range`).  CuPy fancy indexing *wraps* out-of-bounds
    indices, so without that a target of -1 would silently pick the last class.
    """
    if not isinstance(target, Tensor):
        target = Tensor(target, device=device)
    if target.device != device:
        raise RuntimeError(f"{op}: target is on {target.device} but the input is on {device}")
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: target must be an integer tensor of class indices, got dtype {target.dtype} "
            "(class probabilities are not supported; convert labels with .long())"
        )
    if target.shape != (n,):
        raise ValueError(f"{op}: target must have shape ({n},) to match the input's batch size, got {target.shape}")
    if n and not backend.is_cuda_array(target.data):
        low, high = int(target.data.min()), int(target.data.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"{op}: target value {bad} is out of range for {num_classes} classes (expected 0..{num_classes - 1})"
            )
    return target


def _nan_where_out_of_range(values: Any, target: Any, num_classes: int) -> Any:
    """``values`` (rows indexed like ``target``) with NaN in the rows whose target is outside
    [0, C): the sync-free GPU stand-in for the CPU's range check in :func:`_check_target`."""
    xp = backend.xp_of(values)
    valid = (target >= 0) & (target < num_classes)
    valid = valid.reshape(valid.shape + (1,) * (values.ndim - 1))
    return xp.where(valid, values, values.dtype.type(xp.nan))


def _check_input(op: str, x: Any, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{op}: {name} must have shape (N, C), got {x.shape}")
    if not backend.is_floating(x.dtype):
        raise TypeError(f"{op}: {name} must be floating point, got dtype {x.dtype}")


class CrossEntropy(Function):
    """loss_n = logsumexp(z_n) - sum_c q_nc z_nc  with q = (1-eps) onehot(y) + eps/C;
    dloss_n/dz_n = softmax(z_n) - q_n  (then scaled by 1/N for the mean)."""

    @staticmethod
    def forward(ctx: Context, logits: Any, target: Any, reduction: str, label_smoothing: float) -> Any:
        xp = backend.xp_of(logits)
        N, C = logits.shape
        rows = xp.arange(N)
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        log_probs = shifted - xp.log(sum_exp)
        eps = logits.dtype.type(label_smoothing)
        losses = -log_probs[rows, target]
        if label_smoothing:
            # -sum_c q_c log p_c = (1 - eps) * (-log p_y) + eps * mean_c(-log p_c)
            losses = (1 - eps) * losses - eps * log_probs.mean(axis=1)
        if backend.is_cuda_array(target):  # unchecked on the host: NaN marks out-of-range targets
            losses = _nan_where_out_of_range(losses, target, C)
        if ctx.needs_input_grad:
            exp /= sum_exp  # softmax, computed in place
            ctx.save_for_backward(exp, target)
            ctx.reduction, ctx.eps = reduction, eps
        return apply_reduction(losses, reduction)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        probs, target = ctx.saved_tensors
        xp = backend.xp_of(probs)
        N, C = probs.shape
        eps = ctx.eps
        dz = probs - eps / C if eps else probs.copy()  # softmax - eps/C (the smoothing's uniform part)
        dz[xp.arange(N), target] -= 1 - eps  # minus the one-hot part
        dz *= _reduction_grad(grad, ctx.reduction, N)
        if backend.is_cuda_array(target):
            dz = _nan_where_out_of_range(dz, target, C)
        return dz, None


class NLLLoss(Function):
    """loss_n = -a_{n, y_n} for log-probabilities a;  dloss_n/da_nc = -1 if c == y_n else 0."""

    @staticmethod
    def forward(ctx: Context, log_probs: Any, target: Any, reduction: str) -> Any:
        xp = backend.xp_of(log_probs)
        losses = -log_probs[xp.arange(log_probs.shape[0]), target]
        if backend.is_cuda_array(target):  # unchecked on the host: NaN marks out-of-range targets
            losses = _nan_where_out_of_range(losses, target, log_probs.shape[1])
        ctx.save_for_backward(target)
        ctx.shape, ctx.reduction = log_probs.shape, reduction
        return apply_reduction(losses, reduction)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (target,) = ctx.saved_tensors
        xp = backend.xp_of(grad)
        N = ctx.shape[0]
        da = xp.zeros(ctx.shape, dtype=grad.dtype)
        da[xp.arange(N), target] = -_reduction_grad(grad, ctx.reduction, N)[:, 0]
        if backend.is_cuda_array(target):
            da = _nan_where_out_of_range(da, target, ctx.shape[1])
        return da, None


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of ``logits`` (N, C) against integer class labels ``target`` (N,).

    ``reduction``: "mean" (over N), "sum", or "none" (one loss per row).
    ``label_smoothing`` eps in [0, 1] mixes the one-hot target with the uniform
    distribution: q = (1 - eps) onehot + eps / C.  The loss has ``logits``' dtype
    (int64 labels never promote float32).

    A target outside [0, C) raises ValueError on the CPU; on a GPU it makes that
    row's loss and gradient NaN instead (no host sync; see ``_check_target``).
    """
    op = "cross_entropy"
    _check_input(op, logits, "logits")
    validate.reduction(reduction, op)
    label_smoothing = validate.label_smoothing(label_smoothing, op)
    N, C = logits.shape
    target = _check_target(op, target, N, C, logits.device)
    return CrossEntropy.apply(logits, target, reduction, float(label_smoothing))


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: -log_probs[n, target[n]], reduced (pair it with ``log_softmax``).

    Out-of-range targets: ValueError on the CPU, NaN rows on a GPU (as in :func:`cross_entropy`).
    """
    op = "nll_loss"
    _check_input(op, log_probs, "log_probs")
    validate.reduction(reduction, op)
    N, C = log_probs.shape
    target = _check_target(op, target, N, C, log_probs.device)
    return NLLLoss.apply(log_probs, target, reduction)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error (input - target)^2, reduced; d/d input = 2 (input - target) / numel for the mean.

    Composed from differentiable primitives, so ``target`` may require grad too.
    """
    op = "mse_loss"
    validate.reduction(reduction, op)
    input, target = coerce_pair(input, target, op)
    if input.shape != target.shape:
        raise ValueError(f"{op}: input shape {input.shape} and target shape {target.shape} differ")
    if not backend.is_floating(input.dtype):
        raise TypeError(f"{op}: expected floating-point tensors, got dtype {input.dtype}")
    diff = input - target
    return apply_reduction(diff * diff, reduction)
