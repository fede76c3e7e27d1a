"""Figure for chapter 2: the memory a graph holds, and how the backward walk gives it back.

    python3 docs/figures/make_activation_memory.py   # writes docs/figures/activation_memory.png

A narrow ResNet18 (CIFAR stem, width 8, 0.18 M parameters) does one forward and one
backward on a batch of 3x32x32 images, in float32 on the CPU.  ``tracemalloc``
(which sees NumPy's allocations) reads the bytes in use before each node's
backward runs: the wrapper around ``autograd._run_backward`` below only reads a
counter, it changes nothing.  One training step runs before the measured one,
so the scratch buffers the convolution keeps between calls (kernels/workspace.py)
already exist and only what the graph holds is counted.  Printed: the table of
chapter 2; drawn: memory during the walk, with and without ``retain_graph=True``.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minitorch_nndl as mt  # noqa: E402
from minitorch_nndl import autograd, models  # noqa: E402
from minitorch_nndl.kernels import parallel  # noqa: E402
from minitorch_nndl.ops.loss import cross_entropy  # noqa: E402

HERE = Path(__file__).resolve().parent
MB = 1e6


def measure(batch: int, retain_graph: bool) -> dict:
    """Bytes in use (above what existed before the forward) after the forward, before each backward step, at the end.

    On one thread (``kernels.parallel``'s pool off): with the pool on, each thread's share of a
    convolution has temporaries of its own and the peak moves with the number of threads.
    """
    threads = parallel.num_threads()
    parallel.set_num_threads(1)
    try:
        return _measure(batch, retain_graph)
    finally:
        parallel.set_num_threads(threads)


def _measure(batch: int, retain_graph: bool) -> dict:
    mt.manual_seed(0)
    net = models.resnet18(num_classes=10, width=8)
    images = mt.randn(batch, 3, 32, 32)
    labels = mt.tensor(np.arange(batch) % 10)
    cross_entropy(net(images), labels).backward()  # a first step: the kernels' scratch buffers are kept after it
    net.zero_grad()  # as a training loop does before the next step
    readings: list[int] = []
    original = autograd._run_backward

    def reading_backward(node, grad):
        readings.append(tracemalloc.get_traced_memory()[0])
        return original(node, grad)

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        loss = cross_entropy(net(images), labels)
        after_forward = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        autograd._run_backward = reading_backward
        try:
            loss.backward(retain_graph=retain_graph)
        finally:
            autograd._run_backward = original
        after_backward, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "parameters": sum(p.data.nbytes for p in net.parameters()) / MB,
        "graph": (after_forward - base) / MB,
        "peak": (peak - base) / MB,
        "after": (after_backward - base) / MB,
        "walk": [(r - base) / MB for r in readings],
    }


def table(batches: tuple[int, ...] = (4, 8, 16)) -> list[str]:
    rows = [
        "| batch | held by the graph after forward | peak during backward | at the last node | after backward |",
        "|---|---|---|---|---|",
    ]
    for batch in batches:
        r = measure(batch, retain_graph=False)
        rows.append(
            f"| {batch} | {r['graph']:.1f} MB | {r['peak']:.1f} MB | {r['walk'][-1]:.1f} MB | {r['after']:.2f} MB |"
        )
    return rows


def main() -> None:
    print("\n".join(table()))
    freed, kept = measure(8, retain_graph=False), measure(8, retain_graph=True)
    print(f"parameters: {freed['parameters']:.2f} MB; retain_graph=True: after backward {kept['after']:.1f} MB")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.plot(freed["walk"], label="backward()  (each node released as the walk passes it)", color="#1f77b4")
    ax.plot(kept["walk"], label="backward(retain_graph=True)", color="#d62728", linestyle="--")
    ax.set_xlabel("backward step (nodes in reverse topological order)")
    ax.set_ylabel("memory in use (MB)")
    ax.set_ylim(bottom=0)
    ax.set_title("ResNet18 (width 8), batch 8 of 3x32x32, float32: the walk frees activations", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out = HERE / "activation_memory.png"
    fig.savefig(out, dpi=72, bbox_inches="tight")  # the title and the tick labels inside the image
    plt.close(fig)
    print(f"{out}: {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
