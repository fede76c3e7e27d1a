"""One table of every differentiable op: how to call it, a NumPy reference, and valid inputs.

Each :class:`OpSpec` says how to call an op (``fn(*inputs)``), what NumPy says the
answer is (``reference(*numpy_inputs)``), and a Hypothesis strategy that draws the
positional ``inputs``: shapes including 0-d and size-1 axes, broadcasting pairs from
``broadcastable_shapes``, values inside the op's domain (log/sqrt positive, pow base
positive) and away from kinks and ties (relu/abs/leaky_relu at 0, clamp at its bounds,
max/min/maximum/minimum with distinct values).  ``diff`` names the inputs to
differentiate (None: every floating Tensor); ``allow_mutation`` the inputs an op
may update in place (batch norm's running statistics).

Adding an entry gives the op, at once, the float64 gradcheck, NumPy-reference,
no-mutation and dtype/device checks of ``tests/test_ops_gradcheck.py``, and (with
the right ``tags``) the property tests of ``tests/test_ops_properties.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

import minitorch_nndl as mt
from minitorch_nndl.ops.conv import conv2d
from minitorch_nndl.ops.loss import cross_entropy, mse_loss, nll_loss
from minitorch_nndl.ops.lrn import local_response_norm
from minitorch_nndl.ops.norm import batch_norm
from minitorch_nndl.ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from minitorch_nndl.testing.strategies import (
    broadcastable_pairs,
    broadcastable_shapes,
    conv_params,
    distinct_tensors,
    reals_away_from,
    shapes,
    tensors,
)

MAX_DIMS = 3
MAX_SIDE = 4


@dataclass(frozen=True)
class OpSpec:
    """One row of the table."""

    name: str
    fn: Callable[..., mt.Tensor]
    reference: Callable[..., Any]
    inputs: st.SearchStrategy[tuple]
    diff: tuple[int, ...] | None = None
    allow_mutation: tuple[int, ...] = ()
    tags: frozenset[str] = field(default_factory=frozenset)
    atol: float = 1e-5
    rtol: float = 1e-4

    def __repr__(self) -> str:  # pytest ids and hypothesis reports
        return f"OpSpec({self.name})"


# ------------------------------------------------------------------ value and shape strategies


def floats(low: float = -3.0, high: float = 3.0) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


POSITIVE = floats(0.2, 3.0)
AWAY_FROM_ZERO = reals_away_from([0.0], margin=1e-2)
DENOMINATOR = reals_away_from([0.0], margin=0.5)


def small_shapes(min_dims: int = 0, max_dims: int = MAX_DIMS) -> st.SearchStrategy[tuple[int, ...]]:
    return shapes(min_dims, max_dims, max_side=MAX_SIDE)


def unary(elements: st.SearchStrategy[float] | None = None, min_dims: int = 0) -> st.SearchStrategy[tuple]:
    return tensors(small_shapes(min_dims), elements=elements).map(lambda x: (x,))


def with_consts(tensor_strategy: st.SearchStrategy, *consts: st.SearchStrategy) -> st.SearchStrategy[tuple]:
    return st.tuples(tensor_strategy, *consts)


def binary(
    elements_a: st.SearchStrategy[float] | None = None, elements_b: st.SearchStrategy[float] | None = None
) -> st.SearchStrategy[tuple]:
    """Two tensors whose shapes broadcast together (either may be the bigger, or 0-d)."""
    return broadcastable_pairs(max_dims=MAX_DIMS, max_side=MAX_SIDE).flatmap(
        lambda p: st.tuples(tensors(p[0], elements=elements_a), tensors(p[1], elements=elements_b))
    )


def distinct_binary() -> st.SearchStrategy[tuple]:
    """Two broadcasting tensors with no ties (values 0.01 apart) for maximum/minimum."""
    return broadcastable_pairs(max_dims=MAX_DIMS, max_side=MAX_SIDE).flatmap(lambda p: distinct_tensors(p[0], p[1]))


@st.composite
def where_inputs(draw: Any) -> tuple:
    """cond, a, b with three shapes that broadcast together (each drawn against the others' broadcast)."""
    shape = draw(small_shapes())
    cond_shape = draw(broadcastable_shapes(shape, max_side=MAX_SIDE))
    so_far = np.broadcast_shapes(shape, cond_shape)
    a_shape = draw(broadcastable_shapes(so_far, max_side=MAX_SIDE))
    cond = draw(tensors(cond_shape, dtype=mt.bool_))
    return cond, draw(tensors(a_shape)), draw(tensors(shape))


@st.composite
def clamp_inputs(draw: Any, which: str) -> tuple:
    lo = draw(st.sampled_from([-1.0, -0.5, 0.0])) if which in ("both", "min") else None
    hi = draw(st.sampled_from([0.25, 0.5, 1.0])) if which in ("both", "max") else None
    kinks = [b for b in (lo, hi) if b is not None]
    x = draw(tensors(small_shapes(), elements=reals_away_from(kinks, margin=1e-2, min_value=-2.0, max_value=2.0)))
    return x, lo, hi


def reference_clamp(x: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    return np.clip(x, lo, hi)


@st.composite
def matmul_inputs(draw: Any, kind: str) -> tuple:
    m, k, n = draw(st.integers(1, MAX_SIDE)), draw(st.integers(1, MAX_SIDE)), draw(st.integers(1, MAX_SIDE))
    if kind == "vec_vec":
        sa, sb = (k,), (k,)
    elif kind == "mat_vec":
        sa, sb = (m, k), (k,)
    elif kind == "vec_mat":
        sa, sb = (k,), (k, n)
    elif kind == "mat_mat":
        sa, sb = (m, k), (k, n)
    else:  # batched, with broadcasting batch axes (either side may have fewer)
        batch = draw(shapes(1, 2, max_side=3))
        other = draw(broadcastable_shapes(batch, max_side=3))
        if draw(st.booleans()):
            batch, other = other, batch
        sa, sb = (*batch, m, k), (*other, k, n)
    return draw(tensors(sa)), draw(tensors(sb))


@st.composite
def reduce_inputs(draw: Any, distinct: bool = False, elements: Any = None, correction: bool = False) -> tuple:
    """(x, axis, keepdims[, correction]) with axis None, an int (maybe negative) or a tuple (maybe empty)."""
    shape = draw(small_shapes())
    nd = len(shape)
    if nd == 0:
        axis = None
    else:
        axis = draw(
            st.one_of(
                st.none(),
                st.integers(-nd, nd - 1),
                st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).map(tuple),
            )
        )
    keepdims = draw(st.booleans())
    x = draw(distinct_tensors(shape))[0] if distinct else draw(tensors(shape, elements=elements))
    if not correction:
        return x, axis, keepdims
    axes = range(nd) if axis is None else ([axis] if isinstance(axis, int) else axis)
    n = math.prod(shape[a] for a in axes)
    return x, axis, keepdims, draw(st.sampled_from([0, 1] if n > 1 else [0]))


@st.composite
def softmax_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes())
    axis = draw(st.integers(-len(shape), len(shape) - 1)) if shape else -1
    return draw(tensors(shape, elements=floats(-5.0, 5.0))), axis


