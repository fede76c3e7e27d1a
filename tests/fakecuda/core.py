"""A strict, NumPy-backed stand-in for CuPy: the arrays, the module and its devices.

It behaves like CuPy 14 wherever minitorch_nndl could go wrong on a GPU, and is
stricter where a real GPU would only fail later or silently:

* ``ndarray`` is a distinct type (``type(a).__module__ == "cupy"``) with ``.device``,
  ``.get()`` and ``.set()``.  Implicit conversion to NumPy (``np.asarray``,
  ``__array__``) raises as CuPy does; ``float()``/``int()``/``bool()`` work only on
  0-d arrays; a NumPy array given to a device function or ufunc is a ``TypeError``.
* Only names that the real CuPy 14 has (``cupy_names.json``, extracted from the wheel)
  exist; reductions and integer indexing return 0-d device arrays; ``a[basic] = host``
  raises; out-of-bounds integer-array indices wrap; ``empty`` is NaN-filled garbage.
* Several devices (two by default) and a per-thread current device: an array used by
  an op while another device is current is an error (real CuPy would run the kernel
  on the current device, or fail with this same message without peer access).
* Every device->host synchronisation (``get``, ``item``, ``float``, boolean-mask
  indexing, ``synchronize``...) and every host->device copy is counted per thread, so a
  test can assert that a training step makes none (:func:`counting`).
* ``RawModule``/``RawKernel`` run the CUDA C source on the CPU (``rawkernel.py``); ``cupy.cuda.nccl``
  is ``nccl.py``, which moves the bytes of its collectives with MPI between the ranks of a job.

None of this ships with the package; ``tests/conftest.py`` installs it in place of
``cupy`` for a test session run with ``--device fakecuda``.
"""

from __future__ import annotations

import contextlib
import json
import operator
import threading
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

NAMES: dict[str, list[str]] = json.loads(Path(__file__).with_name("cupy_names.json").read_text())
VERSION = NAMES["version"]
DEVICE_COUNT = 2

# ---------------------------------------------------------------------------- per-thread state
_state = threading.local()


def current_device() -> int:
    return getattr(_state, "device", 0)


class Counter:
    """What a :func:`counting` block saw: device->host syncs and host->device copies."""

    def __init__(self) -> None:
        self.syncs: list[str] = []
        self.h2d: list[str] = []

    def __repr__(self) -> str:
        return f"Counter(syncs={len(self.syncs)}, h2d={len(self.h2d)})"

    def report(self) -> str:
        lines = [f"{len(self.syncs)} device->host sync(s), {len(self.h2d)} host->device copy(ies)"]
        lines += [f"  sync: {s}" for s in self.syncs[:5]] + [f"  h2d: {s}" for s in self.h2d[:5]]
        return "\n".join(lines)


@contextlib.contextmanager
def counting() -> Iterator[Counter]:
    """Count this thread's syncs and host->device copies inside the block."""
    counter = Counter()
    stack = _state.__dict__.setdefault("counters", [])
    stack.append(counter)
    try:
        yield counter
    finally:
        stack.remove(counter)


def _where() -> str:
    """The first stack frame outside this stand-in and NumPy: who asked for the transfer."""
    here = str(Path(__file__).parent)
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not frame.filename.startswith(here) and "numpy" not in frame.filename:
            return f"{Path(frame.filename).name}:{frame.lineno} {frame.line}"
    return "?"


def _note(kind: str, what: str) -> None:
    counters = getattr(_state, "counters", None)
    if counters:
        entry = f"{what} at {_where()}"
        for c in counters:
            getattr(c, kind).append(entry)


def _sync(what: str) -> None:
    _note("syncs", what)


def _h2d(what: str) -> None:
    _note("h2d", what)


