"""What the grader feeds each exercise: Hypothesis strategies of valid forward arguments.

Built on :mod:`minitorch_nndl.testing.strategies`, so the exercises see what our own ops
see: 0-d tensors, size-1 axes, shapes that broadcast either way, non-contiguous views,
and values kept away from kinks (relu at 0), ties (max pooling) and poles (1/b, ln a).
Each strategy draws the positional arguments of the exercise's ``forward`` (Tensors for
array arguments, Python values for the rest); the optimizer strategies draw a
:class:`StepCase`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..tensor import Tensor
from ..testing import strategies as hs
from .report import values_of

__all__ = ["StepCase", "explicit_cases", "strategy_for"]

SIDE = 4  # the largest side of a drawn shape: gradchecks stay fast


def _reals(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def _one(elements: st.SearchStrategy[float] | None = None, min_dims: int = 0) -> st.SearchStrategy[tuple]:
    return hs.tensors(hs.shapes(min_dims, 3, max_side=SIDE), elements=elements).map(lambda x: (x,))


def _two(a: st.SearchStrategy[float] | None = None, b: st.SearchStrategy[float] | None = None) -> st.SearchStrategy:
    """Two tensors whose shapes broadcast together (either may be the bigger one, or 0-d)."""
    pairs = hs.broadcastable_pairs(max_dims=3, max_side=SIDE)
    return pairs.flatmap(lambda p: st.tuples(hs.tensors(p[0], elements=a), hs.tensors(p[1], elements=b)))


@st.composite
def _broadcast_to(draw: Any) -> tuple:
    """x and a target shape that x broadcasts to (x may have fewer axes, and 1 where the target has more)."""
    target = draw(hs.shapes(0, 3, max_side=SIDE))
    kept = draw(st.integers(0, len(target)))
    source = tuple(draw(st.sampled_from((n, 1))) for n in target[len(target) - kept :])
    return draw(hs.tensors(source)), target


@st.composite
def _reduction(draw: Any) -> tuple:
    """x, a sorted tuple of axes (all, some or none of them), keepdims."""
    x = draw(hs.tensors(hs.shapes(0, 3, max_side=SIDE)))
    axes = draw(st.sets(st.integers(0, x.ndim - 1)) if x.ndim else st.just(set()))
    return x, tuple(sorted(axes)), draw(st.booleans())


@st.composite
def _matmul(draw: Any) -> tuple:
    """Vector-vector, matrix-vector, vector-matrix, matrix-matrix, or stacks with broadcast batch axes."""
    m, k, n = (draw(st.integers(1, SIDE)) for _ in range(3))
    kind = draw(st.sampled_from(["vv", "mv", "vm", "mm", "batched"]))
    a_shape = (k,) if kind in ("vv", "vm") else (m, k)
    b_shape = (k,) if kind in ("vv", "mv") else (k, n)
    if kind == "batched":
        batch = draw(hs.shapes(1, 2, max_side=3))
        other = draw(hs.broadcastable_shapes(batch, max_side=3))
        a_batch, b_batch = draw(st.sampled_from([(batch, other), (other, batch)]))
        a_shape, b_shape = (*a_batch, m, k), (*b_batch, k, n)
    return draw(hs.tensors(a_shape)), draw(hs.tensors(b_shape))


@st.composite
def _along_axis(draw: Any) -> tuple:
    x = draw(hs.tensors(hs.shapes(1, 3, max_side=SIDE)))
    return x, draw(st.integers(0, x.ndim - 1))


@st.composite
def _cross_entropy(draw: Any) -> tuple:
    n, c = draw(st.integers(1, SIDE)), draw(st.integers(2, 5))
    target = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.3]))
    return draw(hs.tensors((n, c))), Tensor._wrap(target), reduction, smoothing


def _conv_geometry(draw: Any) -> Any:
    """A conv2d setting with groups=1 (the exercises' conv handles one group)."""
    return dataclasses.replace(draw(hs.conv_params(max_batch=2, max_channels=3, max_size=6)), groups=1)


@st.composite
def _im2col(draw: Any) -> tuple:
    p = _conv_geometry(draw)
    pairs = [(v, v) for v in (p.stride, p.padding, p.dilation)]
    return (draw(hs.tensors(p.input_shape)), p.kernel, *pairs)


@st.composite
def _conv2d(draw: Any) -> tuple:
    p = _conv_geometry(draw)
    x, weight = draw(hs.tensors(p.input_shape)), draw(hs.tensors(p.weight_shape))
    bias = draw(st.one_of(st.none(), hs.tensors((p.out_channels,))))
    return x, weight, bias, (p.stride, p.stride), (p.padding, p.padding), (p.dilation, p.dilation), 1


@st.composite
def _max_pool2d(draw: Any) -> tuple:
    """Windows that may overlap (stride < kernel) or skip pixels (stride > kernel); distinct values, no ties."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    hw = tuple(draw(st.integers(k, 6)) for k in kernel)
    out_hw = tuple((size + 2 * p - k) // s + 1 for size, k, s, p in zip(hw, kernel, stride, padding))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *hw)
    (x,) = draw(hs.distinct_tensors(shape, low=-3.0, high=3.0, min_gap=1e-2))
    return x, kernel, stride, padding, out_hw


@st.composite
def _batch_norm(draw: Any) -> tuple:
    """Training mode: (N, C) or (N, C, H, W) with values spread apart (no near-zero variance)."""
    c = draw(st.integers(1, 3))
    if draw(st.booleans()):
        shape: tuple[int, ...] = (draw(st.integers(2, 4)), c)
    else:
        shape = (draw(st.integers(1, 2)), c, 2, draw(st.integers(1, 3)))
    (x,) = draw(hs.distinct_tensors(shape, low=-3.0, high=3.0, min_gap=0.05))
    gamma = draw(st.one_of(st.none(), hs.tensors((c,), elements=_reals(0.5, 2.0))))
    beta = draw(st.one_of(st.none(), hs.tensors((c,))))
    update = draw(st.booleans())
    running = (Tensor._wrap(np.zeros(c)), Tensor._wrap(np.ones(c))) if update else (None, None)
    return (x, gamma, beta, *running, True, update, 0.1, 1e-5)


@dataclasses.dataclass(frozen=True)
class StepCase:
    """An optimizer exercise's input: a parameter, the gradients of a few steps, the hyperparameters."""

    param: np.ndarray
    grads: tuple[np.ndarray, ...]
    hyper: dict[str, float]

    def describe(self) -> str:
        settings = ", ".join(f"{k}={v:g}" for k, v in self.hyper.items())
        if values_of(self.param):  # small enough to redo by hand: the values too
            grads = ", ".join(values_of(g) for g in self.grads)
            return f"param {self.param.shape} = {values_of(self.param)}, grad per step {grads}, {settings}"
        return f"param {self.param.shape}, {len(self.grads)} step(s), {settings}"


def _arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return hs.tensors(shape, non_contiguous=False).map(lambda t: np.array(t.data))


@st.composite
def _step_case(draw: Any, hyper: dict[str, st.SearchStrategy], min_dims: int) -> StepCase:
    shape = draw(hs.shapes(min_dims, 2, max_side=3))
    steps = draw(st.integers(1, 3))
    grads = tuple(draw(_arrays(shape)) for _ in range(steps))
    return StepCase(draw(_arrays(shape)), grads, {name: draw(values) for name, values in hyper.items()})


_SGD = {
    "lr": st.sampled_from([0.1, 0.01]),
    "momentum": st.sampled_from([0.5, 0.9]),
    "weight_decay": st.sampled_from([0.0, 0.05]),
}
_ADAM = {
    "lr": st.sampled_from([0.1, 0.01]),
    "beta1": st.sampled_from([0.9, 0.5]),
    "beta2": st.sampled_from([0.999, 0.9]),
    "eps": st.sampled_from([1e-8, 1e-3]),
    "weight_decay": st.sampled_from([0.0, 0.05]),
}

_STRATEGIES: dict[str, Callable[[], st.SearchStrategy]] = {
    "unbroadcast": _broadcast_to,
    "mul": _two,
    "div": lambda: _two(None, hs.reals_away_from([0.0], margin=0.5)),
    "pow": lambda: _two(_reals(0.5, 2.5), _reals(-2.0, 2.0)),
    "exp": lambda: _one(_reals(-2.0, 2.0)),
    "log": lambda: _one(_reals(0.2, 3.0)),
    "sum": _reduction,
    "mean": _reduction,
    "matmul": _matmul,
    "relu": lambda: _one(hs.reals_away_from([0.0], margin=1e-2)),
    "softmax": _along_axis,
    "log_softmax": _along_axis,
    "cross_entropy": _cross_entropy,
    "im2col": _im2col,
    "conv2d": _conv2d,
    "max_pool2d": _max_pool2d,
    "batch_norm": _batch_norm,
    "sgd_momentum": lambda: _step_case(_SGD, min_dims=0),  # a 0-d parameter too (a bias-like scalar)
    "adam": lambda: _step_case(_ADAM, min_dims=0),
}


def strategy_for(name: str) -> st.SearchStrategy:
    """The strategy of forward arguments (or :class:`StepCase`) for exercise ``name``."""
    return _STRATEGIES[name]()


# ------------------------------------------------------------------ explicit cases


def _t(shape: tuple[int, ...], seed: int, low: float = -2.0, high: float = 2.0, distinct: bool = False) -> Tensor:
    """A float64 tensor of fixed values in [low, high] (all distinct, evenly spaced, with ``distinct``)."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    if distinct:
        values = low + (high - low) * (rng.permutation(size) + 0.5) / size
    else:
        values = rng.uniform(low, high, size)
    return Tensor._wrap(values.reshape(shape))


def _binary_cases(low_b: float = -2.0, high_b: float = 2.0, low_a: float = -2.0) -> list[tuple]:
    shapes_ = [((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((), (2, 2)), ((2, 2), ())]
    return [(_t(a, 1, low=low_a), _t(b, 2, low_b, high_b)) for a, b in shapes_]


def _positive_b_cases() -> list[tuple]:
    return [(a, Tensor._wrap(np.where(b.data < 0, b.data - 0.5, b.data + 0.5))) for a, b in _binary_cases()]


_CONV_A = dict(x=(2, 2, 5, 5), w=(3, 2, 3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
_CONV_B = dict(x=(1, 2, 5, 6), w=(2, 2, 2, 3), stride=(1, 1), padding=(0, 1), dilation=(2, 1))
_SGD_HYPER = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.05}
_ADAM_HYPER = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05}
_REDUCTIONS = [  # (shape, axes, keepdims)
    ((2, 3, 4), (0, 2), False),
    ((2, 3, 4), (1,), True),
    ((2, 3), (), False),  # no axis: the identity
    ((2, 3), (0, 1), False),
    ((3, 1, 2), (1,), False),  # a size-1 axis: n = 1
    ((), (), True),  # a 0-d input
]
_MATMUL_SHAPES = [((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (4, 3, 2)), ((4, 2, 3), (3, 2)), ((2, 1, 2, 3), (4, 3, 2))]


def _steps(shape: tuple[int, ...], hyper: dict) -> StepCase:
    return StepCase(_t(shape, 4).data, tuple(_t(shape, 5 + k).data for k in range(3)), hyper)


def _conv_case(c: dict, bias: bool) -> tuple:
    b = _t((c["w"][0],), 6) if bias else None
    return _t(c["x"], 7), _t(c["w"], 8), b, c["stride"], c["padding"], c["dilation"], 1


def _bn_case(shape: tuple[int, ...], affine: bool, update: bool) -> tuple:
    c = shape[1]
    gamma, beta = (_t((c,), 9, 0.5, 2.0), _t((c,), 10)) if affine else (None, None)
    running = (Tensor._wrap(np.zeros(c)), Tensor._wrap(np.ones(c))) if update else (None, None)
    return (_t(shape, 11, distinct=True), gamma, beta, *running, True, update, 0.1, 1e-5)


def _explicit() -> dict[str, Callable[[], list]]:
    """The inputs every answer must get right: broadcasting both ways, batches, overlaps, every reduction."""
    ce = [(_t((4, 3), 3), Tensor._wrap(np.array([0, 2, 1, 2])), r, 0.1) for r in ("mean", "sum", "none")]
    return {
        "unbroadcast": lambda: [(_t((3, 1), 1), (2, 3, 4)), (_t((), 1), (2, 3)), (_t((1, 3), 1), (1, 3))],
        "mul": _binary_cases,
        "div": _positive_b_cases,
        "pow": lambda: _binary_cases(low_a=0.5),
        "exp": lambda: [(_t((2, 3), 1),), (_t((), 2),)],
        "log": lambda: [(_t((2, 3), 1, 0.2, 3.0),), (_t((), 2, 0.2, 3.0),)],
        "sum": lambda: [(_t(s, 1), axes, keep) for s, axes, keep in _REDUCTIONS],
        "mean": lambda: [(_t(s, 1), axes, keep) for s, axes, keep in _REDUCTIONS],
        "matmul": lambda: [(_t(a, 1), _t(b, 2)) for a, b in _MATMUL_SHAPES],
        "relu": lambda: [
            (Tensor._wrap(np.array([[-1.5, 0.5, 2.0], [0.25, -0.75, 1.0]])),),
            (Tensor._wrap(np.array(-0.5)),),
        ],
        "softmax": lambda: [(_t((2, 3, 4), 1), 1), (_t((3, 4), 1), 0)],
        "log_softmax": lambda: [(_t((2, 3, 4), 1), 1), (_t((3, 4), 1), 0)],
        "cross_entropy": lambda: ce,
        "im2col": lambda: [
            (_t(c["x"], 7), c["w"][2:], c["stride"], c["padding"], c["dilation"]) for c in (_CONV_A, _CONV_B)
        ],
        "conv2d": lambda: [_conv_case(_CONV_A, True), _conv_case(_CONV_B, False)],
        "max_pool2d": lambda: [
            (_t((2, 2, 5, 5), 12, distinct=True), (3, 3), (1, 1), (1, 1), (5, 5)),
            (_t((2, 2, 5, 5), 12, distinct=True), (2, 2), (2, 2), (0, 0), (2, 2)),
        ],
        "batch_norm": lambda: [
            _bn_case((4, 3), True, False),
            _bn_case((2, 3, 2, 2), True, True),
            _bn_case((5, 2), False, False),
        ],
        "sgd_momentum": lambda: [_steps((3,), _SGD_HYPER), _steps((), _SGD_HYPER)],
        "adam": lambda: [_steps((2, 2), _ADAM_HYPER), _steps((), _ADAM_HYPER)],
    }


def explicit_cases(name: str) -> list:
    """Fixed inputs for exercise ``name``, checked after the drawn ones: the cases the usual mistakes get wrong."""
    return _explicit()[name]()
