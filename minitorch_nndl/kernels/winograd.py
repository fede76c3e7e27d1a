"""Winograd's minimal filtering F(2x2, 3x3): a stride-1 3x3 convolution with 2.25x fewer multiplications.

A 3x3 filter g slid over a 4x4 input tile d gives a 2x2 output tile.  Done directly
that is 2*2*9 = 36 multiplications; Winograd (Lavin & Gray 2016) needs 16:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* is elementwise, on 4x4 arrays)

with the constant matrices

    B^T = [[1, 0, -1, 0],     G = [[1,    0,    0  ],     A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],          [1/2,  1/2,  1/2],            [0, 1, -1, -1]]
           [0, -1, 1, 0],          [1/2, -1/2,  1/2],
           [0, 1,  0, -1]]         [0,    0,    1  ]]

Summed over input channels, the elementwise product becomes 16 independent matrix
products, one per position (a, b) of the 4x4 transformed tile:

    M[a, b] = V[a, b] @ U[a, b],   V[a, b] (tiles, C_in),  U[a, b] (C_in, C_out),

so a convolution is: transform the input tiles (additions only), 16 GEMMs with
2.25x fewer flops than im2col's one GEMM, transform the output tiles (additions
only).  Neighbouring tiles overlap by 2 rows/columns (their outputs do not).

Everything here is channels-last: x (N, H, W, C), the result (N, OH, OW, C_out).
The transforms are written as strided slices, so they run on NumPy and CuPy alike.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from . import parallel, workspace

Pair = tuple[int, int]

FILTER_TRANSFORM = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
"""G, the 4x3 matrix of the filter transform U = G g G^T (0.5 is exact in binary floats)."""


def applies(kernel_size: Pair, stride: Pair, dilation: Pair) -> bool:
    """Whether F(2x2, 3x3) computes this convolution: a 3x3 kernel, stride 1, no dilation."""
    return kernel_size == (3, 3) and stride == (1, 1) and dilation == (1, 1)


def transform_filter(weight: Any) -> Any:
    """U (16, C_in, C_out) from weight (C_out, C_in, 3, 3): U[4a+b] = (G g G^T)[a, b] per filter pair.

    G g G^T for all filters at once is one matrix product: with the 3x3 filters as rows of
    9 values, vec(G g G^T) = (G kron G) vec(g).  The result is a (16, C_in, C_out) view
    of a (16, C_out, C_in) array, which the GEMMs read transposed at no cost."""
    xp = backend.xp_of(weight)
    G = xp.asarray(FILTER_TRANSFORM, dtype=weight.dtype)
    C_out, C_in = weight.shape[:2]
    if not weight.flags.c_contiguous:
        weight = xp.ascontiguousarray(weight)
    U = xp.kron(G, G) @ weight.reshape(C_out * C_in, 9).T  # (16, C_out*C_in)
    return U.reshape(16, C_out, C_in).transpose(0, 2, 1)


def flipped_filter(weight: Any) -> Any:
    """w'[c, o, i, j] = w[o, c, 2-i, 2-j]: the filter whose convolution is the input gradient."""
    return weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


