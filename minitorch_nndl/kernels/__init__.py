"""Low-level array kernels behind the CNN ops: im2col / col2im.

:func:`im2col` and :func:`col2im` dispatch on the array: NumPy arrays (and
CuPy arrays when ``USE_CUDA_RAWKERNELS`` is False, or for dtypes without a
kernel) use the array-expression versions in :mod:`.arrays`, which run on
either backend; CuPy float32/float64 arrays use the hand-written CUDA kernels
in :mod:`.cuda`.  Set the environment variable ``MINITORCH_CUDA_RAWKERNELS=0``
(or the module flag) to force the array-expression path on the GPU.
"""

from __future__ import annotations

import os
from typing import Any

from .. import backend
from . import arrays as generic
from . import cuda, winograd, winograd4
from .arrays import conv_output_size, im2row, pad_spatial, row2im, valid_span, window_slice

USE_CUDA_RAWKERNELS: bool = os.environ.get("MINITORCH_CUDA_RAWKERNELS", "1") != "0"

Pair = tuple[int, int]


def _use_rawkernel(array: Any) -> bool:
    if not (USE_CUDA_RAWKERNELS and backend.is_cuda_array(array)):
        return False
    return cuda.available_for(array.dtype)


def im2col(x: Any, kernel_size: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0), dilation: Pair = (1, 1)) -> Any:
    """Columns (C*KH*KW, N*OH*OW) of ``x`` (N, C, H, W); see :mod:`minitorch_nndl.kernels.arrays`."""
    if _use_rawkernel(x):
        return cuda.im2col(x, kernel_size, stride, padding, dilation)
    return generic.im2col(x, kernel_size, stride, padding, dilation)


def col2im(
    cols: Any,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
) -> Any:
    """The adjoint of :func:`im2col`: columns scatter-added back into an (N, C, H, W) array."""
    if _use_rawkernel(cols):
        return cuda.col2im(cols, x_shape, kernel_size, stride, padding, dilation)
    return generic.col2im(cols, x_shape, kernel_size, stride, padding, dilation)


__all__ = [
    "generic",
    "im2col",
    "col2im",
    "im2row",
    "row2im",
    "conv_output_size",
    "pad_spatial",
    "valid_span",
    "window_slice",
    "USE_CUDA_RAWKERNELS",
    "winograd",
    "winograd4",
]
