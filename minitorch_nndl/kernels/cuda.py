"""CUDA versions of im2col / col2im as CuPy ``RawKernel``s (CuPy arrays only).

Both kernels use one thread per *output* element, so no two threads write the
same address and no atomics are needed:

* ``im2col``: thread i computes column entry i = (c, kh, kw, n, oh, ow) and
  reads the one input pixel it comes from (or 0 inside the padding).
* ``col2im``: thread i computes input-gradient pixel i = (n, c, h, w) and
  *gathers* the column entries that were copied from it: for each kernel
  offset (kh, kw), the output position (oh, ow) with
  ``oh*sh - ph + kh*dh == h`` (and the same for w), when it exists.

The layouts are exactly those of :mod:`minitorch_nndl.kernels.arrays`: columns
(C*KH*KW, N*OH*OW) with rows (c, kh, kw) and columns (n, oh, ow).  Kernels are
compiled lazily, once per dtype (float32, float64), the first time they are
needed, and checked once against the array-expression versions; on any failure
the dispatcher in :mod:`minitorch_nndl.kernels` falls back to those.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import backend
from .arrays import col2im as _col2im_reference
from .arrays import conv_output_size
from .arrays import im2col as _im2col_reference

Pair = tuple[int, int]

_SOURCE = r"""
extern "C" __global__ void im2col(
    const T* __restrict__ x, T* __restrict__ cols,
    const int N, const int C, const int H, const int W, const int KH, const int KW,
    const int OH, const int OW, const int sh, const int sw, const int ph, const int pw,
    const int dh, const int dw, const long long total)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        long long t = i;
        const int ow = (int)(t % OW); t /= OW;
        const int oh = (int)(t % OH); t /= OH;
        const int n = (int)(t % N); t /= N;
        const int kw = (int)(t % KW); t /= KW;
        const int kh = (int)(t % KH);
        const int c = (int)(t / KH);
        const int h = oh * sh - ph + kh * dh;
        const int w = ow * sw - pw + kw * dw;
        T v = (T)0;
        if (h >= 0 && h < H && w >= 0 && w < W) {
            v = x[(((long long)n * C + c) * H + h) * W + w];
        }
        cols[i] = v;
    }
}

extern "C" __global__ void col2im(
    const T* __restrict__ cols, T* __restrict__ x,
    const int N, const int C, const int H, const int W, const int KH, const int KW,
    const int OH, const int OW, const int sh, const int sw, const int ph, const int pw,
    const int dh, const int dw, const long long total)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        long long t = i;
        const int w = (int)(t % W); t /= W;
        const int h = (int)(t % H); t /= H;
        const int c = (int)(t % C);
        const int n = (int)(t / C);
        T acc = (T)0;
        for (int kh = 0; kh < KH; ++kh) {
            const int hh = h + ph - kh * dh;
            if (hh < 0 || hh % sh != 0) continue;
            const int oh = hh / sh;
            if (oh >= OH) continue;
            for (int kw = 0; kw < KW; ++kw) {
                const int ww = w + pw - kw * dw;
                if (ww < 0 || ww % sw != 0) continue;
                const int ow = ww / sw;
                if (ow >= OW) continue;
                const long long row = ((long long)c * KH + kh) * KW + kw;
                acc += cols[((row * N + n) * OH + oh) * OW + ow];
            }
        }
        x[i] = acc;
    }
}
"""

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_modules: dict[np.dtype, Any] = {}
_status: dict[np.dtype, bool] = {}  # dtype -> compiled and verified (True) or failed (False)
_THREADS = 256


def _module(dtype: np.dtype) -> Any:
    if dtype not in _modules:
        cp = backend.xp_for("cuda:0")
        _modules[dtype] = cp.RawModule(code=f"typedef {_CTYPES[dtype]} T;\n" + _SOURCE)
    return _modules[dtype]


def _launch(name: str, source: Any, target: Any, dims: tuple[int, ...]) -> None:
    total = int(target.size)
    if total == 0:
        return
    blocks = min((total + _THREADS - 1) // _THREADS, 1 << 20)  # a grid-stride loop covers the rest
    kernel = _module(np.dtype(target.dtype)).get_function(name)
    args = (source, target, *(np.int32(d) for d in dims), np.int64(total))
    kernel((blocks,), (_THREADS,), args)


def _dims(x_shape: tuple[int, ...], kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> tuple:
    N, C, H, W = x_shape
    KH, KW = kernel_size
    OH = conv_output_size(H, KH, stride[0], padding[0], dilation[0])
    OW = conv_output_size(W, KW, stride[1], padding[1], dilation[1])
    return (N, C, H, W, KH, KW, OH, OW, *stride, *padding, *dilation)


def im2col(x: Any, *geometry: Pair) -> Any:
    """CuPy-only im2col; same arguments (kernel_size, stride, padding, dilation), result and
    layout as :func:`minitorch_nndl.kernels.arrays.im2col`."""
    cp = backend.xp_of(x)
    dims = _dims(x.shape, *geometry)
    N, C, _, _, KH, KW, OH, OW = dims[:8]
    with x.device:
        x = cp.ascontiguousarray(x)
        cols = cp.empty((C * KH * KW, N * OH * OW), dtype=x.dtype)
        _launch("im2col", x, cols, dims)
    return cols


def col2im(cols: Any, x_shape: tuple[int, int, int, int], *geometry: Pair) -> Any:
    """CuPy-only col2im (a gather: one thread per input pixel, no atomics); arguments as
    :func:`minitorch_nndl.kernels.arrays.col2im`."""
    cp = backend.xp_of(cols)
    dims = _dims(x_shape, *geometry)
    with cols.device:
        cols = cp.ascontiguousarray(cols)
        out = cp.empty(tuple(x_shape), dtype=cols.dtype)
        _launch("col2im", cols, out, dims)
    return out


def available_for(dtype: Any) -> bool:
    """Whether the RawKernels can be used for ``dtype``: compiled, and checked once against
    the array-expression versions on a small case with stride, padding and dilation."""
    dtype = np.dtype(dtype)
    if dtype not in _CTYPES:
        return False
    if dtype not in _status:
        try:
            cp = backend.xp_for("cuda:0")
            rng = np.random.default_rng(0)
            x = cp.asarray(rng.standard_normal((2, 3, 7, 6)), dtype=dtype)
            ok = True
            for args in (((3, 2), (2, 1), (1, 2), (2, 1)), ((1, 1), (1, 1), (0, 0), (1, 1))):
                cols = im2col(x, *args)
                ok &= bool(cp.allclose(cols, _im2col_reference(x, *args)))
                g = cp.asarray(rng.standard_normal(cols.shape), dtype=dtype)
                ok &= bool(cp.allclose(col2im(g, x.shape, *args), _col2im_reference(g, x.shape, *args)))
            if not ok:
                warnings.warn(
                    "minitorch_nndl: CUDA im2col/col2im kernels disagree with the reference; "
                    "using the array-expression versions",
                    RuntimeWarning,
                    stacklevel=2,
                )
            _status[dtype] = ok
        except Exception as error:  # compilation or launch failure: fall back
            warnings.warn(
                f"minitorch_nndl: CUDA im2col/col2im kernels unavailable ({error}); "
                "using the array-expression versions",
                RuntimeWarning,
                stacklevel=2,
            )
            _status[dtype] = False
    return _status[dtype]
