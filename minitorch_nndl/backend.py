"""The one place that knows NumPy from CuPy.

Every array in minitorch_nndl lives on a *device*: ``"cpu"`` (a NumPy array) or
``"cuda:N"`` (a CuPy array on GPU N).  Code elsewhere never imports numpy or
cupy for array math where the device matters; it asks this module for the array
module of a device (``xp_for``) or of an array (``xp_of``) and writes the math
once.  Kernel choice (NumPy expressions vs CuPy ``RawKernel``) is also made
here, through :func:`is_cuda_array`.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np

CUPY_INSTALL_HINT = (
    'From a clone, install CuPy with its CUDA libraries: python3 -m pip install -e ".[cuda]" '
    '(CUDA 12 drivers; ".[cuda13]" for CUDA 13), on a machine with an NVIDIA GPU and driver. '
    "Use device='cpu' otherwise."
)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


@functools.lru_cache(maxsize=1)
def _cupy_status() -> tuple[Any | None, str]:
    """CuPy if it can really compute, else None and the reason, found once per process.

    Counting devices is not enough: ``cupy-cuda12x`` without its CUDA libraries sees the
    GPU and then fails at the first elementwise op (NVRTC) or matmul (cuBLAS).  So the
    probe runs one tiny add and one tiny matmul and tells the three failures apart.
    """
    try:
        import cupy  # noqa: PLC0415
    except ImportError:
        return None, "CuPy is not installed"
    except Exception as error:  # a broken installation
        return None, f"CuPy is installed but does not import ({_one_line(error)})"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as error:
        return None, f"CuPy is installed but finds no NVIDIA driver or GPU ({_one_line(error)})"
    if count == 0:
        return None, "CuPy is installed but finds no GPU"
    try:
        with cupy.cuda.Device(0):
            a = cupy.ones((2, 2), dtype=cupy.float32)
            ((a + a) @ a).get()  # NVRTC compiles the add; cuBLAS runs the matmul
    except Exception as error:
        return None, (
            f"CuPy sees {count} GPU(s) but cannot compute on them: CUDA libraries missing or broken "
            f"(cuBLAS, NVRTC, cuRAND; {_one_line(error)})"
        )
    return cupy, ""


def _import_cupy() -> Any | None:
    """The CuPy module when a GPU is usable, else None."""
    return _cupy_status()[0]


def cuda_unavailable_reason() -> str:
    """Why CUDA cannot be used ("" when it can): not installed, no driver/GPU, or no CUDA libraries."""
    if _import_cupy() is not None:
        return ""
    return _cupy_status()[1] or "CuPy is not installed"


def cuda_is_available() -> bool:
    """True when CuPy imports, sees a GPU, and can run a kernel and a matmul on it."""
    return _import_cupy() is not None


def cuda_device_count() -> int:
    """How many CUDA GPUs CuPy sees (0 when CUDA is not usable)."""
    cp = _import_cupy()
    return 0 if cp is None else int(cp.cuda.runtime.getDeviceCount())


def _not_usable(device: str) -> RuntimeError:
    return RuntimeError(
        f"device {device!r} was requested but CUDA is not usable: {cuda_unavailable_reason()}. {CUPY_INSTALL_HINT}"
    )


def normalize_device(device: Any = None) -> str:
    """Canonical device name: ``"cpu"`` or ``"cuda:N"`` (``"cuda"`` means ``"cuda:0"``)."""
    if device is None:
        return "cpu"
    device = str(device).strip().lower()
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        device = "cuda:0"
    if device.startswith("cuda:") and device[5:].isdigit():
        if not cuda_is_available():
            raise _not_usable(device)
        index = int(device[5:])
        if index >= cuda_device_count():
            raise RuntimeError(f"device {device!r} does not exist: {cuda_device_count()} CUDA device(s) found")
        return device
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def is_cuda_array(array: Any) -> bool:
    """True for a CuPy ndarray (without importing CuPy when it is absent)."""
    return type(array).__module__.startswith("cupy")


def xp_of(array: Any) -> Any:
    """The array module (numpy or cupy) that owns ``array``."""
    if is_cuda_array(array):
        return _import_cupy()
    return np


def xp_for(device: str) -> Any:
    """The array module for a canonical device name."""
    if device == "cpu":
        return np
    cp = _import_cupy()
    if cp is None:
        raise _not_usable(device)
    return cp


def device_of(array: Any) -> str:
    """The canonical device name of an array."""
    if is_cuda_array(array):
        return f"cuda:{array.device.id}"
    return "cpu"


def _cuda_index(device: str) -> int:
    return int(device.split(":")[1])


def to_device(array: Any, device: str) -> Any:
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    if device_of(array) == device and not isinstance(array, (int, float, bool, list, tuple)):
        return array
    if device == "cpu":
        return array.get() if is_cuda_array(array) else np.asarray(array)
    cp = xp_for(device)
    with cp.cuda.Device(_cuda_index(device)):
        if is_cuda_array(array):
            # cupy.asarray would hand back the array on its old GPU; copy() copies
            # onto the current device (peer-to-peer when possible).
            return array.copy()
        return cp.asarray(array)


def copy(array: Any) -> Any:
    """A copy of ``array`` on its own device (``cupy.ndarray.copy`` copies onto the *current* GPU)."""
    with device_context(device_of(array)):
        return array.copy()


def asarray(data: Any, dtype: Any = None, device: str = "cpu") -> Any:
    """An array of ``data`` on ``device`` with ``dtype`` (None keeps the data's dtype)."""
    if device == "cpu":
        if is_cuda_array(data):
            data = data.get()
        return np.asarray(data, dtype=dtype)
    cp = xp_for(device)
    with cp.cuda.Device(_cuda_index(device)):
        if is_cuda_array(data) and device_of(data) != device:
            data = data.copy()  # onto this GPU (cupy.asarray would keep the old one)
        return cp.asarray(data, dtype=dtype)


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy copy (or view, on the CPU) of any backend array."""
    return array.get() if is_cuda_array(array) else np.asarray(array)


_ON_CPU = contextlib.nullcontext()


def device_context(device: str) -> Any:
    """A context manager that makes ``device`` current (a no-op on the CPU).

    CuPy runs every kernel on the *current* GPU and allocates there, whatever device
    the inputs live on; ops, backward and optimizer steps enter their tensors' device
    with this, so work on ``cuda:1`` stays on ``cuda:1``.
    """
    if device == "cpu":
        return _ON_CPU
    return xp_for(device).cuda.Device(_cuda_index(device))


def synchronize(device: str = "cuda:0") -> None:
    """Wait for the device's queued work to finish (a no-op on the CPU); for timing."""
    if device != "cpu":
        xp_for(device).cuda.Device(_cuda_index(device)).synchronize()


# ----------------------------------------------------------------------------------
# Random numbers: one seeded generator per device family, so CPU runs are reproducible.
# ----------------------------------------------------------------------------------
_cpu_rng = np.random.default_rng(0)
_cuda_rngs: dict[str, Any] = {}
_seed = 0


def manual_seed(seed: int) -> None:
    """Seed every generator the library uses (CPU and, lazily, each GPU)."""
    global _cpu_rng, _seed
    _seed = int(seed)
    _cpu_rng = np.random.default_rng(_seed)
    _cuda_rngs.clear()


def rng_for(device: str) -> Any:
    """The library's random generator for ``device`` (numpy or cupy Generator API)."""
    if device == "cpu":
        return _cpu_rng
    if device not in _cuda_rngs:
        cp = xp_for(device)
        with device_context(device):
            _cuda_rngs[device] = cp.random.default_rng(_seed + _cuda_index(device))
    return _cuda_rngs[device]


def get_rng_state() -> dict:
    """The CPU generator's state (a JSON-able dict) for checkpoints."""
    return _cpu_rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore the CPU generator's state from :func:`get_rng_state`."""
    _cpu_rng.bit_generator.state = state


# ----------------------------------------------------------------------------------
# dtypes: the same dtype objects on both backends (CuPy uses NumPy's dtypes).
# ----------------------------------------------------------------------------------
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")
default_float = float32


def as_dtype(dtype: Any) -> np.dtype:
    """A dtype object from a dtype, a type or a name such as ``"float32"``."""
    return np.dtype(dtype)


def is_floating(dtype: Any) -> bool:
    """True for float16/32/64."""
    return np.dtype(dtype).kind == "f"


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """``target[index] += values`` where repeated indices accumulate (in place).

    Plain ``target[index] += values`` would keep only one of the repeats.  NumPy
    does it with ``np.add.at``; CuPy with ``cupy.add.at`` (CuPy >= 12) or the older
    ``cupyx.scatter_add`` (atomicAdd: float32/float64/int32 targets, not float16).
    """
    if is_cuda_array(target):
        cp = _import_cupy()
        add_at = getattr(cp.add, "at", None)
        if add_at is not None:
            add_at(target, index, values)
        else:
            import cupyx  # noqa: PLC0415

            cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


# ----------------------------------------------------------------------------------
# The C allocator: an explicit, opt-in, process-wide setting (never applied on import).
# ----------------------------------------------------------------------------------
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters of glibc's <malloc.h>
_GLIBC_DEFAULTS = {_M_TRIM_THRESHOLD: 128 * 1024, _M_MMAP_MAX: 65536}


def reuse_freed_memory(enable: bool = True) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS.

    By default every NumPy array above 128 KiB (up to 32 MiB, above always) is a fresh
    ``mmap`` that is unmapped when freed, so each training step faults all its large
    temporaries in again, page by page (ResNet18 at batch 64: about 24,000 minor page
    faults per step).  With ``enable=True`` large blocks come from the heap
    (``M_MMAP_MAX=0``) and the heap is not trimmed (``M_TRIM_THRESHOLD=1 GiB``): freed
    blocks are reused by the next step (about 3,000 faults per step) and peak resident
    memory stays the same.  ``enable=False`` restores glibc's defaults.

    This changes the allocator of the whole process, for every library in it, so the
    library never calls it on its own: a script opts in (``benchmarks/bench_resnet18.py``
    does).  Returns False, changing nothing, where the C library is not glibc.
    """
    import ctypes  # noqa: PLC0415  (only needed here)
    import ctypes.util  # noqa: PLC0415

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    values = {_M_TRIM_THRESHOLD: 2**30, _M_MMAP_MAX: 0} if enable else _GLIBC_DEFAULTS
    return all(mallopt(parameter, value) == 1 for parameter, value in values.items())
