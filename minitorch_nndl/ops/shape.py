"""Ops that move values around without changing them.  Each backward moves the
gradient back: reshape reshapes it back, transpose transposes it back, indexing
scatters it back (adding where an element was picked more than once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend
from .._aliases import accepts_torch_names
from ..autograd import Context, Function
from ..tensor import Tensor
from ._util import normalize_axes, unbroadcast


def _shape_args(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


class Reshape(Function):
    """y = x viewed with a new shape;  dL/dx = dL/dy reshaped to x's shape."""

    @staticmethod
    def forward(ctx: Context, x: Any, shape: tuple[int, ...]) -> Any:
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return grad.reshape(ctx.shape), None


class Permute(Function):
    """y = x with axes reordered by ``axes``;  dL/dx = dL/dy with the inverse order."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...]) -> Any:
        ctx.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return x.transpose(axes)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return grad.transpose(ctx.inverse), None


class BroadcastTo(Function):
    """y = x repeated along broadcast axes;  dL/dx = dL/dy summed over them (unbroadcast)."""

    @staticmethod
    def forward(ctx: Context, x: Any, shape: tuple[int, ...]) -> Any:
        ctx.shape = x.shape
        return backend.xp_of(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return unbroadcast(grad, ctx.shape), None


class GetItem(Function):
    """y = x[index];  dL/dx = zeros with dL/dy scatter-added at ``index`` (repeats accumulate)."""

    @staticmethod
    def forward(ctx: Context, x: Any, index: Any) -> Any:
        ctx.shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        xp = backend.xp_of(grad)
        dx = xp.zeros(ctx.shape, dtype=grad.dtype)
        if _picks_each_once(ctx.index):
            dx[ctx.index] = grad  # every element is picked at most once: plain assignment
        else:
            backend.scatter_add(dx, ctx.index, grad)
        return dx, None


class Concatenate(Function):
    """y = [x_1, ..., x_k] joined along ``axis``;  dL/dx_i = the matching slice of dL/dy."""

    @staticmethod
    def forward(ctx: Context, *arrays_and_axis: Any) -> Any:
        *arrays, axis = arrays_and_axis
        ctx.axis = axis
        ctx.bounds = backend.np.cumsum([a.shape[axis] for a in arrays])[:-1].tolist()
        return backend.xp_of(arrays[0]).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return (*backend.xp_of(grad).split(grad, ctx.bounds, axis=ctx.axis), None)


class Stack(Function):
    """y = the x_i stacked along a new ``axis``;  dL/dx_i = dL/dy taken at i on that axis."""

    @staticmethod
    def forward(ctx: Context, *arrays_and_axis: Any) -> Any:
        *arrays, axis = arrays_and_axis
        ctx.axis = axis
        return backend.xp_of(arrays[0]).stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        xp = backend.xp_of(grad)
        n = grad.shape[ctx.axis]
        return (*(xp.take(grad, i, axis=ctx.axis) for i in range(n)), None)


class Clone(Function):
    """y = a copy of x in its own memory;  dL/dx = dL/dy (the copy is the identity on values)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        return x.copy()

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return grad


class Pad(Function):
    """y = x surrounded by a constant;  dL/dx = the interior of dL/dy."""

    @staticmethod
    def forward(ctx: Context, x: Any, pad_width: tuple[tuple[int, int], ...], value: float) -> Any:
        ctx.interior = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape))
        return backend.xp_of(x).pad(x, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return grad[ctx.interior], None, None


# ------------------------------------------------------------------ helpers


def _picks_each_once(index: Any) -> bool:
    """True when no element can be picked twice: basic indexing plus at most boolean masks.

    Integer arrays may repeat an index, so their backward needs a scatter-add.
    """
    items = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(i, (int, slice, type(None), type(Ellipsis))) or getattr(i, "dtype", None) == backend.bool_
        for i in items
    )


def convert_index(index: Any, x: Tensor) -> Any:
    """Tensors and lists inside an index become arrays on ``x``'s device; checks their dtype."""
    if isinstance(index, tuple):
        return tuple(convert_index(i, x) for i in index)
    if isinstance(index, Tensor):
        if index.device != x.device:
            raise RuntimeError(f"getitem: index is on {index.device} but the tensor is on {x.device}")
        index = index.data
    elif isinstance(index, list):
        index = backend.asarray(index, device=x.device)
    elif hasattr(index, "dtype") and not isinstance(index, (int, bool)):
        index = backend.asarray(index, device=x.device)
    if hasattr(index, "dtype") and index.dtype.kind not in "iub":
        raise IndexError(f"getitem: index arrays must be integer or boolean, got dtype {index.dtype}")
    return index


# ------------------------------------------------------------------ public functions


