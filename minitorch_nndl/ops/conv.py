"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col + one GEMM.

For an input x (N, C, H, W) and weights w (C_out, C/groups, KH, KW),

    y[n, o, i, j] = b[o] + sum_{c, kh, kw} w[o, c, kh, kw] * x_pad[n, c, i*sh + kh*dh, j*sw + kw*dw].

Laying every receptive field out as a column (:func:`minitorch_nndl.kernels.im2col`)
turns this into one matrix product  Y = W_mat @ cols  with W_mat (C_out, C*KH*KW)
and cols (C*KH*KW, N*OH*OW).  Its backward is two more matrix products:

    dW_mat = dY_mat @ cols^T          (how much each weight was used, times the gradient)
    dcols  = W_mat^T @ dY_mat         (then col2im adds each column entry back to its pixel)
    db     = sum of dY over n, i, j

With ``groups`` the channels split into independent blocks, and the single
GEMM becomes one batched matmul over the groups.

How it runs on the CPU (the same arithmetic, arranged for speed and memory):

* channels-last: without groups the same algebra runs transposed, one *row* per
  output position (:func:`minitorch_nndl.kernels.im2row`), and the GEMM's result is
  the output with NHWC strides underneath (``Tensor.shape`` still says NCHW), so no
  transpose follows the GEMM and the next layer reads contiguous channel runs (an input of
  at most ``MAX_COLUMN_CHANNELS`` channels, the RGB stem, is read as im2col's columns instead);
* chunks: the batch goes through a few images at a time into one reused buffer, and
  the backward rebuilds each chunk's rows from the saved input instead of keeping the
  whole column matrix (2.2 GB for ResNet18 at batch 128);
* Winograd F(2x2, 3x3) (:mod:`minitorch_nndl.kernels.winograd`) for stride-1 3x3
  kernels, forward and both gradients: 2.25x fewer multiplications; on the CPU, where a
  thread's share of the batch has enough tiles, F(4x4, 3x3) (:mod:`minitorch_nndl.kernels.winograd4`):
  4x fewer;
* threads: each thread of :mod:`minitorch_nndl.kernels.parallel` can take a range of
  the batch (off by default; ``parallel.use_batch_threads()`` opts in).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import backend, kernels
from ..autograd import Context, Function
from ..grad_mode import no_grad, prepared, prepares
from ..kernels import parallel, workspace
from ..tensor import Tensor
from .validate import Pair, pair


class ConvGeometry(NamedTuple):
    """What the backward needs to know about the forward's shapes."""

    x_shape: tuple[int, int, int, int]
    kernel_size: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int


class Epilogue(NamedTuple):
    """What happens to each chunk of a convolution's output right after it is computed (evaluation
    only): ``residual`` (an array of the output's shape) added, then ``relu``.  Done there, the
    chunk is still in the cache, and no pass over the whole output (nor a second output) is needed."""

    residual: Any = None
    relu: bool = False

    def finisher(self) -> Any:
        """``finish(out, start, stop)``, applying the epilogue to images start..stop-1 of ``out``
        (N, OH, OW, C_out); the residual is taken channels-last once, here (a view when it is)."""
        if self.residual is None and not self.relu:
            return lambda out, start, stop: None
        residual = None if self.residual is None else _channels_last(self.residual)

        def finish(out: Any, start: int, stop: int) -> None:
            chunk = out[start:stop]
            if residual is not None:
                chunk += residual[start:stop]
            if self.relu:
                kernels.arrays.relu_into(chunk, chunk)

        return finish


def _channels_last(x: Any) -> Any:
    """The (N, H, W, C) array of a logically NCHW ``x``: a view when ``x`` has channels-last
    strides (as every conv output has), one copy otherwise (the network's input)."""
    return backend.xp_of(x).ascontiguousarray(x.transpose(0, 2, 3, 1))


def _weight_rows(weight: Any) -> Any:
    """W_rows (C_out, KH*KW*C_in) with columns ordered (kh, kw, c), like the rows of im2row."""
    return backend.xp_of(weight).ascontiguousarray(weight.transpose(0, 2, 3, 1)).reshape(weight.shape[0], -1)


def _is_pointwise(geometry: ConvGeometry) -> bool:
    """A 1x1 convolution with stride 1 and no padding: the rows are x itself, no copy needed."""
    return geometry.kernel_size == (1, 1) and geometry.stride == (1, 1) and geometry.padding == (0, 0)


def _images_per_chunk(array: Any, geometry: ConvGeometry, out_hw: Pair) -> int:
    """How many images share one row matrix (the whole batch on a GPU): about ``CHUNK_BYTES``
    of rows, but at least ``MIN_CHUNK_ROWS`` output positions, so each GEMM stays large."""
    N, C = geometry.x_shape[0], geometry.x_shape[1]
    if backend.is_cuda_array(array):
        return N
    KH, KW = geometry.kernel_size
    positions = out_hw[0] * out_hw[1]
    per_image = positions * KH * KW * C * array.dtype.itemsize
    enough_rows = -(-MIN_CHUNK_ROWS // max(positions, 1))
    return max(1, min(N, max(CHUNK_BYTES // max(per_image, 1), enough_rows)))


USE_WINOGRAD = True
MIN_WINOGRAD_TILES = 64
MIN_WINOGRAD_CHANNELS = 16
"""Stride-1 3x3 convolutions (forward and backward) by Winograd's F(2x2, 3x3)
(:mod:`minitorch_nndl.kernels.winograd`) when each of its 16 GEMMs gets at least
``MIN_WINOGRAD_TILES`` tiles and both channel counts are at least
``MIN_WINOGRAD_CHANNELS``; False: always im2row + one GEMM.  Measured on 2 cores
(forward + backward + batch norm + ReLU of one layer, ms, im2row vs Winograd): 512 channels
at 4x4 win with 64 tiles per GEMM (32 images: 21.9 vs 19.5) and lose with 32 (16 images:
13.2 vs 14.5); 256 channels at 8x8 win with 128 (16 images: 11.7 vs 9.5).  Inside
``inference_mode()``, where U is made once, 32 tiles break even (3.9 vs 4.1 ms) and 16 lose.
Before the filter transform became one batched matmul (:func:`~minitorch_nndl.kernels.winograd.transform_filter`),
it took 2.6 ms for 512 x 512 filters instead of 0.4, and the bound was 256 tiles.  The
3 -> 64 stem loses (2.6 vs 5.9 ms for 32 images: its transforms cost more than its tiny
GEMM saves), hence the channel bound."""

MIN_WINOGRAD_TILES_PER_THREAD = 256
"""Below this many tiles per thread (the 512-channel 4x4 layers at 32 images on 2 threads: 64),
each thread runs 8 of the 16 GEMMs over the whole batch's tiles instead of all 16 over its
share (:func:`_winograd_by_positions`): twice the rows per GEMM, and each thread packs only
half of U.  Measured on 2 cores (conv + batch norm, ms, split by images vs by positions):
512 channels at 4x4 with 32 images (64 tiles a thread) 4.35 vs 3.88 in evaluation and
20.1 vs 17.1 for training's forward + backward; 256 channels at 8x8 with 16 images (128 tiles)
2.14 vs 2.09 and 9.47 vs 8.86; at 256 tiles a thread within 3% either way, and at 1024
(128 channels, 32 images) the whole batch's V and M outgrow the caches: 0.75-0.87x."""

WINOGRAD_CHUNK_BYTES = 2 * 2**20
WINOGRAD_CHUNK_TILES = 256
"""Winograd's chunks hold about this many bytes of transformed tiles V (and as many of their
products M): two images of ResNet18's 32x32 layer with 64 channels, but at least
``WINOGRAD_CHUNK_TILES`` tiles when the range has them, so each GEMM stays large.  Measured on
one core, 16 such images took 6.9-7.3 ms in chunks of 1 or 2 images, 8.0-8.3 in chunks of 4 and
10 in chunks of 8: the smaller V and M stay in the caches between the transforms and the GEMMs (a
chunk's working set is about 4 MB an image here: two threads' chunks of 2 images fit the 32 MB L3,
not the 1 MB L2s).  Remeasured on 2 threads after the transforms got faster (32 images, inference):
half these bytes was 6% slower at 64 channels and 10% at 128."""

USE_WINOGRAD4 = True
MIN_WINOGRAD4_TILES = 32
WINOGRAD4_CHUNK_BYTES = 5 * 2**18
WINOGRAD4_CHUNK_TILES = 64
"""Where Winograd applies and the batch is split by images, F(4x4, 3x3)
(:mod:`minitorch_nndl.kernels.winograd4`) instead of F(2x2, 3x3) when a thread's share of the
batch gives each of its 36 GEMMs at least ``MIN_WINOGRAD4_TILES`` 4x4 tiles (False: never).
Its chunks hold about ``WINOGRAD4_CHUNK_BYTES`` of transformed tiles V, but at least
``WINOGRAD4_CHUNK_TILES`` tiles.  Measured on 2 cores, two threads each convolving its own
chunks (ms per image, F(4x4) against F(2x2)): 64 channels at 32x32 0.50 vs 0.95 in chunks of 2
images (1 image: 0.65, 4: 0.63), 128 at 16x16 0.36 vs 0.84 in chunks of 4 (2: 0.39, 8: 0.41),
256 at 8x8 0.33 vs 0.48 in chunks of 16 (8: 0.37)."""

CHUNK_BYTES = 2 * 2**20
MIN_CHUNK_ROWS = 1024
"""On the CPU the batch is convolved a chunk of images at a time: about ``CHUNK_BYTES``
of rows (so the row matrix of a chunk stays in the caches and is never the whole
batch's: ResNet18's would be 2.2 GB at batch 128), but at least ``MIN_CHUNK_ROWS``
output positions per GEMM.  The one buffer is reused (:mod:`minitorch_nndl.kernels.workspace`).
Measured on 2 cores with 1 MB of L2 each and a 32 MB L3 (forward + backward, ms, 4 MB and 4096 rows
before): the stride-2 64 -> 128 layer took 12.8 instead of 14.9 for 32 images and 55.5
instead of 68.4 for 128; the other layers changed by less than the noise."""


class Conv2d(Function):
    """y = W_mat @ im2col(x) + b, as (N, C_out, OH, OW).

    dL/dW = dY_mat @ cols^T,  dL/dx = col2im(W_mat^T @ dY_mat),  dL/db = sum_{n,i,j} dY.

    Without groups the computation runs channels-last, which is the same algebra
    transposed: rows = im2row(x) (N*OH*OW, KH*KW*C) and

        Y_rows = rows @ W_rows^T,   dW_rows = dY_rows^T @ rows,   drows = dY_rows @ W_rows,
        dx = row2im(drows),

    where Y_rows (N*OH*OW, C_out) is the output itself with channels-last strides (the
    result is logically NCHW, as its shape says).  The batch is processed a chunk of
    images at a time, and the backward rebuilds each chunk's rows from the saved input
    instead of keeping them all from the forward: one more copy of x, 9x less memory.
    Stride-1 3x3 kernels use Winograd's F(2x2, 3x3) or F(4x4, 3x3) instead, and their backward
    is backpropagation through its transforms and 16 (36) GEMMs (the forward keeps U = G g G^T).
    ``channel_scale`` s (no gradients, see :func:`conv2d_affine`) makes output channel o's
    filters w[o] * s[o] inside the convolution, without a scaled copy of the weights;
    ``residual`` r and ``relu`` (no gradients either) make the result max(y + r, 0), added
    and clamped a chunk at a time while the chunk's output is still in the cache.
    """

    @staticmethod
    def forward(
        ctx: Context,
        x: Any,
        weight: Any,
        bias: Any,
        stride: Pair,
        padding: Pair,
        dilation: Pair,
        groups: int,
        channel_scale: Any = None,
        residual: Any = None,
        relu: bool = False,
    ) -> Any:
        C_out, _, KH, KW = weight.shape
        geometry = ConvGeometry(x.shape, (KH, KW), stride, padding, dilation, groups)
        fused = channel_scale is not None or residual is not None or relu
        if fused and (ctx.needs_input_grad or groups != 1):
            raise RuntimeError(
                "Conv2d: channel_scale, residual and relu are for ungrouped convolutions without gradients"
            )
        plan = None
        if groups == 1:
            epilogue = Epilogue(residual, relu)
            out, saved, plan = Conv2d._forward_rows(x, weight, geometry, bias, channel_scale, epilogue)
            bias = None  # added by _forward_rows
        else:
            out, saved = Conv2d._forward_grouped(x, weight, geometry)
        if ctx.needs_input_grad:
            ctx.save_for_backward(saved if ctx.needs_input_grad[1] else None, weight)
            ctx.geometry = geometry
            ctx.winograd = plan.winograd if plan is not None else None  # the backward takes the same kernel
            ctx.winograd_filters = plan.filters if ctx.winograd and ctx.needs_input_grad[0] else None
        if bias is not None:
            out += bias.reshape(1, C_out, 1, 1)
        return out

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        saved, weight = ctx.saved_tensors
        geometry = ctx.geometry
        needs = ctx.needs_input_grad
        db = grad.sum(axis=(0, 2, 3)) if needs[2] else None
        if not (needs[0] or needs[1]):
            return None, None, db
        if ctx.winograd:
            dx, dw = Conv2d._backward_winograd(ctx.winograd, saved, ctx.winograd_filters, grad, geometry, needs[:2])
        elif geometry.groups == 1:
            dx, dw = Conv2d._backward_rows(saved, weight, grad, geometry, needs[:2])
        else:
            dx, dw = Conv2d._backward_grouped(saved, weight, grad, geometry, needs[:2])
        return dx, dw, db

    # ------------------------------------------------------------ channels-last, groups == 1

    @staticmethod
    def _forward_rows(
        x: Any,
        weight: Any,
        geometry: ConvGeometry,
        bias: Any = None,
        channel_scale: Any = None,
        epilogue: Epilogue | None = None,
    ) -> tuple[Any, Any, Any]:
        """Y_rows = im2row(x) @ W_rows^T + b (or Winograd), a chunk of images at a time; with a
        ``channel_scale`` s, the filters of output channel o are w[o] * s[o]; an ``epilogue``
        runs on each chunk's output.  Returns the output, x channels-last (saved for dL/dw; x itself,
        NCHW, where :func:`_reads_columns` says) and the :class:`ConvPlan` (its Winograd kernel and U)."""
        xp = backend.xp_of(x)
        N = x.shape[0]
        plan = _plan(x, weight, geometry, channel_scale)
        x_rows = xp.ascontiguousarray(x) if plan.columns else _channels_last(x)  # (N, C, H, W) or (N, H, W, C)
        out = xp.empty((N, *plan.out_hw, weight.shape[0]), dtype=x.dtype)
        finish = (epilogue or Epilogue()).finisher()

        def convolve(start: int, stop: int) -> None:  # one chunk: the images start..stop-1
            _convolve_chunk(plan, geometry, x_rows[start:stop], out[start:stop], bias)
            finish(out, start, stop)

        if plan.by_positions:  # few tiles a thread: see the bound
            kernels.winograd.conv3x3(x_rows, plan.filters, geometry.padding, out, bias, lambda i, j: finish(out, i, j))
        else:  # the threads take the chunks in turn (the pool is off by default); at most a thread's share each
            parallel.for_each_chunk(convolve, N, plan.per_chunk, x)
        return out.transpose(0, 3, 1, 2), x_rows, plan

    @staticmethod
    def _backward_rows(x_rows: Any, weight: Any, grad: Any, geometry: ConvGeometry, wants: tuple) -> tuple[Any, Any]:
        """dW_rows = sum over chunks of dY_rows^T @ im2row(x), dx = row2im(dY_rows @ W_rows)."""
        want_dx, want_dw = wants
        xp = backend.xp_of(grad)
        N, C_out, OH, OW = grad.shape
        _, C, H, W = geometry.x_shape
        g_rows = _channels_last(grad).reshape(N * OH * OW, C_out)
        w_rows = _weight_rows(weight)
        dx = xp.empty((N, H, W, C), dtype=grad.dtype) if want_dx else None
        per_chunk = _images_per_chunk(grad, geometry, (OH, OW))
        columns = _reads_columns(grad, geometry)  # as the forward read x (it took no Winograd to get here)

        def backpropagate(first: int, last: int) -> Any:  # returns this range's dW_rows
            dw_part = None  # the first chunk's product, the later chunks' added in place (no zeros:
            for start in range(first, last, per_chunk):  # a fresh zeroed array faults its pages in)
                stop = min(last, start + per_chunk)
                g_chunk = g_rows[start * OH * OW : stop * OH * OW]
                if want_dw:
                    rows = _rows_of(x_rows[start:stop], geometry, (OH, OW), columns)
                    if dw_part is None:
                        dw_part = g_chunk.T @ rows
                    else:
                        product = workspace.scratch("conv.dw", w_rows.shape, grad.dtype, like=grad)
                        dw_part += xp.matmul(g_chunk.T, rows, out=product)
                if want_dx:
                    drows = workspace.scratch("conv.drows", (g_chunk.shape[0], w_rows.shape[1]), grad.dtype, like=grad)
                    _scatter_rows(xp.matmul(g_chunk, w_rows, out=drows), dx[start:stop], geometry)
            return dw_part

        dw = None
        if want_dw:  # the ranges' dW_rows, added in range order
            KH, KW = geometry.kernel_size
            dw_rows = parallel.sum_over_batch_ranges(backpropagate, N, grad)
            if columns:  # columns (c, kh, kw): the weight's own order
                dw = dw_rows.reshape(C_out, C, KH, KW)
            else:
                dw = dw_rows.reshape(C_out, KH, KW, C).transpose(0, 3, 1, 2)
        else:
            parallel.for_batch_ranges(backpropagate, N, grad)
        return (None if dx is None else dx.transpose(0, 3, 1, 2)), dw

    @staticmethod
    def _backward_winograd(
        kernel: Any, x_rows: Any, filters: Any, grad: Any, geometry: ConvGeometry, wants: tuple
    ) -> tuple:
        """Backpropagation through the forward's Winograd ``kernel``, F(2x2, 3x3) or F(4x4, 3x3)
        (:func:`minitorch_nndl.kernels.winograd.conv3x3_backward`, :mod:`~minitorch_nndl.kernels.winograd4`),
        a chunk of images at a time: dx from dM @ U^T, dU = the sum over chunks of dM^T @ V,
        and dw = G^T dU G at the end of each thread's range."""
        want_dx, want_dw = wants
        xp = backend.xp_of(grad)
        N, C_out, OH, OW = grad.shape
        _, C, H, W = geometry.x_shape
        g_images = _channels_last(grad)  # (N, OH, OW, C_out)
        dx = xp.empty((N, H, W, C), dtype=grad.dtype) if want_dx else None
        per_chunk = _winograd_images_per_chunk(grad, N, (OH, OW), max(C, C_out), kernel)

        def backpropagate(first: int, last: int) -> Any:  # returns this range's dw
            du_part = None
            for start in range(first, last, per_chunk):
                stop = min(last, start + per_chunk)
                du_part = kernel.conv3x3_backward(
                    g_images[start:stop],
                    geometry.padding,
                    filters=filters if want_dx else None,
                    dx=dx[start:stop] if want_dx else None,
                    x=x_rows[start:stop] if want_dw else None,
                    dU=du_part,
                )
            return kernel.filter_gradient(du_part) if want_dw else None  # G^T dU G, in this thread

        dw = None
        images = _images_per_thread(grad, N)
        # F(2x2, 3x3) with few tiles a thread: the whole batch in one call, as the forward chose
        if kernel is kernels.winograd and _winograd_by_positions(grad, images, (OH, OW)):
            du = kernels.winograd.conv3x3_backward(
                g_images, geometry.padding, filters if want_dx else None, dx, x_rows if want_dw else None
            )
            dw = kernels.winograd.filter_gradient(du) if want_dw else None
        elif want_dw:  # the ranges' dw, added in range order
            dw = parallel.sum_over_batch_ranges(backpropagate, N, grad)
        else:
            parallel.for_batch_ranges(backpropagate, N, grad)
        return (None if dx is None else dx.transpose(0, 3, 1, 2)), dw

    # ------------------------------------------------------------ grouped: im2col + batched GEMM

    @staticmethod
    def _forward_grouped(x: Any, weight: Any, geometry: ConvGeometry) -> tuple[Any, Any]:
        """Y = W_groups @ cols_groups (one matmul batched over the groups); saves the columns."""
        xp = backend.xp_of(x)
        N = x.shape[0]
        C_out = weight.shape[0]
        G = geometry.groups
        OH, OW = _output_hw(geometry)
        _, kernel_size, stride, padding, dilation, _ = geometry
        cols = kernels.im2col(x, kernel_size, stride, padding, dilation)  # (C*KH*KW, N*OH*OW)
        w_groups = weight.reshape(G, C_out // G, -1)  # (G, C_out/G, C/G*KH*KW)
        out = xp.matmul(w_groups, cols.reshape(G, -1, cols.shape[1]))  # rows of cols are group-major
        out = out.reshape(C_out, N, OH, OW).transpose(1, 0, 2, 3)  # an NCHW view
        return xp.ascontiguousarray(out), cols

    @staticmethod
    def _backward_grouped(cols: Any, weight: Any, grad: Any, geometry: ConvGeometry, wants: tuple) -> tuple[Any, Any]:
        """dW_groups = dY_groups @ cols_groups^T, dx = col2im(W_groups^T @ dY_groups)."""
        want_dx, want_dw = wants
        xp = backend.xp_of(grad)
        N, C_out, OH, OW = grad.shape
        G = geometry.groups
        # dY as a (C_out, N*OH*OW) matrix: the same layout as the forward product.
        g_mat = xp.ascontiguousarray(grad.reshape(N, C_out, OH * OW).transpose(1, 0, 2)).reshape(C_out, -1)
        g_groups = g_mat.reshape(G, C_out // G, -1)
        dx = dw = None
        if want_dw:
            cols_groups = cols.reshape(G, -1, cols.shape[1])
            dw = xp.matmul(g_groups, cols_groups.transpose(0, 2, 1)).reshape(weight.shape)
        if want_dx:
            w_groups = weight.reshape(G, C_out // G, -1)
            dcols = xp.matmul(w_groups.transpose(0, 2, 1), g_groups).reshape(-1, g_mat.shape[1])
            x_shape, kernel_size, stride, padding, dilation, _ = geometry
            dx = kernels.col2im(dcols, x_shape, kernel_size, stride, padding, dilation)
        return dx, dw


class ConvPlan(NamedTuple):
    """How a convolution's forward runs on this input (:func:`_plan`): the route (a Winograd kernel,
    im2col's columns, else im2row), the filters that route multiplies by, the output size, how many
    images a chunk holds and whether Winograd's GEMMs are split by position instead of by images."""

    winograd: Any  # the module, kernels.winograd (F(2x2, 3x3)) or kernels.winograd4 (F(4x4, 3x3)); or None
    columns: bool
    filters: Any
    out_hw: Pair
    per_chunk: int
    by_positions: bool


def _plan(like: Any, weight: Any, geometry: ConvGeometry, channel_scale: Any = None) -> ConvPlan:
    """The plan of an ungrouped convolution of an input of shape ``geometry.x_shape`` (``like``: an
    array of its backend and dtype); with a ``channel_scale`` s, output channel o's filters are
    w[o] * s[o].  The filters are made once per ``inference_mode()`` block, on every call otherwise."""
    xp = backend.xp_of(like)
    N, C = geometry.x_shape[:2]
    C_out = weight.shape[0]
    out_hw = _output_hw(geometry)
    images = _images_per_thread(like, N)
    winograd = None
    by_positions = False
    if _winograd_applies(geometry, geometry.padding, images, out_hw, weight.shape[:2]):
        by_positions = _winograd_by_positions(like, images, out_hw)
        larger = _winograd4_applies(like, N, images, out_hw, by_positions)
        winograd = kernels.winograd4 if larger else kernels.winograd
    columns = not winograd and _reads_columns(like, geometry)  # few input channels: see _reads_columns
    if winograd:
        per_chunk = _winograd_images_per_chunk(like, N, out_hw, C, winograd)
    else:
        per_chunk = _images_per_chunk(like, geometry, out_hw)

    def make_filters() -> Any:  # Winograd's U, or W_rows^T (either with the channel scale in it)
        if winograd:
            # each U[a, b] a transposed view; copied contiguous when made once (inference mode:
            # the 16 GEMMs V @ U[a, b] then ran 6% (64 channels) to 20% (512) faster, measured)
            # and when the GEMMs go through the small-matrix kernels, which want it so (64 channels)
            U = winograd.transform_filter(weight, channel_scale)
            small = kernels.winograd.small_gemm_rows(weight, U.shape[1] * U.shape[2])
            return xp.ascontiguousarray(U) if prepares(weight) or small else U
        rows = xp.ascontiguousarray(weight).reshape(C_out, -1) if columns else _weight_rows(weight)
        rows = rows if channel_scale is None else rows * channel_scale.reshape(C_out, 1)
        # W_rows^T, the GEMM's right operand: a transposed view, or made contiguous when it is made
        # once (inference mode): OpenBLAS runs rows @ (K, C_out) a few % faster than rows @ view
        return xp.ascontiguousarray(rows.T) if prepares(weight) else rows.T

    # made once per inference_mode() block (and per kind), on every call otherwise
    kind = winograd.__name__ if winograd else None
    filters = prepared(
        ("conv2d.filters", id(weight), id(channel_scale), kind, columns), (weight, channel_scale), make_filters
    )
    return ConvPlan(winograd, columns, filters, out_hw, min(per_chunk, images), by_positions)


def _convolve_chunk(plan: ConvPlan, geometry: ConvGeometry, x_chunk: Any, out_chunk: Any, bias: Any = None) -> None:
    """One chunk of images through the ``plan``: ``x_chunk`` channels-last (NCHW with
    ``plan.columns``), into the contiguous channels-last ``out_chunk`` (n, OH, OW, C_out), + ``bias``."""
    if plan.winograd:
        plan.winograd.conv3x3(x_chunk, plan.filters, geometry.padding, out_chunk, bias)
        return
    rows = _rows_of(x_chunk, geometry, plan.out_hw, plan.columns)
    out_rows = out_chunk.reshape(-1, out_chunk.shape[-1])
    backend.xp_of(out_chunk).matmul(rows, plan.filters, out=out_rows)
    if bias is not None:
        out_rows += bias


def _tiles_per_image(out_hw: Pair) -> int:
    """F(2x2, 3x3)'s 2x2 output tiles per image (an odd size's last row or column half outside)."""
    return ((out_hw[0] + 1) // 2) * ((out_hw[1] + 1) // 2)


def _winograd_applies(geometry: ConvGeometry, padding: Pair, images: int, out_hw: Pair, channels: Pair) -> bool:
    """Winograd for this (ungrouped) convolution with this padding: a stride-1 3x3 kernel,
    padding 0..2, at least ``MIN_WINOGRAD_TILES`` tiles in each of its
    16 GEMMs when ``images`` images go through at a time (smaller GEMMs run too far below the BLAS's peak),
    and at least ``MIN_WINOGRAD_CHANNELS`` of each of ``channels`` (C_out, C_in): with fewer,
    the tile transforms cost more than the multiplications they save."""
    _, kernel_size, stride, _, dilation, _ = geometry
    tiles = images * _tiles_per_image(out_hw)
    return (
        USE_WINOGRAD
        and kernels.winograd.applies(kernel_size, stride, dilation)
        and 0 <= min(padding) <= max(padding) <= 2
        and tiles >= MIN_WINOGRAD_TILES
        and min(channels) >= MIN_WINOGRAD_CHANNELS
    )


def _winograd_by_positions(array: Any, images: int, out_hw: Pair) -> bool:
    """Whether the threads split a Winograd convolution's 16 GEMMs by position (a, b), each
    GEMM over the whole batch's tiles, instead of splitting the batch: on the CPU with more
    than one thread, when a thread's ``images`` would give each GEMM fewer than
    ``MIN_WINOGRAD_TILES_PER_THREAD`` tiles."""
    if backend.is_cuda_array(array) or parallel.num_threads() == 1:
        return False
    return images * _tiles_per_image(out_hw) < MIN_WINOGRAD_TILES_PER_THREAD


def _winograd4_applies(array: Any, N: int, images: int, out_hw: Pair, by_positions: bool) -> bool:
    """Whether a convolution Winograd computes takes F(4x4, 3x3) (:mod:`~minitorch_nndl.kernels.winograd4`)
    instead of F(2x2, 3x3): on the CPU, in float32 or float64 (its larger constants cost float16
    12x F(2x2)'s error, measured), where the batch of ``N`` is split by images (not by position)
    and every thread gets one (F(4x4) convolves a chunk in one thread; F(2x2) splits a lone image's
    GEMMs), when a thread's ``images`` give each of its 36 GEMMs at least ``MIN_WINOGRAD4_TILES`` tiles."""
    if not USE_WINOGRAD4 or by_positions or backend.is_cuda_array(array) or array.dtype.itemsize < 4:
        return False
    return N >= parallel.num_threads() and images * _tiles4_per_image(out_hw) >= MIN_WINOGRAD4_TILES


def _tiles4_per_image(out_hw: Pair) -> int:
    """F(4x4, 3x3)'s 4x4 output tiles per image (the last row or column partly outside an odd size)."""
    TH, TW = kernels.winograd4.tiles_of(out_hw)
    return TH * TW


def _winograd_images_per_chunk(array: Any, N: int, out_hw: Pair, channels: int, kernel: Any) -> int:
    """How many images one call of the Winograd ``kernel`` transforms (the whole batch on a GPU):
    about ``WINOGRAD_CHUNK_BYTES`` (F(4x4, 3x3): ``WINOGRAD4_CHUNK_BYTES``) of transformed input
    tiles V (16 values per tile and input channel; F(4x4): 36), but at least
    ``WINOGRAD_CHUNK_TILES`` (``WINOGRAD4_CHUNK_TILES``) tiles, so each GEMM stays large."""
    if backend.is_cuda_array(array):
        return N
    if kernel is kernels.winograd4:
        tiles, positions = _tiles4_per_image(out_hw), kernels.winograd4.POSITIONS
        chunk_bytes, min_tiles = WINOGRAD4_CHUNK_BYTES, WINOGRAD4_CHUNK_TILES
    else:
        tiles, positions = _tiles_per_image(out_hw), 16
        chunk_bytes, min_tiles = WINOGRAD_CHUNK_BYTES, WINOGRAD_CHUNK_TILES
    per_image = positions * tiles * channels * array.dtype.itemsize
    enough_tiles = -(-min_tiles // tiles)
    return max(1, min(N, max(chunk_bytes // per_image, enough_tiles)))


def _images_per_thread(array: Any, N: int) -> int:
    """How many of the N images one thread's range of the batch holds (all of them on a GPU)."""
    threads = 1 if backend.is_cuda_array(array) else parallel.num_threads()
    return -(-N // threads)


def _output_hw(geometry: ConvGeometry) -> Pair:
    x_shape, (KH, KW), stride, padding, dilation, _ = geometry
    return (
        kernels.conv_output_size(x_shape[2], KH, stride[0], padding[0], dilation[0]),
        kernels.conv_output_size(x_shape[3], KW, stride[1], padding[1], dilation[1]),
    )


MAX_COLUMN_CHANNELS = 3
"""Convolutions of at most this many input channels (the RGB stem) read their input as im2col
does, from NCHW, instead of as im2row: with 3 channels every copy of im2row moves runs of 3
values, while im2col's runs are whole rows of the image.  The GEMM takes the (C*KH*KW, n*OH*OW)
column matrix transposed (a view) and still writes the output channels-last.  Measured for the
3 -> 64 stem, 16 images at 32x32 on one core: 0.46 ms for columns + GEMM, 0.96 for the NHWC copy,
im2row and GEMM."""


def _reads_columns(array: Any, geometry: ConvGeometry) -> bool:
    """Whether an ungrouped, non-pointwise convolution of NumPy arrays reads its input through
    im2col's columns (``MAX_COLUMN_CHANNELS``); the forward and the backward ask the same."""
    C = geometry.x_shape[1]
    few = C <= MAX_COLUMN_CHANNELS and geometry.groups == 1 and not _is_pointwise(geometry)
    return few and not backend.is_cuda_array(array)


def _rows_of(x_rows: Any, geometry: ConvGeometry, out_hw: Pair, columns: bool = False) -> Any:
    """im2row of a chunk of channels-last images into the reused workspace (x itself for a
    pointwise conv), the images split over the threads of :mod:`minitorch_nndl.kernels.parallel`.
    With ``columns`` the chunk is NCHW and the result im2col's matrix transposed: one row per
    output position, its columns ordered (c, kh, kw) (a view of a fresh array)."""
    if columns:
        _, kernel_size, stride, padding, dilation, _ = geometry
        return kernels.im2col(x_rows, kernel_size, stride, padding, dilation).T
    n, H, W, C = x_rows.shape
    if _is_pointwise(geometry):
        return x_rows.reshape(n * H * W, C)
    _, kernel_size, stride, padding, dilation, _ = geometry
    per_image = out_hw[0] * out_hw[1]
    shape = (n * per_image, kernel_size[0] * kernel_size[1] * C)
    # with padding on the CPU: a buffer kept per geometry whose padding entries stay zero (im2row
    # then only copies); otherwise (a GPU, where fresh zeros would cost a pass) the one scratch buffer
    padding_is_zero = any(padding) and not backend.is_cuda_array(x_rows)
    if padding_is_zero:
        name = f"conv.rows {kernel_size} {stride} {padding} {dilation} {H}x{W}"
        rows = workspace.zeroed(name, shape, x_rows.dtype, like=x_rows)
    else:
        rows = workspace.scratch("conv.rows", shape, x_rows.dtype, like=x_rows)

    def fill(start: int, stop: int) -> None:
        target = rows[start * per_image : stop * per_image]
        kernels.im2row(x_rows[start:stop], kernel_size, stride, padding, dilation, target, padding_is_zero)

    parallel.for_batch_ranges(fill, n, x_rows)
    return rows


def _scatter_rows(drows: Any, dx_rows: Any, geometry: ConvGeometry) -> None:
    """row2im of a chunk's row gradients into its slice of dx (channels-last), split over threads."""
    if _is_pointwise(geometry):
        dx_rows[...] = drows.reshape(dx_rows.shape)
        return
    _, kernel_size, stride, padding, dilation, _ = geometry
    per_image = drows.shape[0] // dx_rows.shape[0]

    def scatter(start: int, stop: int) -> None:
        source = drows[start * per_image : stop * per_image]
        target = dx_rows[start:stop]
        kernels.row2im(source, target.shape, kernel_size, stride, padding, dilation, out=target)

    parallel.for_batch_ranges(scatter, dx_rows.shape[0], drows)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in/groups, KH, KW).

    ``stride``, ``padding`` (zeros on both sides) and ``dilation`` are ints or
    (height, width) pairs.  The output has shape (N, C_out, OH, OW) with
    OH = floor((H + 2*pad - dilation*(KH-1) - 1) / stride) + 1 (and the same for OW).
    """
    stride, padding, dilation = _checked_arguments("conv2d", x, weight, bias, stride, padding, dilation, groups)
    return Conv2d.apply(x, weight, bias, stride, padding, dilation, groups)


def conv2d_affine(
    x: Tensor,
    weight: Tensor,
    scale: Tensor,
    shift: Tensor,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    residual: Tensor | None = None,
    relu: bool = False,
) -> Tensor:
    """``conv2d(x, weight) * scale + shift`` per output channel (``scale``, ``shift``: (C_out,)),
    computed as one convolution: the scale goes into the filters (im2row's W_rows, Winograd's U)
    and the shift is the bias; then ``+ residual`` (a Tensor of the output's shape) and ``relu``
    when given, applied to each chunk of the output as it is made.  For evaluation: it records no
    graph, so no gradient flows back (a batch norm in evaluation mode is such an affine map, and a
    residual block ends in relu(bn(conv(x)) + shortcut), see :func:`minitorch_nndl.nn.conv_bn`)."""
    op = "conv2d_affine"
    stride, padding, dilation = _checked_arguments(op, x, weight, shift, stride, padding, dilation, 1)
    _check_scale(op, scale, shift, x.dtype)
    if residual is not None:
        expected = (x.shape[0], weight.shape[0]) + _output_hw(
            ConvGeometry(x.shape, weight.shape[2:], stride, padding, dilation, 1)
        )
        if not isinstance(residual, Tensor) or residual.shape != expected or residual.dtype != x.dtype:
            given = f"{residual.shape} {residual.dtype}" if isinstance(residual, Tensor) else type(residual).__name__
            raise ValueError(f"{op}: residual must be a {x.dtype} Tensor of the output's shape {expected}, got {given}")
        if residual.device != x.device:
            raise RuntimeError(f"{op}: residual is on {residual.device}, the input on {x.device}")
    with no_grad():
        return Conv2d.apply(x, weight, shift, stride, padding, dilation, 1, scale, residual, bool(relu))


class AffineConv(NamedTuple):
    """One convolution of :func:`conv2d_affine_chain`: ``conv2d(x, weight) * scale + shift`` per
    output channel (``scale``, ``shift``: (C_out,) Tensors), with its geometry."""

    weight: Tensor
    scale: Tensor
    shift: Tensor
    stride: int | Pair = 1
    padding: int | Pair = 0
    dilation: int | Pair = 1


class AffineBlock(NamedTuple):
    """One residual block of :func:`conv2d_affine_chain`: ``relu(a_k(... relu(a_1(x)) ...) + s(x))``
    with its ``convs`` a_i and its ``shortcut`` s (an :class:`AffineConv`, or None: the identity)."""

    convs: Sequence[AffineConv]
    shortcut: AffineConv | None = None


def conv2d_affine_chain(x: Tensor, blocks: Sequence[AffineBlock]) -> Tensor:
    """Residual blocks one after the other, as in evaluation: each :class:`AffineBlock` is
    ``relu(a_k(... relu(a_2(relu(a_1(x)))) ...) + s(x))``, every a_i an :class:`AffineConv` (a
    convolution with its batch norm folded in, see :func:`conv2d_affine`) and s its shortcut (or
    the identity).  Like :func:`conv2d_affine` it records no graph.

    On the CPU it runs depth first, a chunk of images at a time: each chunk goes through every
    convolution of every block (and the shortcuts) before the next chunk starts, so the
    activations between them, a chunk's (two 32x32x64 images: 0.5 MB), are still in the cache when
    the next convolution reads them, instead of a whole batch's (8 MB at batch 32) written to
    memory and read back, and the threads meet once for all the blocks instead of once per
    convolution.  Measured on 2 cores, alternating the orders in one process (ResNet18-CIFAR's
    evaluation, 2 threads): one chain per block 1-2% faster at batch 32 than the convolutions
    one after the other (ResNet50 3%); one chain per stage of blocks (``layer1`` ... ``layer4``)
    another 1-1.5% at batch 32 and 2-3% at batch 128 (150 and 60 rounds: shorter runs of the
    same comparison swung by +-3%).  Where a convolution would not run in chunks of images (a
    GPU, Winograd's GEMMs split by position, an input read through im2col's columns) its block is the
    :func:`conv2d_affine` calls one after the other.
    """
    op = "conv2d_affine_chain"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: x must be a Tensor, got {type(x).__name__}")
    if len(blocks) == 0:
        raise ValueError(f"{op}: needs at least one block")
    shape = x.shape
    links = []  # per block: [(conv, geometry) of its convs..., then its shortcut's when it has one]
    for b, block in enumerate(blocks):
        block_links, shape = _checked_block(f"{op} blocks[{b}]", block, shape, x.dtype)
        links.append(block_links)
    with no_grad():
        plans = [_chain_plans(x.data, block_links) for block_links in links]
        if all(plan is not None for plan in plans):
            return Tensor._wrap(_chain_in_chunks(x.data, blocks, links, plans))
        out = x
        for block, block_links, block_plans in zip(blocks, links, plans):
            if block_plans is not None:
                out = Tensor._wrap(_chain_in_chunks(out.data, [block], [block_links], [block_plans]))
                continue
            block_input = out  # not in chunks: one convolution after the other
            for conv in block.convs[:-1]:
                out = conv2d_affine(out, *conv, relu=True)
            residual = block_input if block.shortcut is None else conv2d_affine(block_input, *block.shortcut)
            out = conv2d_affine(out, *block.convs[-1], residual=residual, relu=True)
        return out


def _checked_block(op: str, block: AffineBlock, x_shape: tuple, dtype: Any) -> tuple[list, tuple]:
    """Raise a clear error for a bad block of a chain; returns its (conv, geometry) links for an input
    of ``x_shape`` (the shortcut's last) and the block's output shape."""
    if not isinstance(block, AffineBlock):
        raise TypeError(f"{op}: expected an AffineBlock, got {type(block).__name__}")
    if len(block.convs) == 0:
        raise ValueError(f"{op}: needs at least one convolution in convs")
    links = []
    shape = x_shape
    for k, conv in enumerate(block.convs):
        links.append((conv, _checked_link(f"{op}.convs[{k}]", conv, shape, dtype)))
        shape = (shape[0], conv.weight.shape[0], *_output_hw(links[-1][1]))
    if block.shortcut is None:
        if tuple(x_shape) != shape:
            raise ValueError(
                f"{op}: the identity shortcut needs an input {tuple(x_shape)} of the output's shape {shape}"
            )
        return links, shape
    cut = _checked_link(f"{op}.shortcut", block.shortcut, x_shape, dtype)
    cut_shape = (x_shape[0], block.shortcut.weight.shape[0], *_output_hw(cut))
    if cut_shape != shape:
        raise ValueError(f"{op}: the shortcut's output {cut_shape} differs from the output's shape {shape}")
    return [*links, (block.shortcut, cut)], shape


def _checked_link(op: str, conv: AffineConv, x_shape: tuple, dtype: Any) -> ConvGeometry:
    """Raise a clear error for a bad link of a chain; returns its geometry for an input of ``x_shape``."""
    if not isinstance(conv, AffineConv):
        raise TypeError(f"{op}: expected an AffineConv, got {type(conv).__name__}")
    stride, padding, dilation = _checked_geometry(op, x_shape, dtype, conv.weight, conv.shift, *conv[3:], 1)
    _check_scale(op, conv.scale, conv.shift, dtype)
    return ConvGeometry(tuple(x_shape), conv.weight.shape[2:], stride, padding, dilation, 1)


def _check_scale(op: str, scale: Any, shift: Tensor, dtype: Any) -> None:
    """Raise a clear error unless ``scale`` is a Tensor of ``shift``'s shape and the input's ``dtype``."""
    if not isinstance(scale, Tensor) or scale.shape != shift.shape or scale.dtype != dtype:
        given = f"{scale.shape} {scale.dtype}" if isinstance(scale, Tensor) else type(scale).__name__
        raise ValueError(f"{op}: scale must be a Tensor like shift ({shift.shape} {shift.dtype}), got {given}")


def _chain_plans(x: Any, links: list[tuple[AffineConv, ConvGeometry]]) -> list[ConvPlan] | None:
    """Every link's plan, or None where the chain does not run in chunks of images: CuPy arrays,
    a link whose Winograd GEMMs go by position or that reads im2col's columns."""
    if not isinstance(x, np.ndarray) or not all(isinstance(conv.weight.data, np.ndarray) for conv, _ in links):
        return None
    plans = [_plan(x, conv.weight.data, geometry, conv.scale.data) for conv, geometry in links]
    return None if any(plan.by_positions or plan.columns for plan in plans) else plans


def _chain_in_chunks(x: Any, blocks: Sequence[AffineBlock], links: list, plans: list) -> Any:
    """The blocks on NumPy arrays, every chunk of images through all of them in one thread (``links``
    and ``plans`` per block, the shortcut's last where it has one); the output (N, C_out, OH, OW)
    with channels-last strides."""
    x_rows = _channels_last(x)
    last_plan = plans[-1][len(blocks[-1].convs) - 1]
    out = np.empty((x.shape[0], *last_plan.out_hw, blocks[-1].convs[-1].weight.shape[0]), dtype=x.dtype)

    def through_the_blocks(start: int, stop: int) -> None:
        h = x_rows[start:stop]
        for b, (block, block_links, block_plans) in enumerate(zip(blocks, links, plans)):
            block_input, count = h, len(block.convs)
            for k, ((conv, geometry), plan) in enumerate(zip(block_links[:count], block_plans)):
                shape = (stop - start, *plan.out_hw, conv.weight.shape[0])
                final = b == len(blocks) - 1 and k == count - 1
                target = out[start:stop] if final else workspace.scratch(f"conv.chain.{b % 2}.{k}", shape, x.dtype)
                _convolve_chunk(plan, geometry, h, target, conv.shift.data)
                if k < count - 1:
                    kernels.arrays.relu_into(target, target)
                h = target
            if block.shortcut is None:
                h += block_input
            else:  # the shortcut's chunk, made here too, and added
                (conv, geometry), plan = block_links[-1], block_plans[-1]
                residual = workspace.scratch("conv.chain.shortcut", h.shape, x.dtype)
                _convolve_chunk(plan, geometry, block_input, residual, conv.shift.data)
                h += residual
            kernels.arrays.relu_into(h, h)

    per_chunk = min(plan.per_chunk for block_plans in plans for plan in block_plans)
    parallel.for_each_chunk(through_the_blocks, x.shape[0], per_chunk, x)
    return out.transpose(0, 3, 1, 2)


def _checked_arguments(
    op: str, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any, dilation: Any, groups: int
) -> tuple[Pair, Pair, Pair]:
    """Raise a clear error for any bad argument of a convolution; returns (stride, padding, dilation) as pairs."""
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: x and weight must be Tensors, got {type(x).__name__} and {type(weight).__name__}")
    return _checked_geometry(op, x.shape, x.dtype, weight, bias, stride, padding, dilation, groups)


def _checked_geometry(
    op: str,
    x_shape: tuple,
    dtype: Any,
    weight: Tensor,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
) -> tuple[Pair, Pair, Pair]:
    """:func:`_checked_arguments` for an input of ``x_shape`` and ``dtype`` (inside a chain there is no Tensor)."""
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x_shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight (C_out, C_in/groups, KH, KW), got shape {weight.shape}")
    stride = pair(stride, "stride", op, minimum=1)
    padding = pair(padding, "padding", op, minimum=0)
    dilation = pair(dilation, "dilation", op, minimum=1)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    N, C, H, W = x_shape
    C_out, C_per_group, KH, KW = weight.shape
    if C % groups or C_out % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide both the input channels ({C}, input shape {x_shape}) "
            f"and the output channels ({C_out}, weight shape {weight.shape})"
        )
    if C_per_group * groups != C:
        raise ValueError(
            f"{op}: input shape {x_shape} has {C} channels, but weight shape {weight.shape} with groups={groups} "
            f"expects {C_per_group * groups} (weight.shape[1] * groups)"
        )
    if not backend.is_floating(dtype) or dtype != weight.dtype:
        raise TypeError(f"{op}: input and weight must have the same floating dtype, got {dtype} and {weight.dtype}")
    if bias is not None:
        if not isinstance(bias, Tensor) or bias.shape != (C_out,):
            shape = bias.shape if isinstance(bias, Tensor) else type(bias).__name__
            raise ValueError(f"{op}: bias must be a Tensor of shape ({C_out},) for weight {weight.shape}, got {shape}")
        if bias.dtype != dtype:
            raise TypeError(f"{op}: bias dtype {bias.dtype} differs from the input dtype {dtype}")
    OH = kernels.conv_output_size(H, KH, stride[0], padding[0], dilation[0])
    OW = kernels.conv_output_size(W, KW, stride[1], padding[1], dilation[1])
    if OH <= 0 or OW <= 0:
        raise ValueError(
            f"{op}: output size {OH}x{OW} is not positive for input shape {x_shape}, kernel {KH}x{KW}, "
            f"stride {stride}, padding {padding}, dilation {dilation}"
        )
    return stride, padding, dilation
