"""``Tensor``: an n-dimensional array that remembers how it was computed.

A Tensor wraps one backend array (``.data``, NumPy or CuPy) and, when it
``requires_grad``, a link (``._node``) to the op that produced it.  Calling
``.backward()`` on a scalar result fills ``.grad`` of every leaf tensor that led
to it.  The operator methods below are thin forwarders to the differentiable
functions in :mod:`minitorch_nndl.ops`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import Any

from . import backend
from ._aliases import accepts_torch_names
from .autograd import backward as _backward
from .grad_mode import is_grad_enabled

Shape = tuple[int, ...]


def _infer_dtype(data: Any, dtype: Any) -> Any:
    """Python floats default to float32; arrays keep their own dtype unless told otherwise."""
    if dtype is not None:
        return backend.as_dtype(dtype)
    if isinstance(data, bool):
        return backend.bool_
    if isinstance(data, numbers.Integral) and not hasattr(data, "dtype"):
        return backend.int64
    if isinstance(data, numbers.Real) and not hasattr(data, "dtype"):
        return backend.default_float
    if isinstance(data, (list, tuple)):
        probe = backend.np.asarray(data)
        if probe.dtype.kind == "f":
            return backend.default_float
        return probe.dtype
    return None


def _stack_device_elements(data: list | tuple) -> Any:
    """``[cupy_0d, cupy_0d, 2.0]`` -> one array on those elements' GPU (NumPy cannot read them)."""
    arrays = [e for e in data if backend.is_cuda_array(e)]
    device = backend.device_of(arrays[0])
    xp = backend.xp_of(arrays[0])
    with backend.device_context(device):
        dtype = xp.result_type(*arrays)
        return xp.stack([backend.asarray(e, dtype=dtype, device=device) for e in data])