def reference_logsumexp(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def reference_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    if x.ndim == 0:
        return np.zeros_like(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def reference_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    return np.exp(reference_log_softmax(x, axis))


@st.composite
def reshape_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes())
    n = math.prod(shape)
    targets = [(-1,), (n,), tuple(reversed(shape)), (*shape, 1), (1, -1)]
    if n % 2 == 0:
        targets += [(2, -1), (-1, 2, 1)]
    return draw(tensors(shape)), draw(st.sampled_from(targets))


@st.composite
def permute_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes())
    return draw(tensors(shape)), tuple(draw(st.permutations(range(len(shape)))))


@st.composite
def swap_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes(min_dims=1))
    nd = len(shape)
    return draw(tensors(shape)), draw(st.integers(-nd, nd - 1)), draw(st.integers(-nd, nd - 1))


def reference_swap(x: np.ndarray, i: int, j: int) -> np.ndarray:
    return np.swapaxes(x, i, j)


@st.composite
def flatten_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes())
    nd = max(len(shape), 1)
    start = draw(st.integers(0, nd - 1))
    end = draw(st.integers(start, nd - 1))
    return draw(tensors(shape)), start, end


def reference_flatten(x: np.ndarray, start: int, end: int) -> np.ndarray:
    if x.ndim == 0:
        return x.reshape(1)
    return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])