# ---------------------------------------------------------------------------- devices, streams
class Device:
    """``cupy.cuda.Device``: a context manager that makes a GPU current for this thread."""

    def __init__(self, device: Any = None) -> None:
        if device is None:
            device = current_device()
        if isinstance(device, Device):
            device = device.id
        device = operator.index(device)
        if not 0 <= device < DEVICE_COUNT:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {device}")
        self.id = device
        self._previous: list[int] = []

    def __enter__(self) -> Device:
        self._previous.append(current_device())
        _state.device = self.id
        return self

    def __exit__(self, *exc: object) -> None:
        _state.device = self._previous.pop()

    def use(self) -> None:
        _state.device = self.id

    def synchronize(self) -> None:
        _sync(f"Device({self.id}).synchronize()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("fakecuda.Device", self.id))

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class Stream:
    """``cupy.cuda.Stream``; work is done at once, so only ``synchronize`` matters (a sync)."""

    _next_ptr = 0x1000

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False) -> None:
        if null:
            self.ptr = 0
        else:
            Stream._next_ptr += 0x10
            self.ptr = Stream._next_ptr
        self.device_id = current_device()

    def synchronize(self) -> None:
        _sync("Stream.synchronize()")

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def use(self) -> Stream:
        return self


_NULL_STREAM = Stream(null=True)


def get_current_stream(device_id: int | None = None) -> Stream:
    return _NULL_STREAM


def alloc_pinned_memory(size: int) -> bytearray:
    """Page-locked host memory: any writable host buffer will do here."""
    return bytearray(int(size))


class MemoryPool:
    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_all_blocks(self, stream: Any = None) -> None:
        pass

    def get_limit(self) -> int:
        return 0

    def set_limit(self, size: Any = None, fraction: Any = None) -> None:
        pass


_MEMORY_POOL = MemoryPool()


# ---------------------------------------------------------------------------- the array
_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)


def _device_error(array_device: int) -> ValueError:
    return ValueError(
        f"Array device must be same as the current device: array device = {array_device} "
        f"while current = {current_device()}"
    )


def _garbage(shape: Any, dtype: Any) -> np.ndarray:
    """What ``cupy.empty`` hands back: memory nobody initialised (NaN for floats)."""
    dtype = np.dtype(float if dtype is None else dtype)
    if dtype.kind in "fc":
        return np.full(shape, np.nan, dtype=dtype)
    out = np.empty(shape, dtype=dtype)
    out.view(np.uint8)[...] = 0xA5
    return out


