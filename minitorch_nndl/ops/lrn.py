"""Local response normalisation (Krizhevsky et al. 2012, section 3.3), as PyTorch defines it.

Each activation is divided by a power of the energy of its neighbours across channels
at the same position ("lateral inhibition": a strongly active channel damps the ones
next to it).  For an input x of shape (N, C, ...) and a window of n channels,

    S_c = sum_{j in W(c)} x_j^2,    W(c) = {c - n//2, ..., c + (n-1)//2}  (clipped to 0..C-1)
    d_c = k + (alpha / n) S_c,       y_c = x_c d_c^(-beta)

(PyTorch divides alpha by n; the paper does not, so the paper's alpha = 1e-4 is
PyTorch's alpha = n * 1e-4.)  Backward, with g = dL/dy: y_c depends on x_i directly
when c = i and through d_c whenever i is in W(c), with dd_c/dx_i = (2 alpha / n) x_i, so

    dL/dx_i = g_i d_i^(-beta) - (2 alpha beta / n) x_i sum_{c : i in W(c)} g_c x_c d_c^(-beta-1)

and the sum runs over the *transposed* window {i - (n-1)//2, ..., i + n//2}
(the same window when n is odd).  Both window sums are n shifted slices of a
zero-padded channel axis, added up: a loop over the window size only.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Context, Function
from ..tensor import Tensor


def _window_sum(a: Any, before: int, after: int) -> Any:
    """out[:, c] = sum of a[:, c - before .. c + after] along axis 1 (zeros outside 0..C-1)."""
    xp = backend.xp_of(a)
    C = a.shape[1]
    padded = xp.zeros((a.shape[0], C + before + after, *a.shape[2:]), dtype=a.dtype)
    padded[:, before : before + C] = a
    out = xp.array(padded[:, 0:C], copy=True)
    for j in range(1, before + after + 1):
        out += padded[:, j : j + C]
    return out


class LocalResponseNorm(Function):
    """y_c = x_c d_c^(-beta),  d_c = k + (alpha/n) sum_{j in W(c)} x_j^2;
    dL/dx_i = g_i d_i^(-beta) - (2 alpha beta / n) x_i sum_{c: i in W(c)} g_c y_c / d_c."""

    @staticmethod
    def forward(ctx: Context, x: Any, size: int, alpha: float, beta: float, k: float) -> Any:
        xp = backend.xp_of(x)
        scalar = x.dtype.type
        d = _window_sum(x * x, size // 2, (size - 1) // 2)
        d *= scalar(alpha / size)
        d += scalar(k)
        scale = xp.power(d, scalar(-beta))  # d^(-beta)
        y = x * scale
        if ctx.needs_input_grad:
            ctx.save_for_backward(x, y, d, scale)
            ctx.params = (size, alpha, beta)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        x, y, d, scale = ctx.saved_tensors
        size, alpha, beta = ctx.params
        scalar = grad.dtype.type
        t = grad * y
        t /= d  # g_c x_c d_c^(-beta-1)
        inhibition = _window_sum(t, (size - 1) // 2, size // 2)  # the transposed window
        inhibition *= x
        inhibition *= scalar(2 * alpha * beta / size)
        dx = grad * scale
        dx -= inhibition
        return dx, None, None, None, None


def local_response_norm(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Local response normalisation over the channels (axis 1) of an (N, C, ...) input, PyTorch's definition:
    ``y = x / (k + alpha / size * sum of x^2 over a window of `size` channels) ** beta``."""
    op = "local_response_norm"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.ndim < 3:
        raise ValueError(f"{op}: expected an input with 3 or more dimensions (N, C, ...), got shape {x.shape}")
    if not backend.is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{op}: size must be a positive int, got {size!r}")
    if k <= 0 or alpha < 0:
        raise ValueError(f"{op}: need k > 0 and alpha >= 0 (so the divisor is positive), got k={k}, alpha={alpha}")
    return LocalResponseNorm.apply(x, int(size), float(alpha), float(beta), float(k))