@st.composite
def squeeze_inputs(draw: Any) -> tuple:
    shape = draw(shapes(0, MAX_DIMS, max_side=2))
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = draw(st.one_of(st.none(), st.sampled_from(ones))) if ones else None
    return draw(tensors(shape)), axis


@st.composite
def unsqueeze_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes())
    nd = len(shape)
    return draw(tensors(shape)), draw(st.integers(-(nd + 1), nd))


@st.composite
def broadcast_to_inputs(draw: Any, minus_one: bool) -> tuple:
    shape = draw(small_shapes())
    other = draw(broadcastable_shapes(shape, max_dims=len(shape) + 1, max_side=MAX_SIDE))
    target = tuple(np.broadcast_shapes(shape, other))
    if minus_one:  # expand: -1 keeps a size, allowed only on axes the input already has
        offset = len(target) - len(shape)
        target = tuple(
            -1 if i >= offset and n == shape[i - offset] and draw(st.booleans()) else n for i, n in enumerate(target)
        )
    return draw(tensors(shape)), target


def reference_expand(x: np.ndarray, target: tuple[int, ...]) -> np.ndarray:
    offset = len(target) - x.ndim
    return np.broadcast_to(x, tuple(x.shape[i - offset] if n == -1 else n for i, n in enumerate(target)))


@st.composite
def getitem_int_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes(min_dims=1))
    return draw(tensors(shape)), draw(st.integers(-shape[0], shape[0] - 1))


@st.composite
def getitem_slice_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes(min_dims=1))
    index = []
    for n in shape[: draw(st.integers(1, len(shape)))]:
        step = draw(st.sampled_from([1, 2, -1, -2]))
        start = draw(st.one_of(st.none(), st.integers(-n, n - 1)))
        stop = draw(st.one_of(st.none(), st.integers(-n - 1, n)))
        index.append(slice(start, stop, step))
    index = tuple(index)
    x = draw(tensors(shape))
    if np.empty(shape)[index].size == 0:  # keep the result non-empty, so there is something to check
        index = (slice(None),)
    return x, index


@st.composite
def getitem_mask_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes(min_dims=1))
    mask_shape = shape if draw(st.booleans()) else shape[:1]
    return draw(tensors(shape)), draw(tensors(mask_shape, dtype=mt.bool_))


@st.composite
def getitem_array_inputs(draw: Any, mixed: bool) -> tuple:
    """An integer array index with at least one repeat, as a Tensor, on axis 0 (or axis 1 after a slice)."""
    shape = draw(small_shapes(min_dims=2 if mixed else 1))
    axis = 1 if mixed else 0
    n = shape[axis]
    picks = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5))
    picks.append(picks[0] + (n if picks[0] < 0 else 0))  # the same element again, maybe spelled differently
    idx = mt.tensor(np.asarray(picks, dtype=np.int64))
    return draw(tensors(shape)), ((slice(None), idx) if mixed else idx)


def reference_getitem(x: np.ndarray, index: Any) -> np.ndarray:
    def host(i: Any) -> Any:
        return np.asarray(i) if isinstance(i, mt.Tensor) else i

    index = tuple(host(i) for i in index) if isinstance(index, tuple) else host(index)
    return x[index]


@st.composite
def concatenate_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes(min_dims=1))
    nd = len(shape)
    axis = draw(st.integers(-nd, nd - 1))
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        s = list(shape)
        s[axis] = draw(st.integers(1, MAX_SIDE))
        parts.append(draw(tensors(tuple(s))))
    return (*parts, axis)


@st.composite
def stack_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes(max_dims=2))
    axis = draw(st.integers(-(len(shape) + 1), len(shape)))
    parts = [draw(tensors(shape)) for _ in range(draw(st.integers(1, 3)))]
    return (*parts, axis)