class Tensor:
    """An array plus the bookkeeping reverse-mode autodiff needs.

    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
    """

    __array_priority__ = 1000  # make ndarray <op> Tensor defer to Tensor's reflected op

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, device: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if isinstance(data, (list, tuple)) and any(backend.is_cuda_array(e) for e in data):
            data = _stack_device_elements(data)
        target = backend.normalize_device(device) if device is not None else backend.device_of(data)
        self._set_fields(backend.asarray(data, dtype=_infer_dtype(data, dtype), device=target))
        if requires_grad:
            self.requires_grad_(True)

    def _set_fields(self, array: Any, requires_grad: bool = False) -> None:
        """Every field a Tensor has, set in this one place (``__init__``, ``_wrap``, ``Parameter``)."""
        self.data = array
        self.grad: Any = None  # d(root)/d(self) after backward: an array like ``data``
        self._node: Any = None  # the graph node that produced this tensor (None for a leaf)
        self._retains_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, array: Any, requires_grad: bool = False) -> Tensor:
        """Wrap an existing backend array without copying it.

        NumPy reductions of a whole array return NumPy *scalars*; they become 0-d
        arrays here, so ``.data`` is always an ndarray (in-place updates work).
        """
        if isinstance(array, backend.np.generic):
            array = backend.np.asarray(array)
        t = cls.__new__(cls)
        t._set_fields(array, requires_grad)
        return t

    # ---------------------------------------------------------------- properties
    @property
    def shape(self) -> Shape:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def xp(self) -> Any:
        """The array module (numpy or cupy) of this tensor's device."""
        return backend.xp_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self) -> str | None:
        """Name of the op that produced this tensor (None for leaves)."""
        return None if self._node is None else self._node.name

    @property
    def T(self) -> Tensor:  # noqa: N802
        return self.transpose()

    def numel(self) -> int:
        return int(self.data.size)

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---------------------------------------------------------------- conversion
    def item(self) -> Any:
        """The single value of a one-element tensor as a Python number (syncs a GPU)."""
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.shape}")
        return self.data.reshape(()).item()

    def numpy(self) -> Any:
        """A NumPy array of the values (a copy from the GPU; shares memory on the CPU)."""
        return backend.to_numpy(self.data)

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def detach(self) -> Tensor:
        """The same values, cut from the graph (shares the array)."""
        return Tensor._wrap(self.data)

    def clone(self) -> Tensor:
        """A copy with its own memory that stays in the graph (differentiable, unlike ``detach``)."""
        return _shape.clone(self)

    def to(self, device: Any = None, dtype: Any = None) -> Tensor:
        """This tensor on another device and/or with another dtype (differentiable)."""
        out = self
        if device is not None:
            device = backend.normalize_device(device)
            if device != self.device:
                out = _ew.ToDevice.apply(out, device=device)
        if dtype is not None and backend.as_dtype(dtype) != out.dtype:
            out = _ew.Cast.apply(out, dtype=backend.as_dtype(dtype))
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Tensor:
        return self.to(f"cuda:{index}")

    def astype(self, dtype: Any) -> Tensor:
        return self.to(dtype=dtype)

    def float(self) -> Tensor:
        return self.to(dtype=backend.float32)

    def double(self) -> Tensor:
        return self.to(dtype=backend.float64)

    def long(self) -> Tensor:
        return self.to(dtype=backend.int64)

    # ---------------------------------------------------------------- autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not backend.is_floating(self.dtype):
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use detach()")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor during backward."""
        self._retains_grad = True
        return self

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf in the graph."""
        _backward(self, grad, retain_graph=retain_graph)

    def zero_grad(self) -> None:
        self.grad = None

    # ---------------------------------------------------------------- printing
    def __repr__(self) -> str:
        body = repr(self.numpy()).replace("array(", "tensor(", 1)
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self._node is not None:
            extras.append(f"grad_fn={self._node.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if extras:
            body = body[:-1] + ", " + ", ".join(extras) + ")"
        return body

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    # ---------------------------------------------------------------- operators
    def __add__(self, other: Any) -> Tensor:
        return _ew.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ew.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ew.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ew.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ew.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ew.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ew.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ew.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ew.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ew.pow(other, self)

    def __neg__(self) -> Tensor:
        return _ew.neg(self)

    def __abs__(self) -> Tensor:
        return _ew.abs(self)

    def __matmul__(self, other: Any) -> Tensor:
        return _mm.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _mm.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return _shape.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        """In-place ``self[index] = value`` on the array; not recorded by autograd.

        Allowed on tensors outside the graph, and on leaves under ``no_grad()``
        (as optimizers and initializers do).  Writing into an array some op saved
        for its backward would silently change that gradient, so avoid it.
        """
        if self._node is not None:
            raise RuntimeError(
                f"__setitem__: in-place assignment to a tensor produced by {self._node.name} "
                "would corrupt the graph; build a new tensor instead (e.g. mt.where)"
            )
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError("__setitem__: in-place assignment to a leaf that requires grad; wrap it in mt.no_grad()")
        if isinstance(value, Tensor):
            value = value.data
        if backend.is_cuda_array(value):
            if backend.device_of(value) != self.device:
                raise RuntimeError(
                    f"__setitem__: value is on {backend.device_of(value)} but the tensor is on {self.device}"
                )
        elif not isinstance(value, (numbers.Number, backend.np.generic)):
            # host data (a list, a NumPy array): CuPy assigns only device arrays, so move it first
            value = backend.asarray(value, dtype=self.dtype, device=self.device)
        self.data[_shape.convert_index(index, self)] = value

    # comparisons give non-differentiable boolean tensors
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ew.compare(self, other, "equal")

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ew.compare(self, other, "not_equal")

    def __lt__(self, other: Any) -> Tensor:
        return _ew.compare(self, other, "less")

    def __le__(self, other: Any) -> Tensor:
        return _ew.compare(self, other, "less_equal")

    def __gt__(self, other: Any) -> Tensor:
        return _ew.compare(self, other, "greater")

    def __ge__(self, other: Any) -> Tensor:
        return _ew.compare(self, other, "greater_equal")

    # ---------------------------------------------------------------- methods
    def exp(self) -> Tensor:
        return _ew.exp(self)

    def log(self) -> Tensor:
        return _ew.log(self)

    def sqrt(self) -> Tensor:
        return _ew.sqrt(self)

    def abs(self) -> Tensor:
        return _ew.abs(self)

    def tanh(self) -> Tensor:
        return _act.tanh(self)

    def sigmoid(self) -> Tensor:
        return _act.sigmoid(self)

    def relu(self) -> Tensor:
        return _act.relu(self)

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        return _act.clamp(self, min, max)

    @accepts_torch_names
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _red.sum(self, axis, keepdims)

    @accepts_torch_names
    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _red.mean(self, axis, keepdims)

    @accepts_torch_names
    def var(self, axis: Any = None, keepdims: bool = False, correction: int = 0) -> Tensor:
        return _red.var(self, axis, keepdims, correction)

    @accepts_torch_names
    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _red.max(self, axis, keepdims)

    @accepts_torch_names
    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _red.min(self, axis, keepdims)

    @accepts_torch_names
    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return _red.argmax(self, axis, keepdims)

    @accepts_torch_names
    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return _red.argmin(self, axis, keepdims)

    @accepts_torch_names
    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _red.logsumexp(self, axis, keepdims)

    @accepts_torch_names
    def softmax(self, axis: int = -1) -> Tensor:
        return _red.softmax(self, axis)

    @accepts_torch_names
    def log_softmax(self, axis: int = -1) -> Tensor:
        return _red.log_softmax(self, axis)

    def reshape(self, *shape: Any) -> Tensor:
        return _shape.reshape(self, *shape)

    def view(self, *shape: Any) -> Tensor:
        return _shape.reshape(self, *shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _shape.flatten(self, start_dim, end_dim)

    def transpose(self, *axes: Any) -> Tensor:
        return _shape.transpose(self, *axes)

    def permute(self, *axes: Any) -> Tensor:
        return _shape.permute(self, *axes)

    @accepts_torch_names
    def squeeze(self, axis: Any = None) -> Tensor:
        return _shape.squeeze(self, axis)

    @accepts_torch_names
    def unsqueeze(self, axis: int) -> Tensor:
        return _shape.unsqueeze(self, axis)

    def expand(self, *shape: Any) -> Tensor:
        return _shape.expand(self, *shape)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return _shape.broadcast_to(self, shape)


# The ops import Tensor from this module, so they are imported after it exists.
from .ops import activation as _act  # noqa: E402
from .ops import elementwise as _ew  # noqa: E402
from .ops import matmul as _mm  # noqa: E402
from .ops import reduce as _red  # noqa: E402
from .ops import shape as _shape  # noqa: E402
