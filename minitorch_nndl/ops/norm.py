"""Batch normalization as one fused op with a closed-form backward.

Per channel c, over the M = N (or N*H*W) values x_i of that channel:

    mu = (1/M) sum_i x_i,   var = (1/M) sum_i (x_i - mu)^2,   sigma = sqrt(var + eps)
    xhat_i = (x_i - mu) / sigma,   y_i = gamma * xhat_i + beta

Backward, with g_i = dL/dy_i.  The parameters are easy:
dL/dbeta = sum_i g_i and dL/dgamma = sum_i g_i xhat_i.  For x, every xhat_j
depends on every x_i through mu and sigma:  dmu/dx_i = 1/M and
dsigma/dx_i = xhat_i / M, so

    dxhat_j/dx_i = (delta_ij - 1/M - xhat_i xhat_j / M) / sigma

and summing  gamma g_j dxhat_j/dx_i  over j gives the closed form

    dL/dx_i = gamma / (M sigma) * (M g_i - sum_j g_j - xhat_i sum_j g_j xhat_j).

(The gradient is orthogonal to the constant vector: shifting a channel's input
does not change its normalized output.  It is orthogonal to xhat only when
var >> eps: sum_i xhat_i^2 = M var/(var + eps), so sum_i xhat_i dL/dx_i =
gamma/sigma * eps/(var + eps) * sum_j g_j xhat_j; scaling the input changes
the output a little, because eps does not scale with it.)

In evaluation mode the statistics are constants (the running averages), so
y is affine in x and  dL/dx_i = gamma g_i / sqrt(running_var + eps).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import backend
from ..autograd import Context, Function
from ..kernels import parallel
from ..kernels.arrays import relu_into
from ..tensor import Tensor


class _Layout(NamedTuple):
    """How BatchNorm's passes see its arrays.

    An activation from a convolution is channels-last in memory (N, H, W, C) under its NCHW
    shape.  A per-channel vector broadcast against it as (1, C, 1, 1) makes NumPy loop over
    runs of only C values; viewed as rows (N, H*W*C), against the vector repeated H*W times,
    the same pass runs over whole images (measured, 1M float32 values with 64 channels:
    0.10 instead of 0.21 ms for a subtraction).  And a per-channel sum over the rows is a
    matrix-vector product, ones @ (N*H*W, C) (0.06 instead of 0.26 ms for ``sum(axis=(0, 2, 3))``).
    ``rows`` is False for anything else (a 2-D input, NCHW memory, CuPy arrays), which keeps the
    plain broadcasts."""

    rows: bool
    shape: tuple[int, ...]  # a per-channel vector's shape for NCHW broadcasting
    repeat: int  # H*W: how often the row repeats the vector

    @staticmethod
    def of(x: Any, *others: Any) -> _Layout:
        """The layout for passes over ``x`` and ``others`` (arrays of its shape): rows only if all are
        channels-last NumPy arrays."""
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        rows = x.ndim == 4 and all(
            not backend.is_cuda_array(a) and a.transpose(0, 2, 3, 1).flags.c_contiguous for a in (x, *others)
        )
        return _Layout(bool(rows), shape, x.shape[2] * x.shape[3] if rows else 1)

    def view(self, a: Any) -> Any:
        """``a`` (an array laid out like x) as the passes index it: rows (N, H*W*C), or itself."""
        return a.transpose(0, 2, 3, 1).reshape(a.shape[0], -1) if self.rows else a

    def vector(self, v: Any) -> Any:
        """A per-channel vector (C,) ready to broadcast against :meth:`view`'s arrays."""
        return backend.xp_of(v).tile(v, self.repeat) if self.rows else v.reshape(self.shape)

    def channel_sum(self, a: Any) -> Any:
        """sum over every axis but the channels of ``a``, a :meth:`view` (or a part of one along the batch)."""
        if not self.rows:
            return a.sum(axis=(0,) if a.ndim == 2 else (0, 2, 3))
        positions = a.reshape(-1, a.shape[1] // self.repeat)  # (n*H*W, C)
        # np.dot, not @: NumPy's matmul keeps the GIL for a matrix-vector product (2.4, measured:
        # two threads' sums then take turns), np.dot lets the other thread run
        return backend.xp_of(a).dot(backend.xp_of(a).ones(positions.shape[0], dtype=a.dtype), positions)

    def channel_dot(self, a: Any, b: Any) -> Any:
        """sum over every axis but the channels of a * b, without an a * b temporary."""
        if self.rows:
            C = a.shape[1] // self.repeat
            return backend.xp_of(a).einsum("nc,nc->c", a.reshape(-1, C), b.reshape(-1, C))
        subscripts = "nc,nc->c" if a.ndim == 2 else "nchw,nchw->c"
        return backend.xp_of(a).einsum(subscripts, a, b)


class BatchNorm(Function):
    """y = gamma (x - mu) / sigma + beta per channel.
    Training: dL/dx = gamma/(M sigma) (M g - sum g - xhat sum(g xhat));  eval: dL/dx = gamma g / sigma.
    Both: dL/dgamma = sum g xhat,  dL/dbeta = sum g.

    The forward saves x, mu and 1/sigma, not xhat: one activation either way, and the
    backward recomputes x - mu in the array that becomes dL/dx, so xhat is never a
    second activation-sized array held from the forward to the backward.

    With a ``residual`` r and ``relu`` it is z = max(y + r, 0) (what ends a residual block),
    added and clamped in the normalizing pass itself, with no array for y + r nor a second one
    for the ReLU.  Backward: the incoming gradient masked, g' = g * (z > 0), is dL/dr and goes
    into the formulas above in place of g."""

    @staticmethod
    def forward(
        ctx: Context,
        x: Any,
        weight: Any,
        bias: Any,
        running_mean: Any,
        running_var: Any,
        use_batch_stats: bool,
        update_running: bool,
        momentum: float,
        eps: float,
        residual: Any = None,
        relu: bool = False,
    ) -> Any:
        xp = backend.xp_of(x)
        N = x.shape[0]
        count = x.size // x.shape[1]
        y = xp.empty_like(x)  # x's memory order (channels-last stays channels-last)
        layout = _Layout.of(x)
        X, Y = layout.view(x), layout.view(y)
        # Each pass below runs over ranges of the batch, one per thread of kernels.parallel.
        split = parallel.MIN_SPLIT_ELEMENTS  # smaller inputs go through each pass in one call
        if use_batch_stats:
            # one call, in this thread: as a matrix-vector product the sum is quicker than
            # handing a range to another thread (about 60 us there and back)
            mean = (
                layout.channel_sum(X)
                if layout.rows
                else parallel.sum_over_batch_ranges(lambda i, j: layout.channel_sum(X[i:j]), N, x, split)
            )
            mean /= x.dtype.type(count)
            mean_vector = layout.vector(mean)

            def centre(i: int, j: int) -> Any:  # y = x - mu, and the sum of its squares
                xp.subtract(X[i:j], mean_vector, out=Y[i:j])
                return layout.channel_dot(Y[i:j], Y[i:j])

            var = parallel.sum_over_batch_ranges(centre, N, x, split) / x.dtype.type(count)  # biased: it normalizes
            if update_running:
                unbiased = var * (count / (count - 1))
                running_mean *= 1 - momentum
                running_mean += (momentum * mean).astype(running_mean.dtype, copy=False)
                running_var *= 1 - momentum
                running_var += (momentum * unbiased).astype(running_var.dtype, copy=False)
        else:
            mean = running_mean.astype(x.dtype, copy=False)
            var = running_var.astype(x.dtype, copy=False)
        inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))
        scale = inv_std if weight is None else inv_std * weight
        scale_vector = layout.vector(scale)
        if use_batch_stats:  # y holds x - mu already: y = gamma (x - mu) / sigma + beta in place
            bias_vector = None if bias is None else layout.vector(bias)

            def normalize(i: int, j: int) -> None:
                Y[i:j] *= scale_vector
                if bias_vector is not None:
                    Y[i:j] += bias_vector

        else:  # constant statistics: y = x * scale + shift in two passes, as PyTorch computes it
            shift = -mean * scale
            if bias is not None:
                shift += bias
            shift_vector = layout.vector(shift)

            def normalize(i: int, j: int) -> None:
                xp.multiply(X[i:j], scale_vector, out=Y[i:j])
                Y[i:j] += shift_vector

        def normalize_then(i: int, j: int) -> None:  # each range: normalized, then + r and max(., 0)
            normalize(i, j)
            if residual is not None:
                y[i:j] += residual[i:j]
            if relu:
                relu_into(y[i:j], y[i:j])

        parallel.for_batch_ranges(normalize_then, N, x, split)
        if ctx.needs_input_grad:
            ctx.save_for_backward(x, mean, inv_std, weight, y if relu else None)
            ctx.count, ctx.batch_stats = count, use_batch_stats
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        x, mean, inv_std, weight, out = ctx.saved_tensors
        needs = ctx.needs_input_grad
        xp = backend.xp_of(grad)
        N = grad.shape[0]
        dx = dweight = dbias = None
        incoming = grad
        if out is not None:  # through the ReLU first: g' = g * (z > 0), into a fresh array
            grad = xp.empty_like(out)  # the memory order of z (channels-last), whatever the grad's
        centre = needs[1] or (needs[0] and ctx.batch_stats)
        split = parallel.MIN_SPLIT_ELEMENTS
        layout = _Layout.of(x, grad)
        X, G = layout.view(x), layout.view(grad)
        if centre:
            centred = xp.empty_like(x)  # x - mu = xhat * sigma; becomes dL/dx below
            CENTRED = layout.view(centred)
            mean_vector = layout.vector(mean)

        def sums(i: int, j: int) -> Any:  # per channel: sum g, and sum g (x - mu)
            if out is not None:  # the mask as 0/1 floats, then times g (faster than g * mask, which casts booleans)
                xp.greater(out[i:j], 0, out=grad[i:j])
                grad[i:j] *= incoming[i:j]
            if not centre:
                return layout.channel_sum(G[i:j])
            xp.subtract(X[i:j], mean_vector, out=CENTRED[i:j])
            return xp.stack([layout.channel_sum(G[i:j]), layout.channel_dot(G[i:j], CENTRED[i:j])])

        totals = parallel.sum_over_batch_ranges(sums, N, grad, split)
        grad_sum, grad_xhat_sum = (totals[0], totals[1] * inv_std) if centre else (totals, None)
        if needs[0]:
            scale = inv_std if weight is None else weight * inv_std  # gamma / sigma
            if ctx.batch_stats:
                m = grad.dtype.type(ctx.count)
                dx = centred
                along_xhat = layout.vector(-inv_std * grad_xhat_sum / m)
                mean_grad = layout.vector(grad_sum / m)
                scale_vector = layout.vector(scale)

                def input_gradient(i: int, j: int) -> None:  # (g - sum(g)/M - xhat sum(g xhat)/M) gamma/sigma
                    CENTRED[i:j] *= along_xhat
                    CENTRED[i:j] += G[i:j]
                    CENTRED[i:j] -= mean_grad
                    CENTRED[i:j] *= scale_vector

                parallel.for_batch_ranges(input_gradient, N, grad, split)
            else:
                dx = grad * scale.reshape(layout.shape)
        if weight is not None and needs[1]:
            dweight = grad_xhat_sum
        if needs[2]:
            dbias = grad_sum
        # dL/dr = g' (z = max(y + r, 0)); callers of the 9-argument form (the exercises) pass no residual
        dresidual = grad if len(needs) > 9 and needs[9] else None
        return dx, dweight, dbias, None, None, None, None, None, None, dresidual


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    residual: Tensor | None = None,
    relu: bool = False,
) -> Tensor:
    """Batch normalization of ``x`` (N, C) or (N, C, H, W) per channel C.

    ``training=True`` normalizes with the batch's statistics (biased variance)
    and, when running statistics are given, updates them in place:
    ``running = (1 - momentum) * running + momentum * batch_stat``, with the
    *unbiased* batch variance, as PyTorch does.  ``training=False`` normalizes
    with the running statistics (or the batch's when they are None).
    ``weight`` (gamma) and ``bias`` (beta) are per-channel Tensors, or None.
    ``residual`` (a Tensor like ``x``) and ``relu`` make it ``relu(batch_norm(x) + residual)``
    in one op, gradients included (see :class:`BatchNorm`): the end of a residual block.
    """
    op = "batch_norm"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.ndim not in (2, 4):
        raise ValueError(f"{op}: expected a 2-D (N, C) or 4-D (N, C, H, W) input, got shape {x.shape}")
    if not backend.is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}")
    C = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
        if t.shape != (C,):
            raise ValueError(f"{op}: {name} has shape {t.shape}, expected ({C},) for input shape {x.shape}")
        if name in ("weight", "bias") and t.dtype != x.dtype:
            raise TypeError(f"{op}: {name} dtype {t.dtype} differs from the input dtype {x.dtype}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"{op}: momentum must be in [0, 1], got {momentum}")
    if eps <= 0:
        raise ValueError(f"{op}: eps must be positive, got {eps}")
    use_batch_stats = bool(training) or running_mean is None
    if use_batch_stats and x.numel() // max(C, 1) <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got input shape {x.shape}")
    if residual is not None and (
        not isinstance(residual, Tensor) or residual.shape != x.shape or residual.dtype != x.dtype
    ):
        given = f"{residual.shape} {residual.dtype}" if isinstance(residual, Tensor) else type(residual).__name__
        raise ValueError(f"{op}: residual must be a Tensor like the input ({x.shape} {x.dtype}), got {given}")
    update_running = bool(training) and running_mean is not None
    return BatchNorm.apply(
        x,
        weight,
        bias,
        running_mean,
        running_var,
        use_batch_stats,
        update_running,
        float(momentum),
        float(eps),
        residual,
        bool(relu),
    )
