"""Winograd's minimal filtering F(2x2, 3x3): a stride-1 3x3 convolution with 2.25x fewer multiplications.

A 3x3 filter g slid over a 4x4 input tile d gives a 2x2 output tile.  Done directly
that is 2*2*9 = 36 multiplications; Winograd (Lavin & Gray 2016) needs 16:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* is elementwise, on 4x4 arrays)

with the constant matrices

    B^T = [[1, 0, -1, 0],     G = [[1,     0,    0   ],     A^T = [[1, 1, -1,  0],
           [0, 1,  1, 0],          [1/2,   1/2,  1/2 ],            [0, 1,  1, -1]]
           [0, -1, 1, 0],          [-1/2,  1/2, -1/2 ],
           [0, 1,  0, -1]]         [0,     0,    1   ]]

(Lavin & Gray's G and A^T with row 2 of G and column 2 of A^T negated: the two flips cancel
in Y, and both rows of A^T become (1, 1, -1) over neighbouring entries, so the output
transform is two calls over stacked pairs per direction instead of four.)

Summed over input channels, the elementwise product becomes 16 independent matrix
products, one per position (a, b) of the 4x4 transformed tile:

    M[a, b] = V[a, b] @ U[a, b],   V[a, b] (tiles, C_in),  U[a, b] (C_in, C_out),

so a convolution is: transform the input tiles (additions only), 16 GEMMs with
2.25x fewer flops than im2col's one GEMM, transform the output tiles (additions
only).  Neighbouring tiles overlap by 2 rows/columns (their outputs do not).

The backward is backpropagation through these same three steps, each one's adjoint
(transposed matrix) in reverse order.  With dY the gradient of the output tiles:

    dM = A dY A^T                     (2x2 -> 4x4 per tile: the output transform, transposed)
    dU[a, b] = dM[a, b]^T @ V[a, b]   (16 GEMMs: the filter gradient in the transformed domain)
    dg = G^T dU G                     (back to 3x3 filters)
    dV[a, b] = dM[a, b] @ U[a, b]^T   (16 GEMMs)
    dd = B dV B^T                     (per tile; overlapping tiles add up where they overlap)

so the weight gradient too costs 2.25x fewer multiplications than im2row's GEMM, and the
input and weight gradients share dM.

The filter transform and its adjoint are small matrix products too: flattened row by
row, G g G^T is K @ g with the Kronecker product K = G (x) G (16 x 9), so the
transforms of all C_out * C_in filter pairs are one batched matmul (and dg = K^T @ dU).

Everything here is channels-last: x (N, H, W, C), the result (N, OH, OW, C_out).
The tile transforms are written as strided slices, so they run on NumPy and CuPy alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from . import parallel, workspace
from .arrays import _as_strided

Pair = tuple[int, int]

FILTER_TRANSFORM = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (-0.5, 0.5, -0.5), (0.0, 0.0, 1.0))
"""G, the 4x3 matrix of the filter transform U = G g G^T (0.5 is exact in binary floats); its
row 2 has the opposite sign of Lavin & Gray's, and OUTPUT_TRANSFORM's column 2 too."""

OUTPUT_TRANSFORM = ((1.0, 1.0, -1.0, 0.0), (0.0, 1.0, 1.0, -1.0))
"""A^T, the 2x4 matrix of the output transform Y = A^T M A."""


def applies(kernel_size: Pair, stride: Pair, dilation: Pair) -> bool:
    """Whether F(2x2, 3x3) computes this convolution: a 3x3 kernel, stride 1, no dilation."""
    return kernel_size == (3, 3) and stride == (1, 1) and dilation == (1, 1)


def filter_transform_matrix() -> np.ndarray:
    """K = G (x) G (16, 9), the Kronecker product: K[4a + b, 3k + l] = G[a, k] G[b, l].

    Flattened row by row, U = G g G^T is K @ g: entry (a, b) of U is
    sum over k, l of G[a, k] g[k, l] G[b, l].  So every filter pair's transform is one
    small matrix product, and all of them together are one batched matmul (the adjoint,
    G^T dU G, is K^T @ dU)."""
    G = np.array(FILTER_TRANSFORM)
    return (G[:, None, :, None] * G[None, :, None, :]).reshape(16, 9)


_matrices: dict[tuple[str, str], Any] = {}


def _filter_matrix(like: Any) -> Any:
    """K of :func:`filter_transform_matrix` in ``like``'s dtype, on its device (made once per
    device and dtype: a CuPy copy from the host would wait for the GPU on every call)."""
    key = (backend.device_of(like), like.dtype.str)
    if key not in _matrices:
        _matrices[key] = backend.asarray(filter_transform_matrix(), dtype=like.dtype, device=key[0])
    return _matrices[key]


def transform_filter(weight: Any, scale: Any = None) -> Any:
    """U (16, C_in, C_out) from weight (C_out, C_in, 3, 3): U[4a+b] = (G g G^T)[a, b] per filter pair
    (times ``scale[o]`` for output channel o when a (C_out,) ``scale`` is given).

    With the filters channels-last, (C_out, 9, C_in) (a view when the weight is stored that
    way, as ``nn.Conv2d`` stores it), that is K @ g[o] for every output channel o: one
    batched matmul, split over threads by output channel.  The result is a (16, C_in, C_out)
    view of a (C_out, 16, C_in) array: each GEMM reads its U[a, b] transposed, at no cost."""
    return transform_filter_by(_filter_matrix(weight), weight, scale)


def transform_filter_by(K: Any, weight: Any, scale: Any = None) -> Any:
    """U (P, C_in, C_out) = K @ g[o] for every output channel o of ``weight`` (C_out, C_in, 3, 3),
    with K (P, 9) the Kronecker product of a Winograd filter transform (P = 16 here, 36 for
    :mod:`.winograd4`), times ``scale[o]`` when given: :func:`transform_filter`'s work."""
    xp = backend.xp_of(weight)
    C_out, C_in = weight.shape[:2]
    positions = K.shape[0]
    g = weight.transpose(0, 2, 3, 1)  # (C_out, 3, 3, C_in)
    U = xp.empty((C_out, positions, C_in), dtype=weight.dtype)

    def transform(i: int, j: int) -> None:
        xp.matmul(K, g[i:j].reshape(j - i, 9, C_in), out=U[i:j])
        if scale is not None:
            U[i:j] *= scale[i:j].reshape(-1, 1, 1)

    parallel.for_batch_ranges(transform, C_out, weight, parallel.MIN_SPLIT_ELEMENTS)  # small ones: one call
    return U.transpose(1, 2, 0)