def _input_tiles(x: Any, padding: Pair, tiles: Pair, out: Any) -> None:
    """V = B^T d B for every 4x4 tile d of the zero-padded x, into out (4, 4, N, TH, TW, C)."""
    N, H, W, C = x.shape
    TH, TW = tiles
    ph, pw = padding
    # the padded input, extended with zeros to exactly 2*TH + 2 rows and 2*TW + 2 columns
    padded = workspace.scratch("winograd.padded", (N, 2 * TH + 2, 2 * TW + 2, C), x.dtype, like=x)
    rows, cols = min(H, 2 * TH + 2 - ph), min(W, 2 * TW + 2 - pw)
    padded[:, :ph] = 0  # zeros around the copy only: the copy overwrites the rest
    padded[:, ph + rows :] = 0
    padded[:, :, :pw] = 0
    padded[:, :, pw + cols :] = 0
    padded[:, ph : ph + rows, pw : pw + cols] = x[:, :rows, :cols]
    xp = backend.xp_of(x)
    # B^T along the rows: row a of every tile is padded[:, 2*t + a]
    r = [padded[:, a : a + 2 * TH : 2] for a in range(4)]  # each (N, TH, 2*TW + 2, C)
    vertical = workspace.scratch("winograd.vertical", (4,) + r[0].shape, x.dtype, like=x)
    xp.subtract(r[0], r[2], out=vertical[0])
    xp.add(r[1], r[2], out=vertical[1])
    xp.subtract(r[2], r[1], out=vertical[2])
    xp.subtract(r[1], r[3], out=vertical[3])
    # B along the columns
    for a in range(4):
        c = [vertical[a][:, :, b : b + 2 * TW : 2] for b in range(4)]  # each (N, TH, TW, C)
        xp.subtract(c[0], c[2], out=out[a, 0])
        xp.add(c[1], c[2], out=out[a, 1])
        xp.subtract(c[2], c[1], out=out[a, 2])
        xp.subtract(c[1], c[3], out=out[a, 3])


def _output_tiles(m: Any, out: Any) -> None:
    """Y = A^T M A for every tile, M (4, 4, N, TH, TW, C_out), into out (N, 2*TH, 2*TW, C_out)."""
    xp = backend.xp_of(m)
    # A^T along the rows: output row 0 = m0 + m1 + m2, row 1 = m1 - m2 - m3
    s = workspace.scratch("winograd.s", (2,) + m.shape[1:], m.dtype, like=m)
    xp.add(m[0], m[1], out=s[0])
    s[0] += m[2]
    xp.subtract(m[1], m[2], out=s[1])
    s[1] -= m[3]
    for i in range(2):
        target0, target1 = out[:, i::2, 0::2], out[:, i::2, 1::2]
        xp.add(s[i, 0], s[i, 1], out=target0)
        target0 += s[i, 2]
        xp.subtract(s[i, 1], s[i, 2], out=target1)
        target1 -= s[i, 3]


def conv3x3(x: Any, filters: Any, padding: Pair, out: Any) -> Any:
    """The stride-1 3x3 convolution of channels-last ``x`` (N, H, W, C) with transformed
    ``filters`` U (16, C, C_out) (from :func:`transform_filter`), written into ``out``
    (N, OH, OW, C_out), OH = H + 2*ph - 2.  Returns ``out``."""
    xp = backend.xp_of(x)
    N, H, W, C = x.shape
    C_out = filters.shape[2]
    OH, OW = out.shape[1], out.shape[2]
    TH, TW = (OH + 1) // 2, (OW + 1) // 2
    V = workspace.scratch("winograd.V", (4, 4, N, TH, TW, C), x.dtype, like=x)
    parallel.for_batch_ranges(lambda i, j: _input_tiles(x[i:j], padding, (TH, TW), V[:, :, i:j]), N, x)
    M = workspace.scratch("winograd.M", (16, N * TH * TW, C_out), x.dtype, like=x)
    xp.matmul(V.reshape(16, N * TH * TW, C), filters, out=M)  # the 16 GEMMs
    M = M.reshape(4, 4, N, TH, TW, C_out)

    def output_tiles(i: int, j: int) -> None:
        if (2 * TH, 2 * TW) == (OH, OW):
            _output_tiles(M[:, :, i:j], out[i:j])
        else:  # an odd size: the last tile row/column is half outside; compute it whole and crop
            full = workspace.scratch("winograd.full", (j - i, 2 * TH, 2 * TW, C_out), x.dtype, like=x)
            _output_tiles(M[:, :, i:j], full)
            out[i:j] = full[:, :OH, :OW]

    parallel.for_batch_ranges(output_tiles, N, x)
    return out


__all__ = ["FILTER_TRANSFORM", "applies", "conv3x3", "flipped_filter", "transform_filter"]
