"""Exercise: the backward of batch normalization in training mode (docs/05-batch-norm.md,
"Backward: from the chain rule to the closed form").

Per channel c, over the M values x_i of that channel (M = N for (N, C) inputs, N*H*W
for (N, C, H, W)):

    mu = mean(x),  var = mean((x - mu)^2),  sigma = sqrt(var + eps)
    xhat = (x - mu) / sigma,   y = gamma * xhat + beta

Derive: dL/dgamma and dL/dbeta (sums over the M values), and dL/dx: every xhat_j
depends on every x_i of its channel through mu and sigma, so use dmu/dx_i = 1/M and
dsigma/dx_i = xhat_i / M and sum the chain rule over j.  The result fits in one line
(vectorized over the channel axis: no loop).  gamma or beta may be None (then return
None for it, and gamma counts as 1).  Training mode only: the grader always passes
use_batch_stats=True.

Check:  python3 -m minitorch_nndl.exercises check batch_norm --dir DIR
"""

import numpy as np

import minitorch_nndl as mt


class BatchNorm(mt.Function):
    """y = gamma (x - mu) / sigma + beta per channel, with the batch's statistics."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, use_batch_stats, update_running, momentum, eps):
        if not use_batch_stats:
            raise ValueError("this exercise's BatchNorm is for training mode (use_batch_stats=True) only")
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)  # a per-channel vector, broadcastable against x
        count = x.size // x.shape[1]
        mean = x.mean(axis=axes)
        var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
        if update_running:  # PyTorch's running statistics, with the unbiased variance
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (count / (count - 1))
        inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
        xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        y = xhat if weight is None else xhat * weight.reshape(shape)
        if bias is not None:
            y = y + bias.reshape(shape)
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.axes, ctx.shape, ctx.count, ctx.has_bias = axes, shape, count, bias is not None
        return y

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx, dL/dgamma, dL/dbeta, None, None); None for a missing gamma or beta."""
        xhat, inv_std, weight = ctx.saved_tensors
        raise NotImplementedError("BatchNorm.backward: derive dL/dx, dL/dgamma, dL/dbeta (see the module docstring)")