def filter_gradient(dU: Any) -> Any:
    """dL/dg (C_out, C_in, 3, 3) from dL/dU (16, C_out, C_in): the adjoint of :func:`transform_filter`,
    G^T dU G per filter pair, which is K^T @ dU[:, o] for every output channel o (one batched
    matmul).  The result is a view of a channels-last (C_out, 3, 3, C_in) array, the memory
    order of ``nn.Conv2d``'s weight."""
    return filter_gradient_by(_filter_matrix(dU), dU)


def filter_gradient_by(K: Any, dU: Any) -> Any:
    """dL/dg = K^T @ dU[:, o] for every output channel o of dU (P, C_out, C_in), split over threads
    by output channel: :func:`filter_gradient`'s work, for any K (P, 9)."""
    xp = backend.xp_of(dU)
    C_out, C_in = dU.shape[1:]
    dg = xp.empty((C_out, 9, C_in), dtype=dU.dtype)
    K_T = K.T
    by_output = dU.transpose(1, 0, 2)  # (C_out, P, C_in)

    def gradient(i: int, j: int) -> None:
        xp.matmul(K_T, by_output[i:j], out=dg[i:j])

    parallel.for_batch_ranges(gradient, C_out, dU, parallel.MIN_SPLIT_ELEMENTS)  # small ones: one call
    return dg.reshape(C_out, 3, 3, C_in).transpose(0, 3, 1, 2)


