"""Figure for chapter 4: how im2col lays out the receptive fields of a convolution as columns.

    python docs/figures/make_im2col.py        # writes docs/figures/im2col.png

A 1-channel 4x4 input, a 3x3 kernel, stride 1, no padding: 2x2 = 4 output
positions, so minitorch_nndl.kernels.im2col returns a (1*3*3, 1*2*2) = (9, 4)
matrix whose column j holds the window of output position j.  The conv is then
the single matrix product  weight.reshape(C_out, 9) @ cols.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from minitorch_nndl.kernels import im2col  # noqa: E402

HERE = Path(__file__).resolve().parent
COLORS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3"]


def main() -> None:
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    cols = im2col(x, (3, 3))  # (9, 4): rows (c, kh, kw), columns (n, oh, ow)
    assert cols.shape == (9, 4)

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
    for i in range(4):
        for j in range(4):
            left.add_patch(Rectangle((j, 3 - i), 1, 1, facecolor="white", edgecolor="black"))
            left.text(j + 0.5, 3.5 - i, f"{int(x[0, 0, i, j])}", ha="center", va="center", fontsize=12)
    for k, (oh, ow) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        inset = 0.06 * (k + 1)
        left.add_patch(
            Rectangle(
                (ow + inset, 4 - (oh + 3) + inset),
                3 - 2 * inset,
                3 - 2 * inset,
                fill=False,
                edgecolor=COLORS[k],
                linewidth=2.0,
            )
        )
    left.set_xlim(-0.2, 4.2)
    left.set_ylim(-0.2, 4.2)
    left.set_aspect("equal")
    left.axis("off")
    left.set_title("input x (1, 1, 4, 4), 3x3 windows\none per output position (oh, ow)", fontsize=10)

    for r in range(9):
        for c in range(4):
            right.add_patch(Rectangle((c, 8 - r), 1, 1, facecolor=COLORS[c], alpha=0.18, edgecolor="black"))
            right.text(c + 0.5, 8.5 - r, f"{int(cols[r, c])}", ha="center", va="center", fontsize=11)
        right.text(-0.15, 8.5 - r, f"(kh={r // 3}, kw={r % 3})", ha="right", va="center", fontsize=8)
    for c, (oh, ow) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        right.text(c + 0.5, 9.2, f"({oh},{ow})", ha="center", va="bottom", fontsize=9, color=COLORS[c])
    right.set_xlim(-2.2, 4.2)
    right.set_ylim(-0.2, 10.0)
    right.set_aspect("equal")
    right.axis("off")
    right.set_title(
        "cols = im2col(x, (3, 3)): (C*KH*KW, N*OH*OW) = (9, 4)\ny = W.reshape(C_out, 9) @ cols", fontsize=10
    )
    fig.tight_layout()
    out = HERE / "im2col.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