class ndarray:  # noqa: N801  (CuPy's name)
    """A device array: a NumPy array that only the device functions may touch."""

    __module__ = "cupy"  # what backend.is_cuda_array looks at
    __slots__ = ("_a", "_dev", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape: Any, dtype: Any = float, memptr: Any = None, strides: Any = None, order: str = "C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("fakecuda: ndarray(memptr=, strides=) is not supported")
        self._a = _garbage(shape, dtype)
        if order == "F":
            self._a = np.asfortranarray(self._a)
        self._dev = current_device()

    @classmethod
    def _of(cls, array: np.ndarray, device: int) -> ndarray:
        out = object.__new__(cls)
        out._a = array
        out._dev = device
        return out

    # -- attributes that need no kernel
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    device = property(lambda self: Device(self._dev))
    T = property(lambda self: ndarray._of(self._a.T, self._dev))
    mT = property(  # noqa: N815  (CuPy's name)
        lambda self: ndarray._of(np.swapaxes(self._a, -1, -2), self._dev)
    )
    base = property(lambda self: None if self._a.base is None else ndarray._of(self._a.base, self._dev))

    @property
    def real(self) -> ndarray:
        return ndarray._of(self._a.real, self._dev)

    @property
    def imag(self) -> ndarray:
        return ndarray._of(self._a.imag, self._dev)

    @property
    def data(self) -> Any:
        from . import nccl

        ptr = self._a.ctypes.data
        nccl.register_buffer(ptr, self)  # the fake NCCL accepts only pointers handed out here
        return types.SimpleNamespace(ptr=ptr, device_id=self._dev)

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self._a.ctypes.data, False), "version": 3}

    def __len__(self) -> int:
        return len(self._a)

    def __hash__(self) -> int:  # CuPy arrays are unhashable
        raise TypeError("unhashable type: 'cupy.ndarray'")

    # -- transfers
    def get(self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> np.ndarray:
        _sync("ndarray.get()")
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr: Any, stream: Any = None) -> None:
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.shape != self.shape or arr.dtype != self.dtype:
            raise ValueError(f"Shape mismatch or dtype mismatch: {arr.shape} {arr.dtype} vs {self.shape} {self.dtype}")
        _h2d("ndarray.set()")
        self._a[...] = arr

    def tolist(self) -> Any:
        _sync("ndarray.tolist()")
        return self._a.tolist()

    def item(self, *args: Any) -> Any:
        _sync("ndarray.item()")
        return self._a.item(*args)

    def tobytes(self, order: str = "C") -> bytes:
        _sync("ndarray.tobytes()")
        return self._a.tobytes(order)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise TypeError(_IMPLICIT)

    def _scalar(self, kind: type) -> Any:
        if self._a.ndim != 0:
            raise TypeError(f"only 0-dimensional arrays can be converted to Python scalars ({kind.__name__})")
        _sync(f"{kind.__name__}(ndarray)")
        return kind(self._a)

    def __float__(self) -> float:
        return self._scalar(float)

    def __int__(self) -> int:
        return self._scalar(int)

    def __complex__(self) -> complex:
        return self._scalar(complex)

    def __bool__(self) -> bool:
        if self._a.size != 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous.")
        _sync("bool(ndarray)")
        return bool(self._a.reshape(()))

    def __index__(self) -> int:
        raise TypeError("cupy.ndarray cannot be used as an index; call int() explicitly (a sync)")

    def __repr__(self) -> str:
        _sync("repr(ndarray)")
        return repr(self._a).replace("array(", "array(", 1) + f" (fakecuda:{self._dev})"

    def __str__(self) -> str:
        _sync("str(ndarray)")
        return str(self._a)

    def __format__(self, spec: str) -> str:
        if self._a.ndim == 0:
            _sync("format(ndarray)")
            return format(self._a.item(), spec)
        return format(str(self), spec)

    def __iter__(self) -> Iterator[ndarray]:
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(len(self._a)):
            yield self[i]

    def __copy__(self) -> ndarray:
        return self.copy()

    def __deepcopy__(self, memo: Any) -> ndarray:
        return self.copy()

    def __reduce__(self) -> Any:
        raise TypeError("fakecuda: pickling a device array would copy it to the host; call .get() first")

    # -- kernels
    def _here(self) -> None:
        if self._dev != current_device():
            raise _device_error(self._dev)

    def copy(self, order: str = "C") -> ndarray:
        """Copy onto the *current* device (peer-to-peer from another GPU), as CuPy does."""
        return ndarray._of(np.array(self._a, order=order, copy=True), current_device())

    def astype(self, dtype: Any, order: str = "K", casting: Any = None, subok: Any = None, copy: bool = True):
        self._here()
        out = self._a.astype(dtype, order=order, copy=copy)
        return self if out is self._a else ndarray._of(out, self._dev)

    def view(self, dtype: Any = None, array_class: Any = None) -> ndarray:
        return ndarray._of(self._a.view() if dtype is None else self._a.view(dtype), self._dev)

    def reshape(self, *shape: Any, order: str = "C") -> ndarray:
        out = self._a.reshape(*shape, order=order)
        if not np.shares_memory(out, self._a) and out.size:
            self._here()  # a reshape that copies is a kernel
        return ndarray._of(out, self._dev)

    def fill(self, value: Any) -> None:
        self._here()
        _check_scalar(value, "fill")
        self._a.fill(value)

    def __getitem__(self, key: Any) -> ndarray:
        key = _index_key(key, self._a.shape)
        out = self._a[key]
        if not isinstance(out, np.ndarray) or not np.shares_memory(out, self._a):
            self._here()  # a gather (advanced indexing, or a scalar read) is a kernel
        return _wrap(out, self._dev)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._here()
        key = _index_key(key, self._a.shape)
        if isinstance(value, ndarray):
            value._here()
            value = value._a
        elif isinstance(value, (np.ndarray, list, tuple)):
            # What a real GPU does with this depends on the CuPy version; our code moves
            # host values to the device first, so the stand-in refuses them outright.
            raise TypeError(
                f"fakecuda: assigning host data ({type(value).__name__}) into a device array; "
                "move it to the device first (cupy.asarray)"
            )
        else:
            _check_scalar(value, "__setitem__")
        self._a[key] = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name not in NAMES["cupy.ndarray"]:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        func = getattr(np.ndarray, name, None)
        if func is None:
            raise AttributeError(f"fakecuda: cupy.ndarray.{name} exists in CuPy {VERSION} but not in the stand-in")
        return _method(self, name)

    def __dir__(self) -> list[str]:
        return list(NAMES["cupy.ndarray"])


