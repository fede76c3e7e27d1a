"""Figure for chapter 10: the error of a finite-difference gradient against the step eps.

    python3 docs/figures/make_gradcheck_eps.py   # writes docs/figures/gradcheck_eps.png

The function is tanh at four points; its exact derivative comes from our autograd
(``Tanh.backward``: 1 - tanh^2).  The central differences are the library's own
``gradcheck.numerical_grad`` (the one ``mt.gradcheck`` uses), run on float64 and on
float32 inputs; the forward difference (f(x + eps) - f(x)) / eps is computed here
for comparison.  Plotted: the largest error over the four points, for eps from
1e-13 to 1e-1, with the two error terms of the central difference in float64
(truncation eps^2 |f'''| / 6, rounding unit_roundoff |f| / eps) and gradcheck's
default eps and tolerance.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minitorch_nndl as mt  # noqa: E402
from minitorch_nndl.gradcheck import numerical_grad  # noqa: E402

HERE = Path(__file__).resolve().parent
POINTS = [-1.0, 0.3, 0.7, 1.5]
EPS = np.logspace(-13, -1, 49)


def analytic() -> np.ndarray:
    x = mt.tensor(POINTS, dtype=mt.float64, requires_grad=True)
    x.tanh().sum().backward()
    return x.grad


def central_error(eps: float, dtype=mt.float64) -> float:
    """Largest |numerical - exact| of gradcheck's central difference, the inputs held in ``dtype``."""
    x = mt.tensor(POINTS, dtype=dtype)
    ones = [np.ones(len(POINTS), dtype=x.numpy().dtype)]  # the weight r of sum(f(x) * r): every point counts once
    numeric = numerical_grad(lambda t: t.tanh(), [x], 0, eps=eps, weights=ones)
    return float(np.abs(numeric - analytic()).max())


def forward_error(eps: float) -> float:
    x = np.array(POINTS)
    numeric = (np.tanh(x + eps) - np.tanh(x)) / eps
    return float(np.abs(numeric - analytic()).max())


def main() -> None:
    u = np.finfo(np.float64).eps / 2
    x = np.array(POINTS)
    third = np.abs(-2 * (1 - np.tanh(x) ** 2) * (1 - 3 * np.tanh(x) ** 2)).max()  # |tanh'''|
    curves = {
        "central difference, float64 (gradcheck)": ([central_error(e) for e in EPS], "#1f77b4", "-"),
        "forward difference, float64": ([forward_error(e) for e in EPS], "#2ca02c", "-"),
        "central difference, float32 inputs": ([central_error(e, mt.float32) for e in EPS], "#d62728", "-"),
    }
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, (errors, color, style) in curves.items():
        ax.loglog(EPS, np.maximum(errors, 1e-17), label=label, color=color, linestyle=style, marker=".", markersize=3)
    ax.loglog(EPS, third * EPS**2 / 6, color="#1f77b4", linestyle=":", label="truncation  eps^2 |f'''| / 6")
    ax.loglog(EPS, u * np.abs(np.tanh(x)).max() / EPS, color="#7f7f7f", linestyle=":", label="rounding  u |f| / eps")
    ax.axvline(1e-6, color="#555555", linewidth=0.8, label="gradcheck's default eps = 1e-6")
    ax.axhline(1e-5, color="#ff7f0e", linewidth=0.8, linestyle="--", label="its atol = 1e-5 (smallest error allowed)")
    ax.set_ylim(1e-14, 10)
    ax.set_xlabel("finite-difference step eps")
    ax.set_ylabel("largest error in d tanh(x)/dx")
    ax.set_title("Finite-difference error against eps (tanh at 4 points)", fontsize=9)
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=6.5, loc="lower left", framealpha=0.9)
    fig.tight_layout()
    out = HERE / "gradcheck_eps.png"
    fig.savefig(out, dpi=72)
    plt.close(fig)
    best = min(zip((central_error(e) for e in EPS), EPS))
    print(f"central float64: smallest error {best[0]:.1e} at eps {best[1]:.0e}; at 1e-6: {central_error(1e-6):.1e}")
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