@st.composite
def pad_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes(min_dims=1))
    width = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    return draw(tensors(shape)), width, draw(st.sampled_from([0.0, -1.5]))


# ------------------------------------------------------------------ convolution, pooling, normalization, losses


@st.composite
def conv_inputs(draw: Any, bias: bool) -> tuple:
    p = draw(conv_params(max_batch=2, max_channels=4, max_size=5))
    x = draw(tensors(p.input_shape))
    w = draw(tensors(p.weight_shape))
    b = draw(tensors((p.out_channels,))) if bias else None
    return x, w, b, p.stride, p.padding, p.dilation, p.groups


def reference_conv2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int, dilation: int, groups: int
) -> np.ndarray:
    """Direct convolution: a sum over kernel offsets of strided slices of the zero-padded input."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    OH = (H + 2 * padding - dilation * (KH - 1) - 1) // stride + 1
    OW = (W + 2 * padding - dilation * (KW - 1) - 1) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((N, O, OH, OW))
    og = O // groups
    for g in range(groups):
        xs, ws = xp[:, g * Cg : (g + 1) * Cg], w[g * og : (g + 1) * og]
        for i in range(KH):
            for j in range(KW):
                r, c = i * dilation, j * dilation
                patch = xs[:, :, r : r + stride * (OH - 1) + 1 : stride, c : c + stride * (OW - 1) + 1 : stride]
                out[:, g * og : (g + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    return out if b is None else out + b[None, :, None, None]


@st.composite
def pool_inputs(draw: Any, distinct: bool) -> tuple:
    k = draw(st.integers(1, 3))
    stride = draw(st.sampled_from([None, 1, 2]))
    padding = draw(st.integers(0, k // 2))
    smallest = max(1, k - 2 * padding)
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 3)),
        draw(st.integers(smallest, 5)),
        draw(st.integers(smallest, 5)),
    )
    x = draw(distinct_tensors(shape))[0] if distinct else draw(tensors(shape))
    return x, k, stride, padding


def _pool_windows(x: np.ndarray, k: int, stride: int | None, padding: int, fill: float) -> np.ndarray:
    """(N, C, OH, OW, k*k): every window of the padded input."""
    s = k if stride is None else stride
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=fill)
    OH = (x.shape[2] + 2 * padding - k) // s + 1
    OW = (x.shape[3] + 2 * padding - k) // s + 1
    taps = [xp[:, :, i : i + s * (OH - 1) + 1 : s, j : j + s * (OW - 1) + 1 : s] for i in range(k) for j in range(k)]
    return np.stack(taps, axis=-1)


def reference_max_pool2d(x: np.ndarray, k: int, stride: int | None, padding: int) -> np.ndarray:
    return _pool_windows(x, k, stride, padding, -np.inf).max(axis=-1)


def reference_avg_pool2d(x: np.ndarray, k: int, stride: int | None, padding: int) -> np.ndarray:
    return _pool_windows(x, k, stride, padding, 0.0).mean(axis=-1)


@st.composite
def adaptive_pool_inputs(draw: Any) -> tuple:
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    out = (draw(st.integers(1, shape[2])), draw(st.integers(1, shape[3])))
    return draw(tensors(shape)), out


def reference_adaptive_avg_pool2d(x: np.ndarray, out: tuple[int, int]) -> np.ndarray:
    H, W = x.shape[2:]
    OH, OW = out
    rows = [(i * H // OH, -(-(i + 1) * H // OH)) for i in range(OH)]
    cols = [(j * W // OW, -(-(j + 1) * W // OW)) for j in range(OW)]
    result = np.zeros((*x.shape[:2], OH, OW))
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            result[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return result


@st.composite
def batch_norm_inputs(draw: Any, training: bool) -> tuple:
    four_d = draw(st.booleans())
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (N, C, draw(st.integers(1, 3)), draw(st.integers(1, 3))) if four_d else (N, C)
    if training and math.prod(shape) // C < 2:
        shape = (2, *shape[1:])
    x = draw(distinct_tensors(shape, min_gap=0.05))[0]
    affine = draw(st.booleans())
    weight = draw(tensors((C,), elements=floats(0.5, 2.0))) if affine else None
    bias = draw(tensors((C,))) if affine else None
    running = draw(st.booleans()) if training else True
    mean = draw(tensors((C,), non_contiguous=False)) if running else None
    var = draw(tensors((C,), elements=floats(0.5, 2.0), non_contiguous=False)) if running else None
    return x, mean, var, weight, bias, training


def reference_batch_norm(
    x: np.ndarray, mean: Any, var: Any, weight: Any, bias: Any, training: bool, eps: float = 1e-5
) -> np.ndarray:
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    view = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    if training or mean is None:
        mu, sigma2 = x.mean(axis=axes), x.var(axis=axes)
    else:
        mu, sigma2 = mean, var
    y = (x - mu.reshape(view)) / np.sqrt(sigma2.reshape(view) + eps)
    if weight is not None:
        y = y * weight.reshape(view) + bias.reshape(view)
    return y


@st.composite
def classification_inputs(draw: Any, smoothing: bool) -> tuple:
    N, C = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    logits = draw(tensors((N, C), elements=floats(-5.0, 5.0)))
    target = draw(tensors((N,), dtype=mt.int64, elements=st.integers(0, C - 1)))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    if not smoothing:
        return logits, target, reduction
    return logits, target, reduction, draw(st.sampled_from([0.0, 0.1, 0.3]))


def _reduce_losses(losses: np.ndarray, reduction: str) -> np.ndarray:
    return {"mean": losses.mean, "sum": losses.sum}.get(reduction, lambda: losses)()


def reference_cross_entropy(z: np.ndarray, t: np.ndarray, reduction: str, smoothing: float) -> np.ndarray:
    logp = reference_log_softmax(z, 1)
    q = np.full(z.shape, smoothing / z.shape[1])
    q[np.arange(len(t)), t] += 1.0 - smoothing
    return _reduce_losses(-(q * logp).sum(axis=1), reduction)


def reference_nll_loss(logp: np.ndarray, t: np.ndarray, reduction: str) -> np.ndarray:
    return _reduce_losses(-logp[np.arange(len(t)), t], reduction)


@st.composite
def mse_inputs(draw: Any) -> tuple:
    shape = draw(small_shapes())
    return draw(tensors(shape)), draw(tensors(shape)), draw(st.sampled_from(["mean", "sum", "none"]))


def reference_mse_loss(a: np.ndarray, b: np.ndarray, reduction: str) -> np.ndarray:
    return _reduce_losses((a - b) ** 2, reduction)


@st.composite
def lrn_inputs(draw: Any) -> tuple:
    """(x, size, alpha, beta, k): x (N, C, ...) of 3 or 4 dims; alpha large enough that the window term matters."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 6)), *draw(shapes(1, 2, max_side=3)))
    size = draw(st.integers(1, 5))
    alpha = draw(st.sampled_from([1e-4, 0.5, 2.0]))
    beta = draw(st.sampled_from([0.75, 0.5, 1.5]))
    k = draw(st.sampled_from([1.0, 2.0]))
    return draw(tensors(shape)), size, alpha, beta, k