def _method(self: ndarray, name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        self._here()
        if name in ("nonzero",):
            _sync(f"ndarray.{name}()")
        args, kwargs, outs = _unwrap_call(args, kwargs)
        result = getattr(self._a, name)(*args, **kwargs)
        return _wrap(result, self._dev, outs)

    call.__name__ = name
    return call


def _binary(name: str, reflected: bool = False, inplace: bool = False) -> Any:
    def op(self: ndarray, other: Any) -> Any:
        uf = _ufunc(name)  # a NumPy array on either side is refused by the ufunc
        if inplace:
            return uf(self, other, out=self)
        return uf(other, self) if reflected else uf(self, other)

    return op


def _unary(name: str) -> Any:
    def op(self: ndarray) -> Any:
        return _ufunc(name)(self)

    return op


def _reject(value: Any, where: str) -> Any:
    raise TypeError(f"Unsupported type {type(value)} (in cupy.{where}): move host arrays to the device first")


_OPERATORS = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "truediv": "true_divide",
    "floordiv": "floor_divide",
    "mod": "remainder",
    "pow": "power",
    "matmul": "matmul",
    "and": "bitwise_and",
    "or": "bitwise_or",
    "xor": "bitwise_xor",
    "lshift": "left_shift",
    "rshift": "right_shift",
}
for _op, _uf in _OPERATORS.items():
    setattr(ndarray, f"__{_op}__", _binary(_uf))
    setattr(ndarray, f"__r{_op}__", _binary(_uf, reflected=True))
    setattr(ndarray, f"__i{_op}__", _binary(_uf, inplace=True))
for _op, _uf in {
    "eq": "equal",
    "ne": "not_equal",
    "lt": "less",
    "le": "less_equal",
    "gt": "greater",
    "ge": "greater_equal",
}.items():
    setattr(ndarray, f"__{_op}__", _binary(_uf))
for _op, _uf in {"neg": "negative", "pos": "positive", "abs": "absolute", "invert": "invert"}.items():
    setattr(ndarray, f"__{_op}__", _unary(_uf))
ndarray.__divmod__ = _binary("divmod")


