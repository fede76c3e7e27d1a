"""Hypothesis strategies that draw valid inputs for operators.

Every strategy here draws only inputs an op accepts: shapes with positive sides,
shapes that really broadcast, convolution settings with a positive output size,
values a safe distance from an op's kinks.  Tensors are drawn contiguous *and*
non-contiguous (transposed or strided views of a bigger array), because an op
that assumes C-contiguous input is a classic bug that contiguous test data hides.

This module needs Hypothesis (``pip install hypothesis``, or the ``dev`` extra:
``pip install -e '.[dev]'``); the rest of :mod:`minitorch_nndl.testing` does not.

>>> from hypothesis import given
>>> from minitorch_nndl.testing.strategies import tensors
>>> @given(tensors(shape=(2, 3)))
... def test_double_negation(x):
...     assert ((-(-x)) == x).numpy().all()
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as error:  # pragma: no cover - exercised only without hypothesis
    raise ImportError(
        "minitorch_nndl.testing.strategies needs Hypothesis: `pip install hypothesis` "
        "(or install the dev extra: `pip install -e '.[dev]'`)"
    ) from error

from .. import backend
from ..tensor import Tensor

Shape = tuple[int, ...]

__all__ = [
    "ConvParams",
    "broadcastable_shapes",
    "conv_params",
    "distinct_tensors",
    "reals_away_from",
    "shapes",
    "tensors",
]


# ------------------------------------------------------------------ shapes


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5) -> st.SearchStrategy[Shape]:
    """Shapes with ``min_dims..max_dims`` axes of ``min_side..max_side`` elements each (0-d included by default)."""
    if not 0 <= min_dims <= max_dims:
        raise ValueError(f"shapes: need 0 <= min_dims <= max_dims, got {min_dims}, {max_dims}")
    if not 0 <= min_side <= max_side:
        raise ValueError(f"shapes: need 0 <= min_side <= max_side, got {min_side}, {max_side}")
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def broadcastable_shapes(
    shape: Sequence[int],
    min_dims: int = 0,
    max_dims: int | None = None,
    min_side: int = 1,
    max_side: int = 5,
) -> st.SearchStrategy[Shape]:
    """Shapes ``s`` for which ``numpy.broadcast_shapes(shape, s)`` succeeds.

    Per trailing axis, ``s`` takes ``shape``'s size or 1 (or any size where ``shape``
    has 1); it may have fewer axes than ``shape`` (broadcasting prepends 1s) or,
    when ``max_dims > len(shape)``, more (leading axes of any size).
    ``max_dims`` defaults to ``len(shape)``.
    """
    shape = tuple(int(n) for n in shape)
    ndim = len(shape)
    top = ndim if max_dims is None else max_dims
    if not 0 <= min_dims <= top:
        raise ValueError(f"broadcastable_shapes: need 0 <= min_dims <= max_dims, got {min_dims}, {top}")

    @st.composite
    def draw_shape(draw: Any) -> Shape:
        n = draw(st.integers(min_dims, top))
        out: list[int] = []
        for k in range(1, n + 1):  # k-th axis from the right
            if k <= ndim:
                side = shape[-k]
                if side == 1:
                    out.append(draw(st.integers(min_side, max_side)))
                else:
                    out.append(draw(st.sampled_from((side, 1))))
            else:
                out.append(draw(st.integers(min_side, max_side)))
        return tuple(reversed(out))

    return draw_shape()


def broadcastable_pairs(
    min_dims: int = 0, max_dims: int = 3, max_side: int = 4
) -> st.SearchStrategy[tuple[Shape, Shape]]:
    """Pairs of shapes that broadcast together (either one may be the bigger)."""
    return (
        shapes(min_dims, max_dims, max_side=max_side)
        .flatmap(lambda s: st.tuples(st.just(s), broadcastable_shapes(s, max_dims=max_dims, max_side=max_side)))
        .flatmap(lambda pair: st.sampled_from([pair, pair[::-1]]))
    )


# ------------------------------------------------------------------ values


def reals_away_from(
    points: float | Sequence[float],
    margin: float = 1e-2,
    min_value: float = -3.0,
    max_value: float = 3.0,
) -> st.SearchStrategy[float]:
    """Finite floats in ``[min_value, max_value]`` at least ``margin`` from every point.

    Use it for the kinks where an op is not differentiable (relu and abs at 0, clamp
    at its bounds): finite differences straddling a kink disagree with any gradient.
    """
    pts = sorted(float(p) for p in (points if isinstance(points, Sequence) else [points]))
    if margin < 0 or min_value > max_value:
        raise ValueError(f"reals_away_from: bad margin {margin} or range [{min_value}, {max_value}]")
    intervals: list[tuple[float, float]] = []
    lo = float(min_value)
    for p in pts:
        hi = p - margin
        if hi >= lo:
            intervals.append((lo, min(hi, max_value)))
        lo = max(lo, p + margin)
    if lo <= max_value:
        intervals.append((lo, float(max_value)))
    intervals = [(a, b) for a, b in intervals if a <= b]
    if not intervals:
        raise ValueError(f"reals_away_from: no value in [{min_value}, {max_value}] is {margin} away from {pts}")
    return st.one_of(*(st.floats(a, b, allow_nan=False, allow_infinity=False) for a, b in intervals))


# ------------------------------------------------------------------ tensors


def _place(draw: Any, values: np.ndarray, device: str, non_contiguous: bool) -> Any:
    """Put ``values`` on ``device``, as a contiguous array or as a non-contiguous view with the same values.

    A transposed layout stores the values in a C-contiguous array of the permuted
    shape and views it back; a strided layout writes them into every other slot of
    a twice-as-long axis (the gaps hold NaN, so reading them shows up at once).
    """
    layouts = ["contiguous"]
    if non_contiguous:
        if values.ndim >= 2 and sum(n > 1 for n in values.shape) >= 2:
            layouts.append("transposed")
        if any(n > 1 for n in values.shape):
            layouts.append("strided")
    layout = draw(st.sampled_from(layouts))
    xp = backend.xp_for(device)
    with backend.device_context(device):
        if layout == "transposed":
            order = draw(st.permutations(range(values.ndim)).filter(lambda p: list(p) != sorted(p)))
            inverse = tuple(int(i) for i in np.argsort(order))
            base = backend.to_device(np.ascontiguousarray(values.transpose(order)), device)
            view = base.transpose(inverse)
        elif layout == "strided":
            axis = draw(st.sampled_from([i for i, n in enumerate(values.shape) if n > 1]))
            big_shape = list(values.shape)
            big_shape[axis] *= 2
            big = np.full(big_shape, np.nan if values.dtype.kind == "f" else 0, dtype=values.dtype)
            picks = [slice(None)] * values.ndim
            picks[axis] = slice(None, None, 2)
            big[tuple(picks)] = values
            view = backend.to_device(big, device)[tuple(picks)]
        else:
            view = xp.asarray(backend.to_device(values, device), order="C")  # (ascontiguousarray makes 0-d 1-d)
    return view


def _resolve_shape(draw: Any, shape: Any) -> Shape:
    if shape is None:
        return draw(shapes())
    if isinstance(shape, st.SearchStrategy):
        return tuple(draw(shape))
    return tuple(int(n) for n in shape)


@st.composite
def tensors(
    draw: Any,
    shape: Shape | st.SearchStrategy[Shape] | None = None,
    dtype: Any = backend.float64,
    elements: st.SearchStrategy[float] | None = None,
    requires_grad: bool = False,
    device: str = "cpu",
    non_contiguous: bool = True,
    unique: bool = False,
) -> Tensor:
    """A Tensor of ``shape`` (a tuple, a strategy of tuples, or None for :func:`shapes`).

    ``elements`` is a strategy of Python floats (default: ``[-3, 3]``; integers in
    ``[-5, 5]`` for integer dtypes).  Values are drawn in float64 and cast to
    ``dtype``.  With ``non_contiguous`` (the default) some draws are transposed or
    strided views, wrapped with ``Tensor._wrap`` so they stay non-contiguous.
    ``unique=True`` makes all values distinct (use :func:`distinct_tensors` when they
    must also be a minimum distance apart).
    """
    dims = _resolve_shape(draw, shape)
    dtype = backend.as_dtype(dtype)
    if elements is None:
        if dtype.kind == "f":
            elements = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)
        elif dtype.kind == "b":
            elements = st.booleans()
        else:
            elements = st.integers(-5, 5)
    draw_dtype = np.float64 if dtype.kind == "f" else dtype
    values = draw(hnp.arrays(draw_dtype, dims, elements=elements, unique=unique)).astype(dtype)
    array = _place(draw, values, backend.normalize_device(device), non_contiguous)
    return Tensor._wrap(array, requires_grad=requires_grad)


@st.composite
def distinct_tensors(
    draw: Any,
    *shapes_: Shape,
    low: float = -3.0,
    high: float = 3.0,
    min_gap: float = 1e-2,
    dtype: Any = backend.float64,
    requires_grad: bool = False,
    device: str = "cpu",
    non_contiguous: bool = True,
) -> tuple[Tensor, ...]:
    """One tensor per shape, all values (across all tensors) at least ``min_gap`` apart.

    For ops whose gradient depends on which value is larger (max, min, maximum,
    minimum): with no ties, and no near-ties that finite differences could cross,
    the gradient is well defined.
    """
    sizes = [math.prod(s) for s in shapes_]
    total = sum(sizes)
    slots = int((high - low) / min_gap)
    if total > slots + 1:
        raise ValueError(f"distinct_tensors: {total} values do not fit in [{low}, {high}] with gap {min_gap}")
    picks = draw(st.lists(st.integers(0, slots), min_size=total, max_size=total, unique=True))
    jitter = draw(st.floats(0.0, min_gap / 4))
    values = low + np.asarray(picks, dtype=np.float64) * min_gap + jitter
    out = []
    start = 0
    for s, n in zip(shapes_, sizes):
        chunk = values[start : start + n].reshape(s).astype(dtype)
        start += n
        array = _place(draw, chunk, backend.normalize_device(device), non_contiguous)
        out.append(Tensor._wrap(array, requires_grad=requires_grad))
    return tuple(out)


# ------------------------------------------------------------------ convolution settings


@dataclass(frozen=True)
class ConvParams:
    """One valid conv2d configuration; ``out_size`` is always positive."""

    N: int
    C: int
    H: int
    W: int
    out_channels: int
    kernel: tuple[int, int]
    stride: int
    padding: int
    dilation: int
    groups: int

    @property
    def input_shape(self) -> Shape:
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self) -> Shape:
        return (self.out_channels, self.C // self.groups, *self.kernel)

    @property
    def out_size(self) -> tuple[int, int]:
        """(OH, OW) = floor((H + 2p - d (k - 1) - 1) / s) + 1 per spatial axis."""
        kh, kw = self.kernel
        oh = (self.H + 2 * self.padding - self.dilation * (kh - 1) - 1) // self.stride + 1
        ow = (self.W + 2 * self.padding - self.dilation * (kw - 1) - 1) // self.stride + 1
        return oh, ow

    @property
    def output_shape(self) -> Shape:
        return (self.N, self.out_channels, *self.out_size)

    def as_kwargs(self) -> dict[str, int]:
        """Keyword arguments for ``conv2d(x, w, **params.as_kwargs())``."""
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}


@st.composite
def conv_params(draw: Any, max_batch: int = 2, max_channels: int = 4, max_size: int = 7) -> ConvParams:
    """A conv2d configuration: C and out_channels divisible by groups, a positive output size."""
    groups = draw(st.integers(1, max_channels))
    c = groups * draw(st.integers(1, max_channels // groups))
    out_c = groups * draw(st.integers(1, max_channels // groups))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 1))
    kernel = []
    sizes = []
    for _ in range(2):
        k = draw(st.integers(1, 3))
        while dilation * (k - 1) + 1 - 2 * padding > max_size and k > 1:
            k -= 1
        smallest = max(1, dilation * (k - 1) + 1 - 2 * padding)
        kernel.append(k)
        sizes.append(draw(st.integers(smallest, max(smallest, max_size))))
    n = draw(st.integers(1, max_batch))
    return ConvParams(n, c, sizes[0], sizes[1], out_c, (kernel[0], kernel[1]), stride, padding, dilation, groups)
