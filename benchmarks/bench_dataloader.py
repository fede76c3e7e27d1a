"""Throughput of the CIFAR-10 augmentation pipeline in the DataLoader (images per second).

Pipeline: RandomCrop(32, padding=4) + RandomHorizontalFlip on the uint8 NHWC batch, then
ToTensor + Normalize -> float32 NCHW, batch 128, shuffled, over 50 000 synthetic
32x32x3 uint8 images held in memory (the size of the CIFAR-10 training set).

Two numbers per configuration:

* ``loader only``: the loop does nothing with the batches -- the pipeline's raw speed;
* ``with a step``: the loop waits ``--step-ms`` per batch (``time.sleep``, which releases
  the GIL like a training step waiting on the GPU), which is where prefetching pays off:
  without it, batch preparation and the step add up; with it, they overlap.

Run: ``python benchmarks/bench_dataloader.py [--n 50000] [--batch-size 128] [--step-ms 20]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from minitorch_nndl.data import (
    CIFAR10,
    Compose,
    DataLoader,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    TensorDataset,
    ToTensor,
)


def cifar_pipeline() -> Compose:
    return Compose(
        [RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(), Normalize(CIFAR10.MEAN, CIFAR10.STD)]
    )


def run_epoch(loader: DataLoader, step_s: float) -> tuple[float, int]:
    start = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += x.shape[0]
        if step_s:
            time.sleep(step_s)
    return time.perf_counter() - start, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--step-ms", type=float, default=20.0, help="simulated training step per batch")
    parser.add_argument("--repeats", type=int, default=2, help="epochs per configuration (best is reported)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=args.n)
    ds = TensorDataset(images, labels)
    print(f"{args.n} images 32x32x3 uint8, batch {args.batch_size}, {os.cpu_count()} CPU cores visible")

    # per-stage cost of one batch
    batch = images[:128]
    g = np.random.default_rng(1)
    for name, t in [
        ("RandomCrop(32, pad 4)", RandomCrop(32, padding=4)),
        ("RandomHorizontalFlip", RandomHorizontalFlip()),
        ("ToTensor", ToTensor()),
    ]:
        reps = 200
        t0 = time.perf_counter()
        for _ in range(reps):
            t(batch, rng=g)
        print(f"  {name:24s} {1e3 * (time.perf_counter() - t0) / reps:7.3f} ms / batch of {batch.shape[0]}")

    configs = [("no prefetch", 0, 0), ("prefetch=2", 2, 0), ("prefetch=4, 2 workers", 4, 2)]
    for step_ms in (0.0, args.step_ms):
        label = "loader only" if step_ms == 0 else f"with a {step_ms:g} ms step"
        for name, prefetch, workers in configs:
            loader = DataLoader(
                ds,
                batch_size=args.batch_size,
                shuffle=True,
                seed=0,
                transform=cifar_pipeline(),
                prefetch=prefetch,
                num_workers=workers,
            )
            best = min(run_epoch(loader, step_ms / 1e3)[0] for _ in range(args.repeats))
            ideal = len(loader) * step_ms / 1e3
            extra = f"  (steps alone: {ideal:.2f} s)" if step_ms else ""
            print(f"{label:22s} {name:24s} {args.n / best:9.0f} images/s  epoch {best:6.2f} s{extra}")


if __name__ == "__main__":
    main()
