"""Exercise: the backward of cross-entropy with label smoothing (docs/03-op-derivatives.md,
"Cross-entropy: the gradient is p - y").

Logits z (N, C), integer classes ``target`` (N,), smoothing eps: the target
distribution is q = (1 - eps) onehot(target) + eps / C, and

    loss_n = -sum_c q_nc log softmax(z_n)_c,

then averaged over n (``reduction="mean"``), summed ("sum") or kept per row ("none").

Derive: dloss_n/dz_nc (it is famous: "prediction minus target"), then dL/dz from
``grad``, which is 0-d for "mean" and "sum" and (N,) for "none".

Check:  python3 -m minitorch_nndl.exercises check cross_entropy --dir DIR
"""

import numpy as np

import minitorch_nndl as mt


class CrossEntropy(mt.Function):
    """Softmax cross-entropy of logits (N, C) against class indices (N,), with label smoothing."""

    @staticmethod
    def forward(ctx, logits, target, reduction, label_smoothing):
        N, C = logits.shape
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        log_probs = shifted - np.log(exp.sum(axis=1, keepdims=True))
        eps = logits.dtype.type(label_smoothing)  # a float32 scalar for float32 logits
        q = np.full((N, C), eps / C, dtype=logits.dtype)
        q[np.arange(N), target] += 1 - eps
        losses = -(q * log_probs).sum(axis=1)
        ctx.save_for_backward(np.exp(log_probs), q)  # softmax(z) and the target distribution
        ctx.reduction = reduction
        if reduction == "mean":
            return losses.mean()
        if reduction == "sum":
            return losses.sum()
        return losses

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dlogits, None): the integer targets get no gradient."""
        probs, q = ctx.saved_tensors
        raise NotImplementedError("CrossEntropy.backward: derive dL/dlogits (see the module docstring)")
