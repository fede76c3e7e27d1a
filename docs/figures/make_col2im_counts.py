"""Figure for chapter 4: how many copies of each input pixel im2col makes, i.e. what col2im sums.

    python3 docs/figures/make_col2im_counts.py        # writes docs/figures/col2im_counts.png

col2im adds every entry of a column matrix back onto the pixel it was read from, so
``col2im(ones)`` counts, for every pixel, the windows that contain it: the number of
copies im2col made of it, and the number of terms its gradient sums.  Three geometries,
each computed with minitorch_nndl.kernels.arrays' im2col and col2im:

* 4x4 input, 3x3 kernel, stride 1, no padding (the im2col figure's example): 1, 2 or 4;
* 5x5 input, 3x3 kernel, stride 1, padding 1 (a "same" conv): 4 at the corners, 9 inside;
* 7x7 input, 3x3 kernel, stride 2, padding 1: neighbouring windows share one row (and one
  column), so every second row and column is copied twice and the counts alternate (1, 2, 4).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minitorch_nndl.kernels.arrays import col2im, im2col  # noqa: E402

HERE = Path(__file__).resolve().parent
GEOMETRIES = [  # (input size, stride, padding), all with a 3x3 kernel
    (4, 1, 0),
    (5, 1, 1),
    (7, 2, 1),
]


def copy_counts(size: int, stride: int, padding: int, kernel: int = 3) -> np.ndarray:
    """(size, size) array: how many columns of im2col hold each pixel (= col2im of all ones)."""
    shape = (1, 1, size, size)
    geometry = {"kernel_size": (kernel, kernel), "stride": (stride, stride), "padding": (padding, padding)}
    cols = im2col(np.zeros(shape), **geometry)
    return col2im(np.ones_like(cols), shape, **geometry)[0, 0].astype(int)


def main(out: Path = HERE / "col2im_counts.png") -> None:
    fig, axes = plt.subplots(1, len(GEOMETRIES), figsize=(9.0, 3.4))
    for ax, (size, stride, padding) in zip(axes, GEOMETRIES):
        counts = copy_counts(size, stride, padding)
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=14)
        for i in range(size):
            for j in range(size):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{size}x{size} input, 3x3 kernel\nstride {stride}, padding {padding}", fontsize=10)
    fig.suptitle("copies of each pixel in im2col's columns = terms summed by col2im", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