def _array_ufunc(self: ndarray, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """NumPy ufuncs on device arrays dispatch to the device ufunc (as CuPy's own do)."""
    fake = _ufunc(ufunc.__name__)
    return getattr(fake, method)(*inputs, **kwargs) if method != "__call__" else fake(*inputs, **kwargs)


def _array_function(self: ndarray, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
    """NumPy functions on device arrays run CuPy's function of the same name, if it has one."""
    name = func.__name__
    module = func.__module__ or "numpy"
    if module.startswith("numpy.linalg"):
        table, target = "cupy.linalg", f"linalg.{name}"
    else:
        table, target = "cupy", name
    if name not in NAMES[table]:
        return NotImplemented
    return _resolve(target)(*args, **kwargs)


ndarray.__array_ufunc__ = _array_ufunc
ndarray.__array_function__ = _array_function


# ---------------------------------------------------------------------------- argument handling
def _check_scalar(value: Any, where: str) -> None:
    if isinstance(value, (np.ndarray, list, tuple)):
        _reject(value, where)


def _unwrap(value: Any, host_ok: bool = False, outs: dict | None = None) -> Any:
    """Device arrays -> their NumPy arrays (checked to be on the current device)."""
    if isinstance(value, ndarray):
        value._here()
        if outs is not None:
            outs[id(value._a)] = value
        return value._a
    if isinstance(value, np.ndarray):
        if not host_ok:
            _reject(value, "function")
        _h2d(f"host array of shape {value.shape}")
        return value
    if isinstance(value, list):
        return [_unwrap(v, host_ok, outs) for v in value]
    if isinstance(value, tuple):
        return tuple(_unwrap(v, host_ok, outs) for v in value)
    return value


def _unwrap_call(args: tuple, kwargs: dict, host_ok: bool = False) -> tuple[tuple, dict, dict]:
    outs: dict[int, ndarray] = {}
    args = tuple(_unwrap(a, host_ok, outs) for a in args)
    kwargs = {k: _unwrap(v, host_ok, outs) for k, v in kwargs.items()}
    return args, kwargs, outs


def _wrap(value: Any, device: int, outs: dict | None = None) -> Any:
    """NumPy results -> device arrays; NumPy scalars become 0-d device arrays (as in CuPy)."""
    if isinstance(value, np.ndarray):
        if outs and id(value) in outs:
            return outs[id(value)]
        return ndarray._of(value, device)
    if isinstance(value, np.generic):
        return ndarray._of(np.asarray(value), device)
    if isinstance(value, tuple):
        return tuple(_wrap(v, device, outs) for v in value)
    if isinstance(value, list):
        return [_wrap(v, device, outs) for v in value]
    return value


def _peek(args: tuple) -> tuple:
    """The NumPy arrays under device arrays, without a device check (for shape/dtype queries)."""
    return tuple(a._a if isinstance(a, ndarray) else a for a in args)


def _index_key(key: Any, shape: tuple[int, ...]) -> Any:
    """An index for the NumPy array: device index arrays unwrapped, integer arrays wrapped
    around their axis (CuPy does not check bounds), boolean masks counted as a sync."""
    parts = key if isinstance(key, tuple) else (key,)
    simple = not any(p is Ellipsis or p is None for p in parts)
    out = []
    axis = 0
    for p in parts:
        if isinstance(p, ndarray):
            p._here()
            p = p._a
        elif isinstance(p, list):
            p = np.asarray(p)
        if isinstance(p, np.ndarray):
            if p.dtype == bool:
                _sync("boolean-mask indexing")
                axis += p.ndim
            else:
                if simple and p.dtype.kind in "iu" and axis < len(shape) and shape[axis] > 0:
                    p = p % shape[axis]
                axis += 1
        elif p is not None:
            axis += 1 if p is not Ellipsis else 0
        out.append(p)
    return tuple(out) if isinstance(key, tuple) else out[0]


# ---------------------------------------------------------------------------- functions
# Functions that take host data (a list, a NumPy array) and copy it to the device.
_FROM_HOST = {"array", "asarray", "asanyarray"}
# Functions whose output size depends on the data: CuPy must read it back first.
_SYNCING = {"nonzero", "flatnonzero", "argwhere", "unique", "compress", "extract", "count_nonzero"}
# Functions that only look at shapes or dtypes: no kernel, so no current-device check.
_NO_KERNEL = {"shape", "ndim", "size", "result_type", "can_cast", "isscalar", "min_scalar_type"}
# Functions whose CuPy versions return 0-d device arrays where NumPy returns Python bools.
_ZERO_D = {"allclose", "array_equal", "array_equiv"}


class ufunc:  # noqa: N801
    """A device ufunc: NumPy's, on device arrays only."""

    __module__ = "cupy"

    def __init__(self, np_ufunc: np.ufunc) -> None:
        self._uf = np_ufunc
        self.__name__ = self.name = np_ufunc.__name__
        self.nin, self.nout, self.nargs, self.types = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs, np_ufunc.types

    def _run(self, method: Any, args: tuple, kwargs: dict) -> Any:
        args, kwargs, outs = _unwrap_call(args, kwargs)
        return _wrap(method(*args, **kwargs), current_device(), outs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._uf, args, kwargs)

    def at(self, a: Any, indices: Any, b: Any = None) -> None:
        if not isinstance(a, ndarray):
            _reject(a, f"{self.name}.at")
        a._here()
        indices = _index_key(indices, a.shape)
        args = (a._a, indices) if b is None else (a._a, indices, _unwrap(b))
        self._uf.at(*args)

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._uf.reduce, args, kwargs)

    def accumulate(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._uf.accumulate, args, kwargs)

    def outer(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._uf.outer, args, kwargs)

    def __repr__(self) -> str:
        return f"<ufunc 'cupy.{self.name}'>"


_ufuncs: dict[str, ufunc] = {}


def _ufunc(name: str) -> ufunc:
    if name not in _ufuncs:
        _ufuncs[name] = ufunc(getattr(np, name))
    return _ufuncs[name]


def _function(np_func: Any, name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        if name in _SYNCING:
            _sync(f"cupy.{name}()")
        if name in _FROM_HOST and args and isinstance(args[0], ndarray) and args[0]._dev != current_device():
            if name == "asarray" and kwargs.get("dtype") in (None, args[0].dtype):
                return args[0]  # CuPy hands back the array on its own device
            raise _device_error(args[0]._dev)
        if name in _NO_KERNEL:
            return np_func(*_peek(args), **kwargs)
        args, kwargs, outs = _unwrap_call(args, kwargs, host_ok=name in _FROM_HOST)
        result = np_func(*args, **kwargs)
        if name == "asarray" and args and isinstance(args[0], np.ndarray) and result is args[0]:
            result = result.copy()  # host memory is never device memory
        if name in _ZERO_D:
            result = np.asarray(result)
        return _wrap(result, current_device(), outs)

    call.__name__ = name
    call.__qualname__ = f"cupy.{name}"
    return call


def empty(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    return ndarray._of(_garbage(shape, dtype), current_device())


def empty_like(a: Any, dtype: Any = None, order: str = "K", subok: Any = None, shape: Any = None) -> ndarray:
    if not isinstance(a, ndarray):
        _reject(a, "empty_like")
    return empty(a.shape if shape is None else shape, a.dtype if dtype is None else dtype)


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> np.ndarray:
    if isinstance(a, ndarray):
        return a.get(out=out)
    return np.asarray(a, order=order)


def get_array_module(*args: Any) -> Any:
    import sys

    return sys.modules["cupy"] if any(isinstance(a, ndarray) for a in args) else np


def as_strided(x: Any, shape: Any = None, strides: Any = None) -> ndarray:
    """``cupy.lib.stride_tricks.as_strided``: a view, so no kernel and no device check."""
    if not isinstance(x, ndarray):
        _reject(x, "lib.stride_tricks.as_strided")
    return ndarray._of(np.lib.stride_tricks.as_strided(x._a, shape=shape, strides=strides), x._dev)


class Generator:
    """``cupy.random.Generator``: NumPy's generator, with CuPy's (smaller) set of methods."""

    def __init__(self, seed: Any = None) -> None:
        self._rng = np.random.default_rng(seed)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in NAMES["cupy.random.Generator"]:
            raise AttributeError(f"'cupy.random.Generator' object has no attribute {name!r} (not in CuPy {VERSION})")
        method = getattr(self._rng, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            args, kwargs, _ = _unwrap_call(args, kwargs)
            return _wrap(np.asarray(method(*args, **kwargs)), current_device())

        return call


def default_rng(seed: Any = None) -> Generator:
    return Generator(seed)


# ---------------------------------------------------------------------------- the modules
_EXPLICIT: dict[str, Any] = {
    "ndarray": ndarray,
    "ufunc": ufunc,
    "empty": empty,
    "empty_like": empty_like,
    "asnumpy": asnumpy,
    "get_array_module": get_array_module,
}


def _resolve(name: str) -> Any:
    """The stand-in for ``cupy.<name>`` (``name`` may be dotted, e.g. ``linalg.norm``)."""
    if name in _EXPLICIT:
        return _EXPLICIT[name]
    target: Any = np
    for part in name.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise AttributeError(f"fakecuda: cupy.{name} exists in CuPy {VERSION} but not in the stand-in")
    if isinstance(target, np.ufunc):
        return _ufunc(target.__name__)
    if callable(target) and not isinstance(target, type):
        return _function(target, name)
    return target  # a dtype class, a constant (nan, pi, newaxis)


class _Module(types.ModuleType):
    """A module that offers exactly CuPy's names: real ones resolved lazily from NumPy."""

    def __init__(self, name: str, table: str, prefix: str = "") -> None:
        super().__init__(name)
        self._table = table
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name not in NAMES[self._table]:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r} (not in CuPy {VERSION})")
        value = _resolve(self._prefix + name)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return list(NAMES[self._table])


def build_modules() -> dict[str, types.ModuleType]:
    """The fake ``cupy`` package and its submodules, ready for ``sys.modules``."""
    from . import nccl, rawkernel

    cupy = _Module("cupy", "cupy")
    cupy.__version__ = VERSION
    cupy.__file__ = __file__
    cupy.__path__ = []  # a package, so `import cupy.cuda` works
    cuda = _Module("cupy.cuda", "cupy.cuda", prefix="cuda.")
    runtime = types.ModuleType("cupy.cuda.runtime")
    runtime.getDeviceCount = lambda: DEVICE_COUNT
    runtime.getDevice = current_device
    runtime.setDevice = lambda i: Device(i).use()
    runtime.runtimeGetVersion = lambda: 13000
    runtime.driverGetVersion = lambda: 13000
    runtime.getDeviceProperties = lambda i: {"name": f"FakeCUDA {Device(i).id}".encode(), "totalGlobalMem": 1 << 34}
    runtime.deviceSynchronize = lambda: _sync("runtime.deviceSynchronize()")
    runtime.CUDARuntimeError = RuntimeError
    for attr in ("Device", "Stream", "MemoryPool"):
        setattr(cuda, attr, {"Device": Device, "Stream": Stream, "MemoryPool": MemoryPool}[attr])
    cuda.runtime = runtime
    cuda.get_current_stream = get_current_stream
    cuda.alloc_pinned_memory = alloc_pinned_memory
    cuda.is_available = lambda: True
    cuda.get_device_id = current_device
    cuda.nccl = nccl  # CuPy loads cupy.cuda.nccl on first access; the stand-in's is tests/fakecuda/nccl.py
    random = _Module("cupy.random", "cupy.random", prefix="random.")
    random.Generator = Generator
    random.default_rng = default_rng
    lib = types.ModuleType("cupy.lib")
    stride_tricks = types.ModuleType("cupy.lib.stride_tricks")
    stride_tricks.as_strided = as_strided
    lib.stride_tricks = stride_tricks
    linalg = _Module("cupy.linalg", "cupy.linalg", prefix="linalg.")
    for name, module in (("cuda", cuda), ("random", random), ("lib", lib), ("linalg", linalg)):
        setattr(cupy, name, module)
    cupy.RawModule = rawkernel.RawModule
    cupy.RawKernel = rawkernel.RawKernel
    cupy.get_default_memory_pool = lambda: _MEMORY_POOL
    cupy.get_default_pinned_memory_pool = lambda: _MEMORY_POOL
    return {
        "cupy": cupy,
        "cupy.cuda": cuda,
        "cupy.cuda.runtime": runtime,
        "cupy.cuda.nccl": nccl,
        "cupy.random": random,
        "cupy.lib": lib,
        "cupy.lib.stride_tricks": stride_tricks,
        "cupy.linalg": linalg,
    }
