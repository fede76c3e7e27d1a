"""Winograd's F(4x4, 3x3): a stride-1 3x3 convolution with 4x fewer multiplications, by matrix products.

:mod:`.winograd` computes 2x2 output tiles from 4x4 input tiles (16 products for 4 outputs).
With 6x6 input tiles the same idea gives 4x4 output tiles: 36 products for 16 outputs, 2.25
per output instead of F(2x2, 3x3)'s 4 and the direct convolution's 9.  The algebra is the same,

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise, on 6x6 arrays)

with Lavin & Gray's (2016) matrices, the points 0, 1, -1, 2, -2 and infinity:

    B^T = [[4,  0, -5,  0, 1, 0],     G = [[ 1/4,     0,    0  ],     A^T = [[1, 1,  1, 1,  1, 0],
           [0, -4, -4,  1, 1, 0],          [-1/6,  -1/6, -1/6 ],            [0, 1, -1, 2, -2, 0],
           [0,  4, -4, -1, 1, 0],          [-1/6,   1/6, -1/6 ],            [0, 1,  1, 4,  4, 0],
           [0, -2, -1,  2, 1, 0],          [ 1/24, 1/12,  1/6 ],            [0, 1, -1, 8, -8, 1]]
           [0,  2, -1, -2, 1, 0],          [ 1/24, -1/12, 1/6 ],
           [0,  4,  0, -5, 0, 1]]          [ 0,      0,    1   ]]

and, summed over input channels, 36 GEMMs M[a, b] = V[a, b] @ U[a, b], one per position of the
6x6 tile.  Neighbouring input tiles overlap by 2 rows and columns (tile t starts at row 4t).

Where F(2x2, 3x3) writes its transforms as additions of strided slices (every entry of its
matrices is 0 or +-1), here each transform *is* a small matrix product, B^T (6x6) or A^T (4x6)
times the 6 rows (or columns) of every tile at once: one BLAS call per direction, which reads
and writes every value once.  For the products to see plain matrices, the padded input is laid
out with its columns gathered per tile, ``P[n, row, l, u, c]`` = column 4u + l of the padded
image (1.5x the image: the overlap), so that both the 6 rows and the 6 columns of the tiles are
axes with constant strides:

    R[n, t, a]  = B^T @ P[n, 4t : 4t + 6]      rows,    (6, 6) @ (6, 6*TW*C) per tile row
    V[a, :, n, t] = B^T @ R[n, t, a]          columns, (6, 6) @ (6, TW*C)
    M[a, b]     = V[a, b] @ U[a, b]            the 36 GEMMs
    S = A^T @ M,  T = A^T @ S                  (4, 6) @ (6, ...), then scattered into the 4x4 tiles

Measured on 2 cores (Zen 5, 2 threads each convolving its own images, ms per image): F(4x4)
against F(2x2) 0.50 vs 0.95 at 64 channels and 32x32, 0.36 vs 0.84 at 128 and 16x16, 0.33 vs
0.48 at 256 and 8x8.  Both move the data through the caches a few times; F(4x4)'s transformed
tiles are 2.25x the image instead of 4x, and its GEMMs do 0.56x the flops.  The price is
precision: G's entries 1/6, 1/12 and 1/24 and A^T's 8 put float32 results 15-20x further from
the exact convolution than F(2x2)'s (at 64 channels, the largest error over a layer's outputs
1.8e-6 to 6.5e-6 of the output's scale, against 1.1e-7 to 3.4e-7; in float64 1.1e-14 against
6.6e-16), still well inside what training in float32 tolerates and the float32 oracle's 1e-4.

The backward is backpropagation through the same steps, each one's adjoint (the transposed
matrix) in reverse order: dS = A @ dT, dM = A @ dS, dU[a, b] = dM[a, b]^T @ V[a, b],
dV[a, b] = dM[a, b] @ U[a, b]^T, then B @ dV along the columns and the rows, where the tiles'
overlapping rows and columns add up.

Everything is channels-last, x (n, H, W, C) and the result (n, OH, OW, C_out), and each call
convolves one chunk of images in the calling thread (``ops.conv`` splits the batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from . import winograd, workspace
from .arrays import _as_strided
from .winograd import _products, _summed_products, applies, filter_gradient_by, transform_filter_by

Pair = tuple[int, int]

INPUT_TRANSFORM = (
    (4.0, 0.0, -5.0, 0.0, 1.0, 0.0),
    (0.0, -4.0, -4.0, 1.0, 1.0, 0.0),
    (0.0, 4.0, -4.0, -1.0, 1.0, 0.0),
    (0.0, -2.0, -1.0, 2.0, 1.0, 0.0),
    (0.0, 2.0, -1.0, -2.0, 1.0, 0.0),
    (0.0, 4.0, 0.0, -5.0, 0.0, 1.0),
)
"""B^T, the 6x6 matrix of the input transform V = B^T d B."""

FILTER_TRANSFORM = (
    (1 / 4, 0.0, 0.0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0.0, 0.0, 1.0),
)
"""G, the 6x3 matrix of the filter transform U = G g G^T."""

OUTPUT_TRANSFORM = (
    (1.0, 1.0, 1.0, 1.0, 1.0, 0.0),
    (0.0, 1.0, -1.0, 2.0, -2.0, 0.0),
    (0.0, 1.0, 1.0, 4.0, 4.0, 0.0),
    (0.0, 1.0, -1.0, 8.0, -8.0, 1.0),
)
"""A^T, the 4x6 matrix of the output transform Y = A^T M A.  Its column 1 is all ones, so a bias
added to M[1, 1] reaches every output of the tile once."""

TILE = 4
"""Output tile size m of F(m x m, 3x3): the input tiles are m + 2 = 6 wide."""

POSITIONS = (TILE + 2) ** 2
"""36 positions (a, b) of the 6x6 transformed tile: 36 GEMMs per convolution."""


def filter_transform_matrix() -> np.ndarray:
    """K = G (x) G (36, 9), the Kronecker product: K[6a + b, 3k + l] = G[a, k] G[b, l], so that
    the flattened U = G g G^T is K @ g (as :func:`.winograd.filter_transform_matrix`)."""
    G = np.array(FILTER_TRANSFORM)
    return (G[:, None, :, None] * G[None, :, None, :]).reshape(POSITIONS, 9)


_matrices: dict[tuple[str, str, str], Any] = {}


def _matrix(name: str, like: Any) -> Any:
    """One of the constant matrices (``B^T``, ``B``, ``A^T``, ``A``, ``K``) in ``like``'s dtype, on
    its device, contiguous; made once per device and dtype."""
    key = (name, backend.device_of(like), like.dtype.str)
    if key not in _matrices:
        values = {
            "B^T": np.array(INPUT_TRANSFORM),
            "B": np.array(INPUT_TRANSFORM).T,
            "A^T": np.array(OUTPUT_TRANSFORM),
            "A": np.array(OUTPUT_TRANSFORM).T,
            "K": filter_transform_matrix(),
        }[name]
        _matrices[key] = backend.asarray(np.ascontiguousarray(values), dtype=like.dtype, device=key[1])
    return _matrices[key]


def transform_filter(weight: Any, scale: Any = None) -> Any:
    """U (36, C_in, C_out) from weight (C_out, C_in, 3, 3): U[6a+b] = (G g G^T)[a, b] per filter pair
    (times ``scale[o]`` for output channel o when a (C_out,) ``scale`` is given); as
    :func:`.winograd.transform_filter`, one batched matmul K @ g[o] split over threads by output
    channel, and a transposed view."""
    return transform_filter_by(_matrix("K", weight), weight, scale)


def filter_gradient(dU: Any) -> Any:
    """dL/dg (C_out, C_in, 3, 3) from dL/dU (36, C_out, C_in): K^T @ dU[:, o] for every output
    channel o, the adjoint of :func:`transform_filter`; a view of a channels-last array."""
    return filter_gradient_by(_matrix("K", dU), dU)


def tiles_of(out_hw: Pair) -> Pair:
    """(TH, TW): the 4x4 output tiles along each axis (the last ones partly outside an odd size)."""
    return -(-out_hw[0] // TILE), -(-out_hw[1] // TILE)


def _gathered_input(x: Any, padding: Pair, tiles: Pair) -> Any:
    """P (n, 4*TH + 2, 6, TW, C): P[n, r, l, u] = column 4u + l of row r of the zero-padded x.

    Every tile's 6 columns are then one axis of constant stride, as the transforms' matrix
    products need.  The buffer is kept per geometry (:func:`workspace.zeroed`): each call writes
    the same entries (x's), so the zeros around them are written only once."""
    n, H, W, C = x.shape
    TH, TW = tiles
    ph, pw = padding  # 0..2: the 4*TH + 2 padded rows hold all of x's H (4*TH >= OH = H + 2*ph - 2)
    name = f"winograd4.gathered.{ph}.{pw}.{H}.{W}"  # which entries the copies write
    gathered = workspace.zeroed(name, (n, TILE * TH + 2, TILE + 2, TW, C), x.dtype, like=x)
    for l in range(TILE + 2):  # padded column 4u + l is x's column 4u + l - pw
        first = max(0, -(-(pw - l) // TILE))  # the first tile u whose column l is inside x
        last = min(TW, (W - 1 + pw - l) // TILE + 1)
        if last > first:
            start = TILE * first + l - pw
            columns = slice(start, start + TILE * (last - first - 1) + 1, TILE)
            gathered[:, ph : ph + H, l, first:last] = x[:, :, columns]
    return gathered


def _input_tiles(x: Any, padding: Pair, tiles: Pair) -> Any:
    """V (36, n*TH*TW, C): B^T d B for every 6x6 tile d of the zero-padded x, as two matrix products
    (rows, then columns) on the gathered input (:func:`_gathered_input`); a workspace array."""
    xp = backend.xp_of(x)
    n, C = x.shape[0], x.shape[3]
    TH, TW = tiles
    gathered = _gathered_input(x, padding, tiles)
    B_T = _matrix("B^T", x)
    run = (TILE + 2) * TW * C  # one padded row, gathered
    sN, sR = gathered.strides[:2]
    tile_rows = _as_strided(xp)(gathered, shape=(n, TH, TILE + 2, run), strides=(sN, TILE * sR, sR, x.itemsize))
    rows_done = workspace.scratch("winograd4.rows", (n, TH, TILE + 2, TILE + 2, TW * C), x.dtype, like=x)
    xp.matmul(B_T, tile_rows, out=rows_done.reshape(n, TH, TILE + 2, run))  # B^T along the rows
    V = workspace.scratch("winograd4.V", (TILE + 2, TILE + 2, n, TH, TW * C), x.dtype, like=x)
    xp.matmul(B_T, rows_done, out=V.transpose(2, 3, 0, 1, 4))  # B^T along the columns, into V[a, b]
    return V.reshape(POSITIONS, n * TH * TW, C)


def _tile_view(array: Any, tiles: Pair) -> Any:
    """``array`` (n, 4*TH, 4*TW, C) as (n, TH, 4, TW, 4, C), a view: tile (t, u), entry (i, j)."""
    n, C = array.shape[0], array.shape[3]
    return winograd._tile_view(array, (n, tiles[0], TILE, tiles[1], TILE, C))


def conv3x3(x: Any, filters: Any, padding: Pair, out: Any, bias: Any = None) -> Any:
    """The stride-1 3x3 convolution of channels-last ``x`` (n, H, W, C) with transformed ``filters``
    U (36, C, C_out) (:func:`transform_filter`), written into the contiguous ``out`` (n, OH, OW,
    C_out), OH = H + 2*ph - 2, plus ``bias`` (C_out,) when given.  Returns ``out``."""
    xp = backend.xp_of(x)
    n = x.shape[0]
    OH, OW, C_out = out.shape[1:]
    TH, TW = tiles_of((OH, OW))
    tiles = n * TH * TW
    V = _input_tiles(x, padding, (TH, TW))
    M = workspace.scratch("winograd4.M", (POSITIONS, tiles, C_out), x.dtype, like=x)
    _products(V, filters, M)  # the 36 GEMMs
    if bias is not None:
        M[(TILE + 2) * 1 + 1] += bias  # reaches every output once: A^T's column 1 is all ones
    A_T = _matrix("A^T", x)
    S = workspace.scratch("winograd4.S", (TILE, (TILE + 2) * tiles * C_out), x.dtype, like=x)
    xp.matmul(A_T, M.reshape(TILE + 2, -1), out=S)  # A^T along the rows
    T = workspace.scratch("winograd4.T", (TILE, TILE, tiles * C_out), x.dtype, like=x)
    xp.matmul(A_T, S.reshape(TILE, TILE + 2, -1), out=T)  # and along the columns: T[i, j] per tile
    by_tile = T.reshape(TILE, TILE, n, TH, TW, C_out).transpose(2, 3, 0, 4, 1, 5)  # (n, TH, i, TW, j, C_out)
    if (TILE * TH, TILE * TW) == (OH, OW):
        _tile_view(out, (TH, TW))[...] = by_tile
    else:  # the last tile row or column partly outside: the whole tiles, then cropped
        full = workspace.scratch("winograd4.full", (n, TILE * TH, TILE * TW, C_out), x.dtype, like=x)
        _tile_view(full, (TH, TW))[...] = by_tile
        out[...] = full[:, :OH, :OW]
    return out


def _output_tiles_adjoint(grad: Any, tiles: Pair) -> Any:
    """dM (36, n*TH*TW, C_out) = A dY A^T for every 4x4 tile of ``grad`` (n, OH, OW, C_out): the
    adjoint of the output transform (outside an odd size the tiles' gradient is zero)."""
    xp = backend.xp_of(grad)
    n, OH, OW, C_out = grad.shape
    TH, TW = tiles
    count = n * TH * TW * C_out
    by_entry = workspace.scratch("winograd4.T", (TILE, TILE, n, TH, TW, C_out), grad.dtype, like=grad)
    into = by_entry.transpose(2, 3, 0, 4, 1, 5)  # (n, TH, i, TW, j, C_out)
    if (TILE * TH, TILE * TW) == (OH, OW):
        into[...] = _tile_view(grad, tiles)
    else:
        full = workspace.scratch("winograd4.full", (n, TILE * TH, TILE * TW, C_out), grad.dtype, like=grad)
        full[:, OH:] = 0
        full[:, :, OW:] = 0
        full[:, :OH, :OW] = grad
        into[...] = _tile_view(full, tiles)
    A = _matrix("A", grad)
    dS = workspace.scratch("winograd4.S", (TILE, TILE + 2, count), grad.dtype, like=grad)
    xp.matmul(A, by_entry.reshape(TILE, TILE, count), out=dS)  # the columns' adjoint
    dM = workspace.scratch("winograd4.M", (TILE + 2, (TILE + 2) * count), grad.dtype, like=grad)
    xp.matmul(A, dS.reshape(TILE, -1), out=dM)  # and the rows'
    return dM.reshape(POSITIONS, n * TH * TW, C_out)


def _input_tiles_adjoint(dV: Any, padding: Pair, tiles: Pair, dx: Any) -> None:
    """dx (n, H, W, C) = the tiles B dV B^T added where they overlap, cropped: the adjoint of
    :func:`_input_tiles` (dV (36, n*TH*TW, C))."""
    xp = backend.xp_of(dV)
    n, H, W, C = dx.shape
    TH, TW = tiles
    ph, pw = padding
    B = _matrix("B", dV)
    wide = TILE + 2
    by_tile = dV.reshape(wide, wide, n, TH, TW * C).transpose(2, 3, 0, 1, 4)  # (n, TH, a, b, TW*C)
    columns = workspace.scratch("winograd4.rows", (n, TH, wide, wide, TW * C), dV.dtype, like=dV)
    xp.matmul(B, by_tile, out=columns)  # B along the columns: (n, TH, a, l, TW*C)
    tile_rows = workspace.scratch("winograd4.tile_rows", (n, TH, wide, wide, TW, C), dV.dtype, like=dV)
    xp.matmul(B, columns.reshape(n, TH, wide, -1), out=tile_rows.reshape(n, TH, wide, -1))  # and the rows: k
    # overlap-add along the rows: padded row 4t + k, k = 0..5, gets tile t's row k
    rows = workspace.scratch("winograd4.padded_rows", (n, TILE * TH + 2, wide, TW, C), dV.dtype, like=dV)
    rows[:, : TILE * TH].reshape(n, TH, TILE, wide, TW, C)[...] = tile_rows[:, :, :TILE]
    rows[:, TILE * TH :] = tile_rows[:, TH - 1, TILE:]
    rows[:, TILE : TILE * TH].reshape(n, TH - 1, TILE, wide, TW, C)[:, :, :2] += tile_rows[:, : TH - 1, TILE:]
    # and along the columns: padded column 4u + l gets tile u's column l
    padded = workspace.scratch("winograd4.padded", (n, TILE * TH + 2, TILE * TW + 2, C), dV.dtype, like=dV)
    R = TILE * TH + 2
    padded[:, :, : TILE * TW].reshape(n, R, TW, TILE, C)[...] = rows[:, :, :TILE].transpose(0, 1, 3, 2, 4)
    padded[:, :, TILE * TW :] = rows[:, :, TILE:, TW - 1]
    padded[:, :, TILE : TILE * TW].reshape(n, R, TW - 1, TILE, C)[:, :, :, :2] += rows[:, :, TILE:, : TW - 1].transpose(
        0, 1, 3, 2, 4
    )
    dx[...] = padded[:, ph : ph + H, pw : pw + W]  # every pixel of x is inside some tile (padding 0..2)


def conv3x3_backward(
    grad: Any, padding: Pair, filters: Any = None, dx: Any = None, x: Any = None, dU: Any = None
) -> Any:
    """The backward of :func:`conv3x3` for a chunk of images, ``grad`` (n, OH, OW, C_out) = dL/dy.

    With ``filters`` U (36, C, C_out) and ``dx`` (n, H, W, C): writes dL/dx into ``dx``.
    With ``x`` (the forward's input): adds dL/dU (36, C_out, C) of this chunk into ``dU`` and
    returns it (a fresh array when ``dU`` is None); :func:`filter_gradient` turns it into the
    filters' gradient once every chunk is in.  Returns None without ``x``."""
    xp = backend.xp_of(grad)
    OH, OW, C_out = grad.shape[1:]
    tiles = tiles_of((OH, OW))
    dM = _output_tiles_adjoint(grad, tiles)
    if dx is not None:
        dV = workspace.scratch("winograd4.dV", (POSITIONS, dM.shape[1], dx.shape[3]), grad.dtype, like=grad)
        _products(dM, filters.transpose(0, 2, 1), dV)
        _input_tiles_adjoint(dV, padding, tiles, dx)
    if x is None:
        return None
    V = _input_tiles(x, padding, tiles)
    first = dU is None  # this range's first chunk: its products are the sum so far
    if first:
        dU = xp.empty((POSITIONS, C_out, x.shape[3]), dtype=grad.dtype)
    return _summed_products(dM.transpose(0, 2, 1), V, dU, add=not first)


__all__ = [
    "FILTER_TRANSFORM",
    "INPUT_TRANSFORM",
    "OUTPUT_TRANSFORM",
    "POSITIONS",
    "TILE",
    "applies",
    "conv3x3",
    "conv3x3_backward",
    "filter_gradient",
    "filter_transform_matrix",
    "tiles_of",
    "transform_filter",
]