def _resolve_shape(shape: tuple[int, ...], old: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with its one ``-1`` filled in; a clear error when the sizes do not match."""
    size = 1
    for n in old:
        size *= n
    unknown = [i for i, n in enumerate(shape) if n == -1]
    known = 1
    for n in shape:
        if n != -1:
            known *= n
    bad = len(unknown) > 1 or any(n < -1 for n in shape)
    if not bad and unknown:
        bad = known == 0 or size % known != 0
        if not bad:
            shape = shape[: unknown[0]] + (size // known,) + shape[unknown[0] + 1 :]
    elif not bad:
        bad = known != size
    if bad:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {old} ({size} elements) into shape {shape}")
    return shape


def reshape(x: Tensor, *shape: Any) -> Tensor:
    """The same values in a new shape (one dimension may be -1)."""
    shape = _resolve_shape(_shape_args(shape), x.shape)
    return Reshape.apply(x, shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    merged = 1
    for n in x.shape[start : end + 1]:
        merged *= n
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1 :])


def permute(x: Tensor, *axes: Any) -> Tensor:
    """Reorder the axes: ``y.shape[i] == x.shape[axes[i]]``."""
    axes = _shape_args(axes)
    if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} axes of shape {x.shape}")
    return Permute.apply(x, tuple(a % x.ndim for a in axes))


def transpose(x: Tensor, *axes: Any) -> Tensor:
    """No arguments: reverse the axes.  Two axes: swap them.  A full order: permute."""
    if not axes:
        return Permute.apply(x, tuple(reversed(range(x.ndim))))
    axes = _shape_args(axes)
    if len(axes) == 2:
        order = list(range(x.ndim))
        i, j = axes[0] % x.ndim, axes[1] % x.ndim
        order[i], order[j] = order[j], order[i]
        return Permute.apply(x, tuple(order))
    return permute(x, *axes)


@accepts_torch_names
def squeeze(x: Tensor, axis: Any = None) -> Tensor:
    """Remove size-1 axes (all of them, or those named)."""
    if axis is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    axes = normalize_axes(axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


@accepts_torch_names
def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert a size-1 axis at ``axis``."""
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"unsqueeze: axis {axis} is out of range for a tensor of shape {x.shape}")
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    """Repeat ``x`` (without copying) to ``shape`` by NumPy's broadcasting rules."""
    shape = tuple(int(s) for s in shape)
    try:
        if backend.np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    return BroadcastTo.apply(x, shape)


def expand(x: Tensor, *shape: Any) -> Tensor:
    """Like broadcast_to; -1 keeps a dimension's size."""
    shape = _shape_args(shape)
    offset = len(shape) - x.ndim
    if offset < 0 or any(n == -1 for n in shape[:offset]):
        raise ValueError(f"expand: cannot expand shape {x.shape} to {shape} (-1 only for existing dimensions)")
    shape = tuple(x.shape[i - offset] if n == -1 else n for i, n in enumerate(shape))
    return broadcast_to(x, shape)


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]`` with ints, slices, None, Ellipsis, boolean masks and integer arrays.

    An out-of-range integer array raises IndexError on the CPU; on a GPU it wraps
    around (CuPy's rule: checking would need a host sync), so check such indices yourself.
    """
    return GetItem.apply(x, convert_index(index, x))


def _common_dtype(tensors: list[Tensor], op: str) -> list[Tensor]:
    """Cast the tensors to one dtype by the rules of ``coerce_pair`` (floats win; no float64 from int64)."""
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected a sequence of Tensors, got {type(t).__name__}")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) == 1:
        return tensors
    floats = [d for d in dtypes if backend.is_floating(d)]
    common = backend.np.result_type(*floats) if floats else backend.np.result_type(*dtypes)
    return [t if t.dtype == common else t.to(dtype=common) for t in tensors]


@accepts_torch_names
def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (shapes must agree elsewhere)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("concatenate: zero-dimensional tensors cannot be concatenated (use stack)")
    axis = normalize_axes(axis, ndim)[0]
    for t in tensors[1:]:
        if t.ndim != ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, tensors[0].shape)) if i != axis):
            raise ValueError(f"concatenate: shapes {tensors[0].shape} and {t.shape} differ outside axis {axis}")
    return Concatenate.apply(*_common_dtype(tensors, "concatenate"), axis)


#: PyTorch's name for :func:`concatenate`
cat = concatenate


def clone(x: Tensor) -> Tensor:
    """A copy of ``x`` with its own memory that stays in the graph (gradients flow back to ``x``).

    ``detach()`` is the opposite: the same memory, cut from the graph.
    """
    return Clone.apply(x)


@accepts_torch_names
def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Stack equal-shaped tensors along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all tensors must have the same shape, got {tensors[0].shape} and {t.shape}")
    ndim = tensors[0].ndim
    if not -ndim - 1 <= axis <= ndim:
        raise ValueError(f"stack: axis {axis} is out of range for tensors of shape {tensors[0].shape}")
    return Stack.apply(*_common_dtype(tensors, "stack"), axis % (ndim + 1))


def pad(x: Tensor, pad_width: Any, value: float = 0.0) -> Tensor:
    """Pad with a constant; ``pad_width`` as in ``numpy.pad`` (an int, a pair, or one pair per axis)."""
    try:
        width = backend.np.broadcast_to(backend.np.asarray(pad_width, dtype=int), (x.ndim, 2))
    except ValueError:
        raise ValueError(
            f"pad: pad_width {pad_width!r} does not fit a tensor of shape {x.shape} "
            "(give an int, a (before, after) pair, or one pair per axis)"
        ) from None
    if (width < 0).any():
        raise ValueError(f"pad: negative pad widths {pad_width}")
    return Pad.apply(x, tuple((int(lo), int(hi)) for lo, hi in width), value)