def _padded_input(x: Any, padding: Pair, tiles: Pair) -> Any:
    """x zero-padded to exactly 2*TH + 2 rows and 2*TW + 2 columns, with the columns split by parity:
    (N, 2*TH + 2, 2, TW + 1, C), padded column c at [:, :, c % 2, c // 2].  So every pass over tile
    columns reads runs of TW*C contiguous values instead of C (the even columns of a row are one
    run).  The buffer is kept per geometry (:func:`workspace.zeroed`): only the copy of x
    overwrites it, so the zeros around the copy are written once, not on every call."""
    N, H, W, C = x.shape
    TH, TW = tiles
    ph, pw = padding
    rows, cols = min(H, 2 * TH + 2 - ph), min(W, 2 * TW + 2 - pw)
    name = f"winograd.padded_input.{ph}.{pw}.{rows}.{cols}"  # which part the copy writes
    padded = workspace.zeroed(name, (N, 2 * TH + 2, 2, TW + 1, C), x.dtype, like=x)
    for parity in (0, 1):  # x's columns w with pw + w of this parity, at padded index (pw + w) // 2
        first = (parity - pw) % 2
        count = len(range(first, cols, 2))
        start = (pw + first) // 2
        padded[:, ph : ph + rows, parity, start : start + count] = x[:, :rows, first:cols:2]
    return padded


def _input_tiles(x: Any, padding: Pair, tiles: Pair, out: Any) -> None:
    """V = B^T d B for every 4x4 tile d of the zero-padded x, into out (4, 4, N, TH, TW, C).

    Tile t's rows are padded rows 2t .. 2t + 3, so with the rows paired, (2t, 2t + 1) as
    pairs[:, t], rows (0, 1) of every tile are pairs[:, :TH] and rows (2, 3) pairs[:, 1:].
    B^T's rows 0 and 3, d0 - d2 and d1 - d3, are then one subtraction of the two (rows 1 and 2,
    d1 + d2 and d2 - d1, one call each).  Along the columns the same holds with the padded
    columns split by parity (:func:`_padded_input`): tile u's columns 0..3 are even[u], odd[u],
    even[u + 1], odd[u + 1], each a run of TW*C values for all the tiles of a row.  Measured on
    one core against columns taken two apart (runs of C values): the transform 17% faster at
    64 channels (2 images of 32x32: 0.187 vs 0.226 ms), 12-23% at 128-512."""
    N = x.shape[0]
    TH, TW = tiles
    C = x.shape[3]
    xp = backend.xp_of(x)
    pairs = _padded_input(x, padding, tiles).reshape(N, TH + 1, 2, 2, TW + 1, C)
    vertical = workspace.scratch("winograd.vertical", (4, N, TH, 2, TW + 1, C), x.dtype, like=x)
    xp.subtract(pairs[:, :TH], pairs[:, 1:], out=vertical[0::3].transpose(1, 2, 0, 3, 4, 5))  # rows 0 and 3
    xp.add(pairs[:, :TH, 1], pairs[:, 1:, 0], out=vertical[1])
    xp.subtract(pairs[:, 1:, 0], pairs[:, :TH, 1], out=vertical[2])
    # B along the columns, for the four tile rows a at once
    even, odd = vertical[:, :, :, 0], vertical[:, :, :, 1]  # (4, N, TH, TW + 1, C) each
    xp.subtract(even[..., :TW, :], even[..., 1:, :], out=out[:, 0])
    xp.add(odd[..., :TW, :], even[..., 1:, :], out=out[:, 1])
    xp.subtract(even[..., 1:, :], odd[..., :TW, :], out=out[:, 2])
    xp.subtract(odd[..., :TW, :], odd[..., 1:, :], out=out[:, 3])


def _output_tiles(m: Any, out: Any) -> None:
    """Y = A^T M A for every tile, M (4, 4, N, TH, TW, C_out), into out (N, 2*TH, 2*TW, C_out).

    Both rows of A^T are (1, 1, -1) over three neighbouring entries (row 0 from entry 0, row 1
    from entry 1), so each direction is two calls over stacked pairs: (m0, m1) + (m1, m2),
    then minus (m2, m3)."""
    xp = backend.xp_of(m)
    s = workspace.scratch("winograd.s", (2,) + m.shape[1:], m.dtype, like=m)  # A^T along the rows
    xp.add(m[0:2], m[1:3], out=s)
    xp.subtract(s, m[2:4], out=s)
    # A^T along the columns, for both output rows i at once: out as (N, TH, i, TW, j, C_out)
    N, TH, TW, C_out = m.shape[2:]
    tiles = _tile_view(out, (N, TH, 2, TW, 2, C_out))

    def columns(b: int) -> Any:  # s[i, b + j] for j = 0, 1 as (N, TH, i, TW, j, C_out)
        return s[:, b : b + 2].transpose(2, 3, 0, 4, 1, 5)

    xp.add(columns(0), columns(1), out=tiles)
    xp.subtract(tiles, columns(2), out=tiles)


