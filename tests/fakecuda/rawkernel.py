"""``cupy.RawModule`` / ``cupy.RawKernel`` for the stand-in: the CUDA C runs on the CPU.

The kernel source is compiled once with the system C++ compiler, with a prelude that
turns ``__global__`` functions into plain C++ functions and ``blockIdx``/``threadIdx``/
``blockDim``/``gridDim`` into variables.  A launch loops over every block and every
thread of the grid in order, setting those variables, and calls the kernel: exactly
the threads a GPU would run, one after another.  That is a faithful model for kernels
whose threads write disjoint outputs and never wait for each other (no
``__syncthreads``, no shared memory), which is what minitorch_nndl's kernels are.

A launch is stricter than a GPU: every pointer argument must be a device array on the
current device, C-contiguous, with the element type the kernel declares, and every
scalar a NumPy scalar of exactly the declared type (a Python ``int`` where the kernel
takes ``int`` would be passed as 64 bits by CuPy and read wrongly).
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import core

_PRELUDE = r"""
#include <cmath>
#include <cstddef>
struct fakecuda_dim3 { unsigned int x, y, z; };
static thread_local fakecuda_dim3 blockIdx, threadIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
"""

_SIGNATURE = re.compile(r"__global__\s+void\s+(\w+)\s*\(([^)]*)\)", re.S)
_TYPEDEF = re.compile(r"typedef\s+([\w\s]+?)\s+(\w+)\s*;")
_SCALARS = {
    "int": np.int32,
    "unsigned int": np.uint32,
    "long long": np.int64,
    "unsigned long long": np.uint64,
    "long": np.int64,
    "float": np.float32,
    "double": np.float64,
    "bool": np.bool_,
    "char": np.int8,
    "unsigned char": np.uint8,
    "short": np.int16,
}
_CTYPES = {
    np.int32: ctypes.c_int32,
    np.uint32: ctypes.c_uint32,
    np.int64: ctypes.c_int64,
    np.uint64: ctypes.c_uint64,
    np.float32: ctypes.c_float,
    np.float64: ctypes.c_double,
    np.bool_: ctypes.c_bool,
    np.int8: ctypes.c_int8,
    np.uint8: ctypes.c_uint8,
    np.int16: ctypes.c_int16,
}
_build_dir: Path | None = None
_libraries: dict[str, ctypes.CDLL] = {}


def compiler() -> str | None:
    """The C++ compiler the stand-in uses (None when the machine has none)."""
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


class Param:
    """One kernel parameter: a pointer to ``element`` or a scalar of ``element``."""

    def __init__(self, decl: str, typedefs: dict[str, str]) -> None:
        decl = " ".join(decl.replace("__restrict__", " ").replace("*", " * ").split())
        words = decl.split(" ")
        self.name = words[-1]
        self.pointer = "*" in words
        base = " ".join(w for w in words[:-1] if w not in ("const", "*", "volatile"))
        base = typedefs.get(base, base)
        if base not in _SCALARS:
            raise RuntimeError(f"fakecuda: kernel parameter type {base!r} ({decl}) is not supported")
        self.element = _SCALARS[base]
        self.ctype = " ".join(words[:-1])  # for the launcher's cast

    def describe(self) -> str:
        return f"{self.ctype} {self.name}"


class RawKernel:
    """One ``__global__`` function of a compiled source, launched as ``kernel(grid, block, args)``."""

    def __init__(self, code: str, name: str, options: tuple = (), **kwargs: Any) -> None:
        self.code = code
        self.name = name
        self._module = RawModule(code=code, options=options)
        self._params = self._module._params(name)

    def __call__(self, grid: Any, block: Any, args: tuple, *, shared_mem: int = 0, stream: Any = None, **kw: Any):
        self._module._launch(self.name, grid, block, args, shared_mem)

    @property
    def attributes(self) -> dict[str, Any]:
        return {"max_threads_per_block": 1024}


class _Function:
    def __init__(self, module: RawModule, name: str) -> None:
        self._module = module
        self.name = name
        module._params(name)  # unknown names fail here, as cupy's get_function does

    def __call__(self, grid: Any, block: Any, args: tuple, *, shared_mem: int = 0, stream: Any = None, **kw: Any):
        self._module._launch(self.name, grid, block, args, shared_mem)


class RawModule:
    """A CUDA C source compiled for the CPU; ``get_function(name)`` gives a launchable kernel."""

    def __init__(self, code: str | None = None, path: str | None = None, options: tuple = (), **kwargs: Any) -> None:
        if code is None:
            if path is None:
                raise TypeError("RawModule needs code= or path=")
            code = Path(path).read_text()
        self.code = code
        typedefs = {alias: target.strip() for target, alias in _TYPEDEF.findall(code)}
        self._signatures = {
            name: [Param(d, typedefs) for d in params.split(",") if d.strip()]
            for name, params in _SIGNATURE.findall(code)
        }
        self._lib: ctypes.CDLL | None = None

    def _params(self, name: str) -> list[Param]:
        if name not in self._signatures:
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: named symbol not found: {name}")
        return self._signatures[name]

    def get_function(self, name: str) -> _Function:
        return _Function(self, name)

    # -- compile and launch
    def _library(self) -> ctypes.CDLL:
        if self._lib is None:
            source = _PRELUDE + self.code + "\n" + "\n".join(self._launcher(n) for n in self._signatures)
            key = hashlib.sha256(source.encode()).hexdigest()[:16]
            if key not in _libraries:
                _libraries[key] = _compile(source, key)
            self._lib = _libraries[key]
        return self._lib

    def _launcher(self, name: str) -> str:
        params = self._signatures[name]
        casts = ", ".join(f"*({p.ctype}*)args[{i}]" for i, p in enumerate(params))
        return f"""
