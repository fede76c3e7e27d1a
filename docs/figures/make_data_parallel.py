"""Figure for chapter 14: a ring all-reduce of 4 ranks, step by step.

    python3 docs/figures/make_data_parallel.py        # writes docs/figures/ring_allreduce.png

Each rank's buffer is cut into p = 4 chunks.  In the reduce-scatter phase (p - 1 steps) every rank
sends one chunk to its right-hand neighbour, which adds it to its own copy; after it each rank holds
one chunk summed over all ranks.  In the all-gather phase (p - 1 more steps) the finished chunks
travel once more around the ring, each replacing the receiver's copy.  A cell shows how many ranks'
gradients that copy of the chunk contains (p = finished); the simulation is :func:`ring_allreduce`,
which also checks the result against the plain sum.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
P = 4


def ring_allreduce(p: int) -> list[np.ndarray]:
    """The (rank, chunk) counts of contributions after each step: 1 + 2 (p - 1) (p, p) arrays."""
    counts = np.ones((p, p), dtype=int)  # rank r's copy of chunk c holds r's own gradient only
    values = np.random.default_rng(0).standard_normal((p, p))  # rank r's gradient, chunk c
    total = values.sum(axis=0)
    snapshots = [counts.copy()]
    for step in range(p - 1):  # reduce-scatter: rank r sends chunk (r - step) to rank r + 1, which adds it
        sent = [(r, (r - step) % p) for r in range(p)]
        new_counts, new_values = counts.copy(), values.copy()
        for r, c in sent:
            new_counts[(r + 1) % p, c] += counts[r, c]
            new_values[(r + 1) % p, c] += values[r, c]
        counts, values = new_counts, new_values
        snapshots.append(counts.copy())
    for step in range(p - 1):  # all-gather: rank r passes its finished chunk (r + 1 - step) on, unchanged
        sent = [(r, (r + 1 - step) % p) for r in range(p)]
        new_counts, new_values = counts.copy(), values.copy()
        for r, c in sent:
            new_counts[(r + 1) % p, c] = counts[r, c]
            new_values[(r + 1) % p, c] = values[r, c]
        counts, values = new_counts, new_values
        snapshots.append(counts.copy())
    assert (counts == p).all() and np.allclose(values, total)  # every rank holds the whole sum
    return snapshots


def main(out: Path = HERE / "ring_allreduce.png") -> None:
    snapshots = ring_allreduce(P)
    fig, axes = plt.subplots(1, len(snapshots), figsize=(12.5, 2.9))
    for k, (ax, counts) in enumerate(zip(axes, snapshots)):
        ax.imshow(counts, cmap="Greens", vmin=0, vmax=P + 1)
        for r in range(P):
            for c in range(P):
                ax.text(c, r, str(counts[r, c]), ha="center", va="center", fontsize=10)
        ax.set_xticks(range(P), [f"c{c}" for c in range(P)], fontsize=8)
        ax.set_yticks(range(P), [f"rank {r}" for r in range(P)] if k == 0 else [], fontsize=8)
        phase = "start" if k == 0 else f"reduce-scatter {k}" if k < P else f"all-gather {k - P + 1}"
        ax.set_title(phase, fontsize=9)
    fig.suptitle(
        f"ring all-reduce, p = {P}: how many ranks' gradients each copy of each chunk holds "
        f"(each rank sends 2(p-1) = {2 * (P - 1)} chunks of n/{P}, i.e. {2 * (P - 1) / P:g} n)",
        fontsize=10,
    )
    fig.savefig(out, dpi=80, bbox_inches="tight")  # the title and the tick labels inside the image
    plt.close(fig)
    print(f"wrote {out}: {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