def _tile_view(out: Any, shape: tuple) -> Any:
    """``out`` (N, m*TH, m*TW, C) as ``shape`` (N, TH, m, TW, m, C), tile (t, u) entry (i, j): a view
    (a reshape when it is contiguous); m = 2 here, 4 for :mod:`.winograd4`."""
    if out.flags.c_contiguous:
        return out.reshape(shape)
    sN, sH, sW, sC = out.strides
    m = shape[2]
    return _as_strided(backend.xp_of(out))(out, shape=shape, strides=(sN, m * sH, sH, m * sW, sW, sC))


SMALL_GEMM_MNK = 100**3
MIN_SMALL_GEMM_ROWS = 128
"""OpenBLAS multiplies matrices of at most M*N*K = 100**3 with its small-matrix kernels, which
skip packing the operands (0.3.31, SkylakeX kernels), and they are fast when the right operand
is a contiguous, untransposed matrix.  That is the 64-channel stage: (rows, 64) @ (64, 64) takes
them up to 244 rows (200 GF/s on one core; 245 rows: 159).  Measured on one core, the 16 GEMMs
of 2 images of 32x32 with 64 channels, (512, 64) @ (64, 64) each: 158 GF/s as one call each,
198 in three blocks of 171 rows; with U a transposed view (training's) 147 as one call, 124 in
blocks, so U is made contiguous first (a copy of 256 KB).  Where fewer than
``MIN_SMALL_GEMM_ROWS`` rows would qualify (61 at 128 channels) the blocks ran slower
(155 against 195 GF/s), and nothing changes."""


def small_gemm_rows(like: Any, other_dims: int) -> int:
    """How many rows (or inner entries) a GEMM whose other two dimensions multiply to ``other_dims``
    may have for OpenBLAS's small-matrix kernels (``SMALL_GEMM_MNK``); 0 where they are not worth
    blocks for: fewer than ``MIN_SMALL_GEMM_ROWS`` would qualify, or ``like`` is a CuPy array."""
    most = SMALL_GEMM_MNK // max(other_dims, 1)
    return 0 if backend.is_cuda_array(like) or most < MIN_SMALL_GEMM_ROWS else most