extern "C" void fakecuda_launch_{name}(unsigned gx, unsigned gy, unsigned gz,
                                       unsigned bx, unsigned by, unsigned bz, void** args) {{
    gridDim = {{gx, gy, gz}}; blockDim = {{bx, by, bz}};
    for (unsigned z = 0; z < gz; ++z) for (unsigned y = 0; y < gy; ++y) for (unsigned x = 0; x < gx; ++x) {{
        blockIdx = {{x, y, z}};
        for (unsigned tz = 0; tz < bz; ++tz)
        for (unsigned ty = 0; ty < by; ++ty)
        for (unsigned tx = 0; tx < bx; ++tx) {{
            threadIdx = {{tx, ty, tz}};
            {name}({casts});
        }}
    }}
}}
"""

    def _launch(self, name: str, grid: Any, block: Any, args: tuple, shared_mem: int) -> None:
        params = self._params(name)
        if len(args) != len(params):
            raise TypeError(f"fakecuda: kernel {name} takes {len(params)} arguments, got {len(args)}")
        if shared_mem:
            raise NotImplementedError("fakecuda: dynamic shared memory is not modelled")
        values = [_argument(name, p, a) for p, a in zip(params, args)]
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        g = _dim3(grid)
        b = _dim3(block)
        if b[0] * b[1] * b[2] > 1024:
            raise RuntimeError("CUDA_ERROR_INVALID_VALUE: more than 1024 threads per block")
        getattr(self._library(), f"fakecuda_launch_{name}")(*(ctypes.c_uint(v) for v in (*g, *b)), pointers)


def _dim3(value: Any) -> tuple[int, int, int]:
    dims = tuple(int(v) for v in (value if isinstance(value, tuple) else (value,)))
    return (dims + (1, 1, 1))[:3]


def _argument(kernel: str, param: Param, value: Any) -> Any:
    where = f"kernel {kernel}, argument {param.describe()}"
    if param.pointer:
        if not isinstance(value, core.ndarray):
            raise TypeError(f"fakecuda: {where}: expected a device array, got {type(value).__name__}")
        value._here()
        if not value.flags.c_contiguous:
            raise ValueError(f"fakecuda: {where}: the array is not C-contiguous; the kernel would misread it")
        if value.dtype != np.dtype(param.element):
            raise TypeError(f"fakecuda: {where}: the array is {value.dtype}, the kernel reads {param.element.__name__}")
        return ctypes.c_void_p(value._a.ctypes.data)
    if not isinstance(value, param.element):
        raise TypeError(
            f"fakecuda: {where}: pass a numpy.{param.element.__name__} scalar, got {type(value).__name__} "
            "(CuPy passes Python ints as 64-bit and floats as double)"
        )
    return _CTYPES[param.element](value.item())


def _compile(source: str, key: str) -> ctypes.CDLL:
    global _build_dir
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("fakecuda: no C++ compiler (g++/clang++) to run RawKernels on the CPU")
    if _build_dir is None:
        _build_dir = Path(tempfile.mkdtemp(prefix="fakecuda-"))
    src = _build_dir / f"{key}.cpp"
    lib = _build_dir / f"{key}.so"
    src.write_text(source)
    done = subprocess.run(
        [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-o", str(lib), str(src)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fakecuda: the kernel source does not compile:\n{done.stderr[-3000:]}")
    return ctypes.CDLL(str(lib))