def reference_lrn(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """PyTorch's definition, channel by channel: the window is c - size//2 .. c + (size-1)//2."""
    C = x.shape[1]
    energy = np.stack([(x[:, max(0, c - size // 2) : c + (size - 1) // 2 + 1] ** 2).sum(axis=1) for c in range(C)], 1)
    return x / (k + alpha / size * energy) ** beta


# ------------------------------------------------------------------ the table

BINARY = frozenset({"binary"})

OPS: list[OpSpec] = [
    # arithmetic, with broadcasting
    OpSpec("add", mt.add, np.add, binary(), tags=BINARY),
    OpSpec("sub", mt.sub, np.subtract, binary(), tags=BINARY),
    OpSpec("mul", mt.mul, np.multiply, binary(), tags=BINARY),
    OpSpec("div", mt.div, np.divide, binary(None, DENOMINATOR), tags=BINARY),
    OpSpec("add_scalar", lambda x, c: x + c, lambda x, c: x + c, with_consts(tensors(small_shapes()), floats())),
    OpSpec("rsub_scalar", lambda x, c: c - x, lambda x, c: c - x, with_consts(tensors(small_shapes()), floats())),
    OpSpec(
        "rdiv_scalar",
        lambda x, c: c / x,
        lambda x, c: c / x,
        with_consts(tensors(small_shapes(), elements=DENOMINATOR), floats()),
    ),
    OpSpec("neg", mt.neg, np.negative, unary()),
    OpSpec("pow", mt.pow, np.power, binary(floats(0.5, 2.5), floats(-2.0, 2.0)), tags=BINARY),
    OpSpec(
        "pow_scalar",
        lambda x, p: x**p,
        np.power,
        with_consts(tensors(small_shapes(), elements=floats(0.3, 2.5)), st.sampled_from([2.0, 3.0, 0.5, -1.0, 1.5])),
    ),
    OpSpec(
        "pow_int_scalar", lambda x, p: x**p, np.power, with_consts(tensors(small_shapes()), st.sampled_from([2, 3]))
    ),
    OpSpec(
        "rpow_scalar",
        lambda x, c: c**x,
        lambda x, c: np.power(c, x),
        with_consts(tensors(small_shapes(), elements=floats(-2.0, 2.0)), floats(0.5, 3.0)),
    ),
    OpSpec("matmul_vec_vec", mt.matmul, np.matmul, matmul_inputs("vec_vec")),
    OpSpec("matmul_mat_vec", mt.matmul, np.matmul, matmul_inputs("mat_vec")),
    OpSpec("matmul_vec_mat", mt.matmul, np.matmul, matmul_inputs("vec_mat")),
    OpSpec("matmul_mat_mat", mt.matmul, np.matmul, matmul_inputs("mat_mat")),
    OpSpec("matmul_batched", mt.matmul, np.matmul, matmul_inputs("batched")),
    # elementwise
    OpSpec("exp", mt.exp, np.exp, unary()),
    OpSpec("log", mt.log, np.log, unary(POSITIVE)),
    OpSpec("sqrt", mt.sqrt, np.sqrt, unary(POSITIVE)),
    OpSpec("abs", mt.abs, np.abs, unary(AWAY_FROM_ZERO)),
    OpSpec("tanh", mt.tanh, np.tanh, unary()),
    OpSpec("sigmoid", mt.sigmoid, lambda x: 1 / (1 + np.exp(-x)), unary(floats(-6.0, 6.0))),
    OpSpec("relu", mt.relu, lambda x: np.maximum(x, 0), unary(AWAY_FROM_ZERO)),
    OpSpec(
        "leaky_relu",
        mt.leaky_relu,
        lambda x, a: np.where(x > 0, x, a * x),
        with_consts(tensors(small_shapes(), elements=AWAY_FROM_ZERO), st.sampled_from([0.01, 0.2])),
    ),
    OpSpec("clamp", mt.clamp, reference_clamp, clamp_inputs("both")),
    OpSpec("clamp_min", mt.clamp, reference_clamp, clamp_inputs("min")),
    OpSpec("clamp_max", mt.clamp, reference_clamp, clamp_inputs("max")),
    OpSpec("maximum", mt.maximum, np.maximum, distinct_binary(), tags=BINARY),
    OpSpec("minimum", mt.minimum, np.minimum, distinct_binary(), tags=BINARY),
    OpSpec("where", mt.where, np.where, where_inputs(), tags=frozenset({"where"})),
    # reductions
    OpSpec("sum", mt.sum, lambda x, a, k: np.sum(x, axis=a, keepdims=k), reduce_inputs()),
    OpSpec("mean", mt.mean, lambda x, a, k: np.mean(x, axis=a, keepdims=k), reduce_inputs()),
    OpSpec(
        "var",
        mt.var,
        lambda x, a, k, c: np.var(x, axis=a, keepdims=k, ddof=c),
        reduce_inputs(correction=True),
    ),
    OpSpec("max", mt.max, lambda x, a, k: np.max(x, axis=a, keepdims=k), reduce_inputs(distinct=True)),
    OpSpec("min", mt.min, lambda x, a, k: np.min(x, axis=a, keepdims=k), reduce_inputs(distinct=True)),
    OpSpec("logsumexp", mt.logsumexp, reference_logsumexp, reduce_inputs(elements=floats(-5.0, 5.0))),
    OpSpec("softmax", mt.softmax, reference_softmax, softmax_inputs()),
    OpSpec("log_softmax", mt.log_softmax, reference_log_softmax, softmax_inputs()),
    # shape
    OpSpec("reshape", mt.reshape, np.reshape, reshape_inputs()),
    OpSpec("transpose", mt.transpose, np.transpose, unary()),
    OpSpec("transpose_two_axes", mt.transpose, reference_swap, swap_inputs()),
    OpSpec("permute", mt.permute, np.transpose, permute_inputs()),
    OpSpec("flatten", mt.flatten, reference_flatten, flatten_inputs()),
    OpSpec("squeeze", mt.squeeze, np.squeeze, squeeze_inputs()),
    OpSpec("unsqueeze", mt.unsqueeze, np.expand_dims, unsqueeze_inputs()),
    OpSpec("expand", mt.expand, reference_expand, broadcast_to_inputs(minus_one=True)),
    OpSpec("broadcast_to", mt.broadcast_to, np.broadcast_to, broadcast_to_inputs(minus_one=False)),
    OpSpec("getitem_int", lambda x, i: x[i], reference_getitem, getitem_int_inputs()),
    OpSpec("getitem_slices", lambda x, i: x[i], reference_getitem, getitem_slice_inputs()),
    OpSpec("getitem_bool_mask", lambda x, m: x[m], lambda x, m: x[m], getitem_mask_inputs()),
    OpSpec("getitem_int_array", lambda x, i: x[i], reference_getitem, getitem_array_inputs(mixed=False)),
    OpSpec("getitem_slice_and_array", lambda x, i: x[i], reference_getitem, getitem_array_inputs(mixed=True)),
    OpSpec(
        "concatenate",
        lambda *a: mt.concatenate(a[:-1], axis=a[-1]),
        lambda *a: np.concatenate(a[:-1], axis=a[-1]),
        concatenate_inputs(),
    ),
    OpSpec("stack", lambda *a: mt.stack(a[:-1], axis=a[-1]), lambda *a: np.stack(a[:-1], axis=a[-1]), stack_inputs()),
    OpSpec("clone", mt.clone, np.copy, unary()),
    OpSpec("pad", mt.pad, lambda x, w, v: np.pad(x, w, constant_values=v), pad_inputs()),
    # convolution, pooling, normalization, losses
    OpSpec("conv2d", conv2d, reference_conv2d, conv_inputs(bias=True)),
    OpSpec("conv2d_no_bias", conv2d, reference_conv2d, conv_inputs(bias=False)),
    OpSpec("max_pool2d", max_pool2d, reference_max_pool2d, pool_inputs(distinct=True)),
    OpSpec("avg_pool2d", avg_pool2d, reference_avg_pool2d, pool_inputs(distinct=False)),
    OpSpec("adaptive_avg_pool2d", adaptive_avg_pool2d, reference_adaptive_avg_pool2d, adaptive_pool_inputs()),
    OpSpec(
        "batch_norm_train",
        batch_norm,
        reference_batch_norm,
        batch_norm_inputs(training=True),
        diff=(0, 3, 4),
        allow_mutation=(1, 2),
    ),
    OpSpec("batch_norm_eval", batch_norm, reference_batch_norm, batch_norm_inputs(training=False), diff=(0, 3, 4)),
    OpSpec("cross_entropy", cross_entropy, reference_cross_entropy, classification_inputs(smoothing=True)),
    OpSpec("nll_loss", nll_loss, reference_nll_loss, classification_inputs(smoothing=False)),
    OpSpec("mse_loss", mse_loss, reference_mse_loss, mse_inputs()),
    OpSpec("local_response_norm", local_response_norm, reference_lrn, lrn_inputs()),
]

OPS_BY_NAME: dict[str, OpSpec] = {spec.name: spec for spec in OPS}
assert len(OPS_BY_NAME) == len(OPS), "op names in the table must be unique"