def _block_length(length: int, most: int) -> int:
    """The length of the fewest equal blocks of at most ``most`` that cover ``length`` (at least 1)."""
    return -(-length // -(-length // most)) if length > most else max(length, 1)


def _products(a: Any, b: Any, out: Any) -> Any:
    """out[p] = a[p] @ b[p] for a stack of positions p (one matmul), on NumPy in blocks of rows
    that OpenBLAS's small-matrix kernels take when K*N is small enough (:func:`small_gemm_rows`),
    with ``b`` made contiguous first (they are slower on a transposed view)."""
    xp = backend.xp_of(a)
    most = small_gemm_rows(a, b.shape[1] * b.shape[2])
    if not most:
        return xp.matmul(a, b, out=out)
    b = xp.ascontiguousarray(b)
    rows = a.shape[1]
    step = _block_length(rows, most)
    for start in range(0, max(rows, 1), step):
        xp.matmul(a[:, start : start + step], b, out=out[:, start : start + step])
    return out


def _summed_products(a: Any, b: Any, out: Any, add: bool) -> Any:
    """out[p] = a[p] @ b[p] (``add``: out[p] += it) for a stack of positions p, where the inner
    dimension K is long (the weight gradient's tiles); on NumPy, when M*N is small, as the sum
    over blocks of K that OpenBLAS's small-matrix kernels take (:func:`small_gemm_rows`).  Measured on
    one core, dU of 2 images at 64 channels, (64, 512) @ (512, 64) sixteen times: 142 GF/s in one
    call each, 194 as three blocks of 171 tiles added up.  At 128 channels blocks of 52 tiles gave
    148 vs 154 GF/s, within the noise: under ``MIN_SMALL_GEMM_ROWS``, so not used."""
    xp = backend.xp_of(a)
    K = a.shape[2]
    most = small_gemm_rows(a, a.shape[1] * b.shape[2])
    step = _block_length(K, most) if most else max(K, 1)
    product = None
    for start in range(0, max(K, 1), step):
        block = (a[:, :, start : start + step], b[:, start : start + step])
        if start == 0 and not add:
            xp.matmul(*block, out=out)
            continue
        if product is None:
            product = workspace.scratch("winograd.dU", out.shape, out.dtype, like=out)
        out += xp.matmul(*block, out=product)
    return out


def _over_positions(gemm: Any, like: Any) -> None:
    """Run ``gemm(a, b)`` for the positions a..b-1 of the 16 (a, b) GEMMs, split over the threads
    (one call inside a thread's share of the batch, and on a GPU)."""
    parallel.for_batch_ranges(gemm, 16, like)


def conv3x3(
    x: Any, filters: Any, padding: Pair, out: Any, bias: Any = None, finish: Callable[[int, int], Any] | None = None
) -> Any:
    """The stride-1 3x3 convolution of channels-last ``x`` (N, H, W, C) with transformed
    ``filters`` U (16, C, C_out) (from :func:`transform_filter`), written into ``out``
    (N, OH, OW, C_out), OH = H + 2*ph - 2, plus ``bias`` (C_out,) when given; ``finish(i, j)``
    runs on out[i:j] right after those images are written.  Returns ``out``.

    Called from a thread's share of the batch (:func:`~minitorch_nndl.kernels.parallel.for_batch_ranges`),
    everything runs in that thread.  Called with the whole batch, the tile transforms are split
    over the threads by images and the 16 GEMMs by position (a, b): each GEMM then has all the
    batch's tiles, which is faster where a thread's share would have few (measured in
    ``ops.conv.MIN_WINOGRAD_TILES_PER_THREAD``).

    The bias costs a quarter of a pass: added to M[1, 1] only, it reaches every output of
    the tile once, because A^T's column 1 is (1, 1) (row 1 of A^T M A is m1 + ..., column 1 too)."""
    N, H, W, C = x.shape
    C_out = filters.shape[2]
    OH, OW = out.shape[1], out.shape[2]
    TH, TW = (OH + 1) // 2, (OW + 1) // 2
    V = workspace.scratch("winograd.V", (4, 4, N, TH, TW, C), x.dtype, like=x)
    parallel.for_batch_ranges(lambda i, j: _input_tiles(x[i:j], padding, (TH, TW), V[:, :, i:j]), N, x)
    V = V.reshape(16, N * TH * TW, C)
    M = workspace.scratch("winograd.M", (16, N * TH * TW, C_out), x.dtype, like=x)
    _over_positions(lambda a, b: _products(V[a:b], filters[a:b], M[a:b]), x)  # the 16 GEMMs
    if bias is not None:
        M[4 * 1 + 1] += bias
    M = M.reshape(4, 4, N, TH, TW, C_out)

    def output_tiles(i: int, j: int) -> None:
        if (2 * TH, 2 * TW) == (OH, OW):
            _output_tiles(M[:, :, i:j], out[i:j])
        else:  # an odd size: the last tile row/column is half outside; compute it whole and crop
            full = workspace.scratch("winograd.full", (j - i, 2 * TH, 2 * TW, C_out), x.dtype, like=x)
            _output_tiles(M[:, :, i:j], full)
            out[i:j] = full[:, :OH, :OW]
        if finish is not None:
            finish(i, j)

    parallel.for_batch_ranges(output_tiles, N, x)
    return out


def _output_tiles_adjoint(grad: Any, tiles: Pair, out: Any) -> None:
    """dM = A dY A^T for every 2x2 tile of ``grad`` (N, OH, OW, C_out), into out (4, 4, N, TH, TW, C_out):
    the adjoint of :func:`_output_tiles`.  With A^T's rows (1, 1, -1, 0) and (0, 1, 1, -1), a
    tile's rows y0, y1 become the four rows y0, y0 + y1, y1 - y0, -y1 (then the same for columns)."""
    xp = backend.xp_of(grad)
    N, OH, OW, C_out = grad.shape
    TH, TW = tiles
    if (2 * TH, 2 * TW) != (OH, OW):  # an odd size: the cropped half tile had no gradient
        full = workspace.scratch("winograd.full", (N, 2 * TH, 2 * TW, C_out), grad.dtype, like=grad)
        full[:, OH:] = 0
        full[:, :, OW:] = 0
        full[:, :OH, :OW] = grad
        grad = full
    y0, y1 = grad[:, 0::2], grad[:, 1::2]  # each (N, TH, 2*TW, C_out)
    rows = workspace.scratch("winograd.s", (4,) + y0.shape, grad.dtype, like=grad)
    rows[0] = y0
    xp.add(y0, y1, out=rows[1])
    xp.subtract(y1, y0, out=rows[2])
    xp.negative(y1, out=rows[3])
    c0, c1 = rows[:, :, :, 0::2], rows[:, :, :, 1::2]  # each (4, N, TH, TW, C_out): all four rows a at once
    out[:, 0] = c0
    xp.add(c0, c1, out=out[:, 1])
    xp.subtract(c1, c0, out=out[:, 2])
    xp.negative(c1, out=out[:, 3])


def _along(array: Any, axis: int, index: Any) -> Any:
    """array[..., index, ...] with ``index`` on ``axis`` (the tile axis of the overlap-adds)."""
    return array[(slice(None),) * axis + (index,)]


def _overlap_add(d: Any, out: Any, axis: int) -> None:
    """Rows d[0..3] of T tiles along ``axis`` of d[k], through B's adjoint, into ``out`` (2*T + 2 along ``axis``).

    B^T's rows (1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1) transposed give a
    tile's input rows d0, d1 - d2 + d3, d1 + d2 - d0, -d3; tile t starts at row 2t, so rows
    2t and 2t + 1 collect rows 0, 1 of tile t and rows 2, 3 of tile t - 1."""
    xp = backend.xp_of(d)
    T = d.shape[axis + 1]

    even, odd = _along(out, axis, slice(0, None, 2)), _along(out, axis, slice(1, None, 2))  # each T + 1 long
    first, rest, last = slice(0, T), slice(1, None), slice(T, T + 1)
    _along(even, axis, first)[...] = d[0]
    _along(even, axis, last)[...] = 0
    _along(even, axis, rest)[...] += d[1]
    _along(even, axis, rest)[...] += d[2]
    _along(even, axis, rest)[...] -= d[0]
    xp.subtract(d[1], d[2], out=_along(odd, axis, first))
    _along(odd, axis, first)[...] += d[3]
    _along(odd, axis, last)[...] = 0
    _along(odd, axis, rest)[...] -= d[3]


def _overlap_add_inside(d: Any, out: Any, axis: int) -> None:
    """:func:`_overlap_add` cropped as padding 1 crops it, for ``out`` exactly 2*T long along ``axis``:
    out row r is padded row r + 1, so out's even rows are the padded odd ones and its odd rows
    the padded even ones after the first; the first and last padded rows are never made."""
    xp = backend.xp_of(d)
    T = d.shape[axis + 1]

    even, odd = _along(out, axis, slice(0, None, 2)), _along(out, axis, slice(1, None, 2))  # each T long
    xp.subtract(d[1], d[2], out=even)  # row 2t: tile t's row 1, d1 - d2 + d3, and tile t - 1's row 3, -d3
    even += d[3]
    _along(even, axis, slice(1, None))[...] -= _along(d[3], axis, slice(0, T - 1))
    xp.add(d[1], d[2], out=odd)  # row 2t + 1: tile t's row 2, d1 + d2 - d0, and tile t + 1's row 0, d0
    odd -= d[0]
    _along(odd, axis, slice(0, T - 1))[...] += _along(d[0], axis, slice(1, None))


def _input_tiles_adjoint(dV: Any, padding: Pair, out: Any) -> None:
    """dx = the tiles B dV B^T added where they overlap, cropped to ``out`` (N, H, W, C):
    the adjoint of :func:`_input_tiles` (dV (4, 4, N, TH, TW, C)).  With padding 1 and even
    sizes (ResNet's), the crop is part of the overlap-add (:func:`_overlap_add_inside`): fewer
    calls, and nothing written only to be thrown away."""
    _, _, N, TH, TW, C = dV.shape
    ph, pw = padding
    H, W = out.shape[1:3]
    if (ph, pw) == (1, 1) and (H, W) == (2 * TH, 2 * TW):
        rows = workspace.scratch("winograd.vertical", (4, N, H, TW, C), dV.dtype, like=dV)
        _overlap_add_inside(dV, rows, axis=2)
        _overlap_add_inside(rows, out, axis=2)
        return
    rows = workspace.scratch("winograd.vertical", (4, N, 2 * TH + 2, TW, C), dV.dtype, like=dV)
    _overlap_add(dV, rows, axis=2)  # along the rows (long contiguous runs), every tile column b at once
    padded = workspace.scratch("winograd.padded", (N, 2 * TH + 2, 2 * TW + 2, C), dV.dtype, like=dV)
    _overlap_add(rows, padded, axis=2)  # and along the columns
    out[...] = padded[:, ph : ph + H, pw : pw + W]


def conv3x3_backward(
    grad: Any, padding: Pair, filters: Any = None, dx: Any = None, x: Any = None, dU: Any = None
) -> Any:
    """The backward of :func:`conv3x3` for a chunk of images, ``grad`` (N, OH, OW, C_out) = dL/dy.

    With ``filters`` U (16, C, C_out) and ``dx`` (N, H, W, C): writes dL/dx into ``dx``.
    With ``x`` (the forward's input): adds dL/dU (16, C_out, C) of this chunk into ``dU``
    and returns it (a fresh array when ``dU`` is None); turn it into the filters'
    gradient with :func:`filter_gradient` once every chunk is in.  Returns None without ``x``.
    Called with the whole batch (not from a thread's share), the tile transforms are split over
    the threads by images and the GEMMs by position, as in :func:`conv3x3`."""
    xp = backend.xp_of(grad)
    N, OH, OW, C_out = grad.shape
    TH, TW = (OH + 1) // 2, (OW + 1) // 2
    tiles = N * TH * TW
    dM = workspace.scratch("winograd.M", (4, 4, N, TH, TW, C_out), grad.dtype, like=grad)
    parallel.for_batch_ranges(lambda i, j: _output_tiles_adjoint(grad[i:j], (TH, TW), dM[:, :, i:j]), N, grad)
    dM = dM.reshape(16, tiles, C_out)
    if dx is not None:
        C = dx.shape[3]
        dV = workspace.scratch("winograd.V", (16, tiles, C), grad.dtype, like=grad)
        _over_positions(lambda a, b: _products(dM[a:b], filters[a:b].transpose(0, 2, 1), dV[a:b]), grad)
        dV = dV.reshape(4, 4, N, TH, TW, C)
        parallel.for_batch_ranges(lambda i, j: _input_tiles_adjoint(dV[:, :, i:j], padding, dx[i:j]), N, grad)
    if x is None:
        return None
    C = x.shape[3]
    V = workspace.scratch("winograd.V", (4, 4, N, TH, TW, C), x.dtype, like=x)
    parallel.for_batch_ranges(lambda i, j: _input_tiles(x[i:j], padding, (TH, TW), V[:, :, i:j]), N, x)
    V = V.reshape(16, tiles, C)
    dM_T = dM.transpose(0, 2, 1)
    if dU is None:
        dU = xp.empty((16, C_out, C), dtype=grad.dtype)
        _over_positions(lambda a, b: _summed_products(dM_T[a:b], V[a:b], dU[a:b], add=False), grad)
        return dU
    return _summed_products(dM_T, V, dU, add=True)


__all__ = [
    "FILTER_TRANSFORM",
    "OUTPUT_TRANSFORM",
    "applies",
    "conv3x3",
    "conv3x3_backward",
    "filter_gradient",
    "filter_gradient_by",
    "filter_transform_matrix",
    "small_gemm_rows",
    "transform_filter",
    "transform_filter_by",
]
