"""ResNet18-CIFAR's 3x3 convolutions one at a time: ours by im2row, ours by Winograd's F(2x2, 3x3),
ours as ``Conv2d`` chooses (Winograd where :func:`minitorch_nndl.ops.conv._winograd_applies` says so,
F(4x4, 3x3) where :func:`minitorch_nndl.ops.conv._winograd4_applies` does), and PyTorch.

For each layer shape, the forward (with a graph) and the backward (input and weight
gradients) of one convolution, float32, in milliseconds: the best of ``--rounds`` rounds,
the variants alternating within each round so that noise hits them all.  Ours runs as the
ResNet18 benchmark runs it (the batch split over one thread per CPU, a single-threaded
BLAS), PyTorch with as many threads as CPUs.  This is the measurement behind
``conv.MIN_WINOGRAD_TILES``, ``conv.MIN_WINOGRAD_CHANNELS`` and ``conv.MIN_WINOGRAD4_TILES``.

    python3 benchmarks/bench_conv_layers.py --batch-sizes 32 128
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

import minitorch_nndl as mt
from minitorch_nndl.autograd import Context
from minitorch_nndl.kernels import parallel
from minitorch_nndl.ops import conv as conv_op

LAYERS = ((3, 64, 32), (64, 64, 32), (128, 128, 16), (256, 256, 8), (512, 512, 4))
"""(input channels, output channels, height = width) of ResNet18-CIFAR's stride-1 3x3 convolutions."""


def _mean_ms(fn: Callable[[], object], calls: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1000


ROUTES = {"im2row": (False, False), "F(2x2)": (True, False), "Conv2d": (True, True)}
"""Our variants: (``conv.USE_WINOGRAD``, ``conv.USE_WINOGRAD4``) for each."""


def _ours(x: np.ndarray, w: np.ndarray, g: np.ndarray, route: str) -> tuple[Callable, Callable]:
    ctx = Context()
    ctx.needs_input_grad = (x.shape[1] > 3, True, False)  # the stem needs no input gradient

    def forward() -> None:
        conv_op.USE_WINOGRAD, conv_op.USE_WINOGRAD4 = ROUTES[route]
        conv_op.Conv2d.forward(ctx, x, w, None, (1, 1), (1, 1), (1, 1), 1)

    def backward() -> None:
        conv_op.USE_WINOGRAD, conv_op.USE_WINOGRAD4 = ROUTES[route]
        conv_op.Conv2d.backward(ctx, g)

    return forward, backward


def _torch(torch: object, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> tuple[Callable, Callable]:
    tx = torch.tensor(np.ascontiguousarray(x), requires_grad=x.shape[1] > 3)
    tw = torch.tensor(w, requires_grad=True)
    tg = torch.tensor(np.ascontiguousarray(g))
    held = {}

    def forward() -> None:
        held["y"] = torch.nn.functional.conv2d(tx, tw, padding=1)

    def backward() -> None:
        held["y"].backward(tg, retain_graph=True)

    return forward, backward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=4, help="calls timed per round")
    args = parser.parse_args()
    mt.backend.reuse_freed_memory()
    parallel.use_batch_threads()
    try:
        import torch  # noqa: PLC0415  (the peer, only if installed)

        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch = None
    print(f"{parallel.num_threads()} threads; forward + backward of one conv, ms (best of {args.rounds} rounds)")
    print(f"{'layer':>24} " + " ".join(f"{'ours ' + route:>16}" for route in ROUTES) + f" {'PyTorch':>16} ours/PyTorch")
    for batch in args.batch_sizes:
        for c_in, c_out, hw in LAYERS:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((batch, hw, hw, c_in), dtype=np.float32).transpose(0, 3, 1, 2)  # as in the net
            w = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32) * 0.05
            g = rng.standard_normal((batch, hw, hw, c_out), dtype=np.float32).transpose(0, 3, 1, 2)
            variants = {route: _ours(x, w, g, route) for route in ROUTES}
            if torch is not None:
                variants["torch"] = _torch(torch, x, w, g)
            best = {name: [float("inf"), float("inf")] for name in variants}
            for _ in range(args.rounds):
                for name, (forward, backward) in variants.items():
                    best[name][0] = min(best[name][0], _mean_ms(forward, args.calls))
                    best[name][1] = min(best[name][1], _mean_ms(backward, args.calls))
            conv_op.USE_WINOGRAD, conv_op.USE_WINOGRAD4 = ROUTES["Conv2d"]
            cells = [f"{sum(best[n]):6.2f} ({best[n][0]:.1f}+{best[n][1]:.1f})" for n in variants]
            ratio = f"{sum(best['torch']) / sum(best['Conv2d']):13.2f}" if torch is not None else ""
            name = f"b{batch} {c_in}->{c_out} {hw}x{hw}"
            print(f"{name:>24} " + " ".join(f"{c:>16}" for c in cells) + f" {ratio}")
    print("ours/PyTorch: PyTorch's time over ours (above 1: ours is faster)")


if __name__ == "__main__":
    main()
